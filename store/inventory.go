package store

import (
	"context"
	"fmt"

	"github.com/ferrydr/ferry"
	"github.com/jackc/pgx/v5"
)

// ApplyInventory puts every item of inv in one transaction: sites, then
// backends (their replication targets in a second pass, so a target may be a
// backend later in the list), then groups. Any error rolls everything back;
// its Field names the item, e.g. "backends[1].site".
func (s *Store) ApplyInventory(ctx context.Context, inv ferry.Inventory) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		for i, site := range inv.Sites {
			if _, err := putSite(ctx, tx, site); err != nil {
				return fmt.Errorf("site %q: %w", site.Name, withField(err, fmt.Sprintf("sites[%d]", i)))
			}
		}
		for i, b := range inv.Backends {
			if _, err := putBackendCore(ctx, tx, b); err != nil {
				return fmt.Errorf("backend %q: %w", b.Name, withField(err, fmt.Sprintf("backends[%d]", i)))
			}
		}
		for i, b := range inv.Backends {
			if err := putBackendTargets(ctx, tx, b); err != nil {
				return fmt.Errorf("backend %q: %w", b.Name, withField(err, fmt.Sprintf("backends[%d]", i)))
			}
		}
		for i, g := range inv.Groups {
			if _, err := putGroup(ctx, tx, g); err != nil {
				return fmt.Errorf("group %q: %w", g.Name, withField(err, fmt.Sprintf("groups[%d]", i)))
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: apply inventory: %w", err)
	}
	return nil
}
