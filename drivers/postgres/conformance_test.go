package postgres_test

import (
	"context"
	"testing"

	"github.com/ferrydr/ferry/drivers/postgres"
	"github.com/ferrydr/ferry/testsuite/conformance"
)

// TestConformance runs the driver conformance suite against a real
// primary and standby, a fresh pair per check.
func TestConformance(t *testing.T) {
	conformance.Run(t, func(t *testing.T) *conformance.Fixture {
		tp := postgres.NewTestPair(t)
		return &conformance.Fixture{
			Storage:   tp.Adapter,
			Primary:   conformance.Side{Backend: tp.Primary.Name, Site: tp.Primary.Site, Members: []string{tp.Primary.Name}},
			DR:        conformance.Side{Backend: tp.Standby.Name, Site: tp.Standby.Site, Members: []string{tp.Standby.Name}},
			TargetID:  tp.Standby.Name,
			Resources: []string{postgres.TestCluster},
			Workload:  workload{tp},
			Control:   tp,
		}
	})
}

// workload writes marker rows with SQL.
type workload struct{ tp *postgres.TestPair }

func (w workload) Write(ctx context.Context, site, _ string) (conformance.Marker, error) {
	r, err := w.tp.WriteRow(ctx, site)
	return conformance.Marker{ID: r.ID, At: r.At}, err
}

func (w workload) Markers(ctx context.Context, site, _ string) ([]string, error) {
	return w.tp.Rows(ctx, site)
}

func (w workload) CloneMarkers(ctx context.Context, clone string) ([]string, error) {
	return w.tp.CloneRows(ctx, clone)
}

func (w workload) WriteClone(ctx context.Context, clone string) (conformance.Marker, error) {
	r, err := w.tp.WriteCloneRow(ctx, clone)
	return conformance.Marker{ID: r.ID, At: r.At}, err
}

func (w workload) Clones(context.Context) ([]string, error) { return w.tp.CloneDirs() }
