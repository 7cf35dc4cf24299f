package router

import (
	"context"

	"github.com/ferrydr/ferry/drivers"
)

var _ drivers.Verify = (*Verify)(nil)

// Verify sends each check to the first adapter routed for its type whose
// owns accepts its target (a real database's sql checks to the PostgreSQL
// adapter), and every other check to the fallback (the simulator's
// http, tcp and dns checks). A check nobody takes is a Permanent error.
type Verify struct {
	routes   []verifyRoute
	fallback drivers.Verify
}

type verifyRoute struct {
	typ  string
	owns func(target string) bool
	to   drivers.Verify
}

// NewVerify returns a router; fallback (nil: none) runs the checks no
// route takes.
func NewVerify(fallback drivers.Verify) *Verify { return &Verify{fallback: fallback} }

// Route sends checks of type typ whose target owns accepts (nil: every
// target) to v. Routes are tried in the order they were added.
func (r *Verify) Route(typ string, owns func(target string) bool, v drivers.Verify) {
	r.routes = append(r.routes, verifyRoute{typ: typ, owns: owns, to: v})
}

// Check runs c on the adapter that takes it.
func (r *Verify) Check(ctx context.Context, site, network string, c drivers.CheckSpec) (drivers.CheckResult, error) {
	for _, rt := range r.routes {
		if rt.typ == c.Type && (rt.owns == nil || rt.owns(c.Target)) {
			return rt.to.Check(ctx, site, network, c)
		}
	}
	if r.fallback == nil {
		return drivers.CheckResult{Name: c.Name}, drivers.Errorf(drivers.Permanent, "verify.check", "no adapter runs %s check %s (target %q)", c.Type, c.Name, c.Target)
	}
	return r.fallback.Check(ctx, site, network, c)
}
