package activities

import (
	"context"
	"fmt"
	"sort"

	"go.temporal.io/sdk/activity"

	"github.com/ferrydr/ferry"
)

// listPageSize is how many inventory items one store call reads while an
// activity walks a whole collection.
const listPageSize = 200

// EvacuationInput asks which groups an evacuation of Site fails over.
type EvacuationInput struct {
	Site string `json:"site"`
}

// EvacuationGroup is one group an evacuation fails over: from the site it
// runs at now to its other site.
type EvacuationGroup struct {
	Name       string `json:"name"`
	Priority   int    `json:"priority"`
	SourceSite string `json:"source_site"`
	TargetSite string `json:"target_site"`
	// The group's approval policy, so the evacuation can ask once for all.
	ApprovalRequired  bool `json:"approval_required,omitempty"`
	ApprovalUnplanned bool `json:"approval_unplanned,omitempty"`
}

// EvacuationPlan lists the groups an evacuation fails over, highest
// priority first (then by name), and the groups of the site it leaves
// alone with why.
type EvacuationPlan struct {
	Groups  []EvacuationGroup `json:"groups"`
	Skipped []string          `json:"skipped,omitempty"`
}

// EvacuationGroups pages through the inventory for the groups that run at
// the site now: a group at its primary site goes to its DR site, and one
// that failed over to the site goes back to its primary. A group whose
// primary is the site but that already runs elsewhere is skipped.
func (a *Activities) EvacuationGroups(ctx context.Context, in EvacuationInput) (EvacuationPlan, error) {
	if _, err := a.Store.GetSite(ctx, in.Site); err != nil {
		if ferry.ErrorCode(err) == ferry.ENotFound {
			return EvacuationPlan{}, precheckErr("site %q does not exist", in.Site)
		}
		return EvacuationPlan{}, fmt.Errorf("evacuation: site %s: %w", in.Site, err)
	}
	var p EvacuationPlan
	page := ferry.Page{Limit: listPageSize}
	for {
		groups, next, err := a.Store.ListGroups(ctx, page)
		if err != nil {
			return EvacuationPlan{}, fmt.Errorf("evacuation: list groups: %w", err)
		}
		for _, g := range groups {
			active := g.ActiveSite
			if active == "" {
				active = g.PrimarySite
			}
			if active != in.Site {
				if g.PrimarySite == in.Site {
					p.Skipped = append(p.Skipped, fmt.Sprintf("%s already runs at %s", g.Name, active))
				}
				continue
			}
			target := g.DRSite
			if active == g.DRSite {
				target = g.PrimarySite
			}
			p.Groups = append(p.Groups, EvacuationGroup{
				Name: g.Name, Priority: g.Priority, SourceSite: active, TargetSite: target,
				ApprovalRequired: g.Approval.Required, ApprovalUnplanned: g.Approval.Unplanned,
			})
		}
		activity.RecordHeartbeat(ctx, len(p.Groups))
		if next == "" {
			break
		}
		page.Token = next
	}
	SortEvacuation(p.Groups)
	return p, nil
}

// SortEvacuation orders groups as an evacuation starts them: the highest
// priority number first, ties by name.
func SortEvacuation(gs []EvacuationGroup) {
	sort.SliceStable(gs, func(i, j int) bool {
		if gs[i].Priority != gs[j].Priority {
			return gs[i].Priority > gs[j].Priority
		}
		return gs[i].Name < gs[j].Name
	})
}

// CreateRunRecord stores the start record of a run another run started (an
// evacuation's group failovers), as the API does for the runs it starts. A
// record that exists is left alone, so a retry changes nothing.
func (a *Activities) CreateRunRecord(ctx context.Context, r ferry.Run) error {
	if err := a.Store.CreateRun(ctx, r); err != nil {
		return fmt.Errorf("create run record %s: %w", r.ID, err)
	}
	return nil
}
