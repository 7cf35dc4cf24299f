package sim_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	ferry "github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/drivers/sim"
	"github.com/ferrydr/ferry/testsuite/conformance"
	"github.com/stretchr/testify/require"
)

// TestConformance runs the driver conformance suite against the simulator,
// served over HTTP as `ferry sim` serves it.
func TestConformance(t *testing.T) {
	conformance.Run(t, func(t *testing.T) *conformance.Fixture {
		const (
			siteA, siteB = "conf-site-a", "conf-site-b"
			beA, beB     = "conf-a", "conf-b"
		)
		resources := []string{"conf-db", "conf-logs"}
		cloud := sim.NewCloud(sim.Options{})
		srv := httptest.NewServer(sim.NewHandler(cloud))
		t.Cleanup(srv.Close)
		c := sim.NewClient(srv.URL, nil)
		inv := ferry.Inventory{
			Sites: []ferry.Site{{Name: siteA}, {Name: siteB}},
			Backends: []ferry.Backend{
				{Name: beA, Site: siteA, Type: "cinder", Members: []string{"conf-a1", "conf-a2"},
					ReplicationTargets: []ferry.ReplicationTarget{{ID: "b", Backend: beB}}},
				{Name: beB, Site: siteB, Type: "cinder", Members: []string{"conf-b1"},
					ReplicationTargets: []ferry.ReplicationTarget{{ID: "a", Backend: beA}}},
			},
			Groups: []ferry.Group{{Name: "conf", PrimarySite: siteA, DRSite: siteB, RPOSeconds: 60,
				Volumes: []ferry.Volume{{Name: resources[0], Backend: beA}, {Name: resources[1], Backend: beA}}}},
		}
		require.NoError(t, c.LoadInventory(context.Background(), inv))
		w := &simWorkload{c: c, logs: map[string]map[string][]string{}, active: map[string]string{}}
		for _, r := range resources {
			w.logs[r] = map[string][]string{}
			w.active[r] = siteA
		}
		return &conformance.Fixture{
			Storage:   c,
			Network:   c,
			Primary:   conformance.Side{Backend: beA, Site: siteA, Members: []string{"conf-a1", "conf-a2"}},
			DR:        conformance.Side{Backend: beB, Site: siteB, Members: []string{"conf-b1"}},
			TargetID:  "b",
			Resources: resources,
			Workload:  w,
			Control:   simControl{c: c, a: siteA, b: siteB},
		}
	})
}

type simControl struct {
	c    *sim.Client
	a, b string
}

func (s simControl) SetSiteDown(ctx context.Context, site string, down bool) error {
	return s.c.SetSiteDown(ctx, site, down)
}

func (s simControl) SetStalled(ctx context.Context, stalled bool) error {
	return s.c.SetPartition(ctx, s.a, s.b, stalled)
}

// simWorkload gives the simulator's positional writes (seq n is the n-th
// write of a replica's log) unique marker ids. It mirrors each replica's log
// as the simulator moves it: a following secondary holds a prefix of the
// active's log, a diverged one keeps its own, and a newly promoted replica
// starts from the prefix it held of the previous active's log. Every write
// goes through here, so the mirror never misses one.
type simWorkload struct {
	c      *sim.Client
	mu     sync.Mutex
	n      int
	logs   map[string]map[string][]string // resource -> site -> ids
	active map[string]string              // resource -> site
}

func (w *simWorkload) refresh(ctx context.Context, res string) (sim.ResourceInfo, error) {
	ri, err := w.c.ResourceInfo(ctx, res)
	if err != nil {
		return ri, err
	}
	logs := w.logs[res]
	seq := map[string]int64{}
	for _, rep := range ri.Replicas {
		seq[rep.Site] = rep.Seq
	}
	if ri.ActiveSite != w.active[res] {
		logs[ri.ActiveSite] = prefix(logs[w.active[res]], seq[ri.ActiveSite])
		w.active[res] = ri.ActiveSite
	}
	for _, rep := range ri.Replicas {
		switch {
		case rep.Site == ri.ActiveSite || rep.Diverged:
			logs[rep.Site] = prefix(logs[rep.Site], rep.Seq)
		default:
			logs[rep.Site] = prefix(logs[ri.ActiveSite], rep.Seq)
		}
	}
	return ri, nil
}

func prefix(log []string, n int64) []string {
	if int64(len(log)) < n {
		panic(fmt.Sprintf("simulator holds %d writes, the workload made %d", n, len(log)))
	}
	return append([]string(nil), log[:n]...)
}

func (w *simWorkload) Write(ctx context.Context, site, res string) (conformance.Marker, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := w.refresh(ctx, res); err != nil {
		return conformance.Marker{}, err
	}
	seq, err := w.c.WriteAt(ctx, res, site, 1)
	if err != nil {
		return conformance.Marker{}, err
	}
	w.n++
	id := fmt.Sprintf("%s#%d", res, w.n)
	log := w.logs[res][site]
	if int64(len(log))+1 != seq {
		return conformance.Marker{}, fmt.Errorf("write %d at %s: the mirror holds %d writes", seq, site, len(log))
	}
	w.logs[res][site] = append(log, id)
	return conformance.Marker{ID: id, At: time.Now()}, nil
}

func (w *simWorkload) Markers(ctx context.Context, site, res string) ([]string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := w.refresh(ctx, res); err != nil {
		return nil, err
	}
	return append([]string(nil), w.logs[res][site]...), nil
}

func (w *simWorkload) CloneMarkers(ctx context.Context, id string) ([]string, error) {
	st, err := w.c.State(ctx)
	if err != nil {
		return nil, err
	}
	for _, cl := range st.Clones {
		if cl.ID != id {
			continue
		}
		for _, b := range st.Backends {
			if b.Name == cl.Backend {
				w.mu.Lock()
				defer w.mu.Unlock()
				if _, err := w.refresh(ctx, cl.Resource); err != nil {
					return nil, err
				}
				return prefix(w.logs[cl.Resource][b.Site], cl.Seq), nil
			}
		}
	}
	return nil, fmt.Errorf("no clone %s", id)
}

func (w *simWorkload) Clones(ctx context.Context) ([]string, error) {
	st, err := w.c.State(ctx)
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, cl := range st.Clones {
		out = append(out, cl.ID)
	}
	return out, nil
}
