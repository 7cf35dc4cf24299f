package sim

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	ferry "github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/drivers"
)

type site struct {
	name string
	up   bool
}

type member struct {
	name     string
	activeID string
}

type backend struct {
	name       string
	site       string
	members    []*member
	targets    []ferry.ReplicationTarget
	replStatus string
	activeID   string
	frozen     bool
	fenced     bool
	epoch      int64
	lag        time.Duration
}

// replica holds its own write log (the timestamp of each write, seq = index
// + 1) so a diverged old primary keeps the writes the new active never saw.
type replica struct {
	backend  string
	log      []time.Time
	diverged bool
	// forkAt is the last seq a diverged replica shares with the active.
	forkAt int64
}

func (r *replica) seq() int64 { return int64(len(r.log)) }

type resource struct {
	name    string
	group   string
	share   bool
	rpo     time.Duration
	created time.Time
	// replicas[active] is the source every other replica follows; demoted
	// means it accepts no writes, between a planned demote and the promote.
	replicas  []*replica
	active    int
	demoted   bool
	lost      int64
	discarded int64
	// suspended: shipping writes to the secondaries is paused (replication.go).
	suspended bool
	// status is "" (available) or StatusError: a host failover left the
	// resource behind because it is not replicated to the target.
	status string
}

type server struct {
	name     string
	site     string
	group    string
	state    string
	readyAt  time.Time
	quiesced bool
	volumes  []string
	networks []string
}

type serverInfo struct {
	group   string
	volumes []string
}

type groupInfo struct {
	name    string
	servers []string
}

// service says which group serves an address at which site: how http and
// tcp checks know whether DNS points at servers that are actually up.
type service struct {
	group string
	site  string
}

type bubble struct {
	id, site, name string
}

type clone struct {
	id, resource, backend, site string
	seq                         int64
}

type recordKey struct{ name, typ string }

type doneCall struct {
	op     string
	result any
}

type faultState struct {
	id        string
	f         Fault
	remaining int
}

// Cloud is the simulated multi-site cloud. All of its state sits behind one
// mutex: the simulator favours obviously-correct over fast.
type Cloud struct {
	opts Options

	mu         sync.Mutex
	sites      map[string]*site
	backends   map[string]*backend
	resources  map[string]*resource
	servers    map[string]map[string]*server // site -> name
	serverInfo map[string]serverInfo
	groups     map[string]*groupInfo
	networks   map[string]map[string]bool
	bubbles    map[string]*bubble
	clones     map[string]*clone
	records    map[recordKey]drivers.Record
	services   map[string]service // address -> who serves it
	partitions map[[2]string]bool
	faults     []*faultState
	ledger     []LedgerEntry
	done       map[string]doneCall
	nextID     int64
}

// NewCloud returns an empty cloud; LoadInventory populates it.
func NewCloud(opts Options) *Cloud {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Cloud{
		opts:       opts,
		sites:      map[string]*site{},
		backends:   map[string]*backend{},
		resources:  map[string]*resource{},
		servers:    map[string]map[string]*server{},
		serverInfo: map[string]serverInfo{},
		groups:     map[string]*groupInfo{},
		networks:   map[string]map[string]bool{},
		bubbles:    map[string]*bubble{},
		clones:     map[string]*clone{},
		records:    map[recordKey]drivers.Record{},
		services:   map[string]service{},
		partitions: map[[2]string]bool{},
		done:       map[string]doneCall{},
	}
}

func (c *Cloud) id(prefix string) string {
	c.nextID++
	return fmt.Sprintf("%s-%d", prefix, c.nextID)
}

func perm(op, format string, args ...any) error {
	return drivers.Errorf(drivers.Permanent, op, format, args...)
}

func unreachable(op, format string, args ...any) error {
	return drivers.Errorf(drivers.Unreachable, op, format, args...)
}

// LoadInventory builds the world an inventory describes. Items that already
// exist are left as they are, so loading the same inventory twice changes
// nothing and a larger one only adds.
func (c *Cloud) LoadInventory(inv ferry.Inventory) error {
	const op = "sim.load_inventory"
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.opts.Now()
	c.materialize(now)

	// Validate before changing anything, so a bad inventory leaves no half.
	siteOK := func(n string) bool {
		if _, ok := c.sites[n]; ok {
			return true
		}
		for _, s := range inv.Sites {
			if s.Name == n {
				return true
			}
		}
		return false
	}
	backendSite := func(n string) (string, bool) {
		if b, ok := c.backends[n]; ok {
			return b.site, true
		}
		for _, b := range inv.Backends {
			if b.Name == n {
				return b.Site, true
			}
		}
		return "", false
	}
	for _, b := range inv.Backends {
		if !siteOK(b.Site) {
			return perm(op, "backend %s: unknown site %q", b.Name, b.Site)
		}
		for _, t := range b.ReplicationTargets {
			if _, ok := backendSite(t.Backend); !ok {
				return perm(op, "backend %s: unknown replication target backend %q", b.Name, t.Backend)
			}
		}
	}
	for _, g := range inv.Groups {
		if !siteOK(g.PrimarySite) || !siteOK(g.DRSite) {
			return perm(op, "group %s: unknown site", g.Name)
		}
		check := func(name, be string) error {
			s, ok := backendSite(be)
			if !ok {
				return perm(op, "group %s: %s: unknown backend %q", g.Name, name, be)
			}
			if s != g.PrimarySite {
				return perm(op, "group %s: %s: backend %s is not at primary site %s", g.Name, name, be, g.PrimarySite)
			}
			return nil
		}
		for _, v := range g.Volumes {
			if err := check(v.Name, v.Backend); err != nil {
				return err
			}
		}
		for _, s := range g.Shares {
			if err := check(s.Name, s.Backend); err != nil {
				return err
			}
		}
	}

	for _, s := range inv.Sites {
		if _, ok := c.sites[s.Name]; !ok {
			c.sites[s.Name] = &site{name: s.Name, up: true}
		}
	}
	for _, b := range inv.Backends {
		if _, ok := c.backends[b.Name]; ok {
			continue
		}
		nb := &backend{name: b.Name, site: b.Site, targets: b.ReplicationTargets, replStatus: ferry.ReplicationNotCapable, lag: c.opts.DefaultLag}
		if len(b.ReplicationTargets) > 0 {
			nb.replStatus = ferry.ReplicationEnabled
		}
		members := b.Members
		if len(members) == 0 {
			// An unclustered backend is served by one host; naming it after
			// the backend lets failover_completed address it all the same.
			members = []string{b.Name}
		}
		for _, m := range members {
			nb.members = append(nb.members, &member{name: m})
		}
		c.backends[b.Name] = nb
	}
	for _, g := range inv.Groups {
		gi := c.groups[g.Name]
		if gi == nil {
			gi = &groupInfo{name: g.Name}
			c.groups[g.Name] = gi
		}
		rpo := time.Duration(g.RPOSeconds) * time.Second
		addRes := func(name, be string, share bool) {
			if _, ok := c.resources[name]; ok {
				return
			}
			r := &resource{name: name, group: g.Name, share: share, rpo: rpo, created: now}
			r.replicas = append(r.replicas, &replica{backend: be})
			if ts := c.backends[be].targets; len(ts) > 0 {
				r.replicas = append(r.replicas, &replica{backend: ts[0].Backend})
			}
			c.resources[name] = r
		}
		for _, v := range g.Volumes {
			addRes(v.Name, v.Backend, false)
		}
		for _, s := range g.Shares {
			addRes(s.Name, s.Backend, true)
		}
		for _, s := range g.Servers() {
			if _, ok := c.serverInfo[s.Name]; !ok {
				c.serverInfo[s.Name] = serverInfo{group: g.Name, volumes: s.Volumes}
				gi.servers = append(gi.servers, s.Name)
			}
			if c.serverAnywhere(s.Name) {
				continue
			}
			c.siteServers(g.PrimarySite)[s.Name] = &server{
				name: s.Name, site: g.PrimarySite, group: g.Name, state: drivers.ServerRunning,
				readyAt: now, volumes: s.Volumes, networks: s.Networks,
			}
		}
		for _, m := range g.NetworkMappings {
			c.siteNetworks(g.PrimarySite)[m.Production] = true
		}
		for _, r := range g.DNSRecords {
			k := recordKey{normName(r.Name), strings.ToUpper(r.Type)}
			if _, ok := c.records[k]; !ok {
				c.records[k] = drivers.Record{Name: r.Name, Type: r.Type, TTL: r.TTL, Value: r.Primary}
			}
			if _, ok := c.services[r.Primary]; !ok && r.Primary != "" {
				c.services[r.Primary] = service{group: g.Name, site: g.PrimarySite}
			}
			if _, ok := c.services[r.DR]; !ok && r.DR != "" {
				c.services[r.DR] = service{group: g.Name, site: g.DRSite}
			}
		}
	}
	return nil
}

func (c *Cloud) serverAnywhere(name string) bool {
	for _, m := range c.servers {
		if _, ok := m[name]; ok {
			return true
		}
	}
	return false
}

func (c *Cloud) siteServers(s string) map[string]*server {
	m := c.servers[s]
	if m == nil {
		m = map[string]*server{}
		c.servers[s] = m
	}
	return m
}

func (c *Cloud) siteNetworks(s string) map[string]bool {
	m := c.networks[s]
	if m == nil {
		m = map[string]bool{}
		c.networks[s] = m
	}
	return m
}

func normName(n string) string { return strings.ToLower(strings.TrimSuffix(n, ".")) }

func (c *Cloud) siteUp(s string) bool {
	st, ok := c.sites[s]
	return ok && st.up
}

func (c *Cloud) replicaSite(rep *replica) string { return c.backends[rep.backend].site }

func (c *Cloud) linkUp(a, b string) bool {
	if !c.siteUp(a) || !c.siteUp(b) {
		return false
	}
	return a == b || !c.partitions[pair(a, b)]
}

func pair(a, b string) [2]string {
	if a > b {
		a, b = b, a
	}
	return [2]string{a, b}
}

// materialize brings every following secondary up to what it would hold now.
// Applied seqs are computed lazily, which is only correct if they are brought
// up to date before anything that changes how replication flows (links, lag,
// the active replica); every locked operation therefore calls this first.
func (c *Cloud) materialize(now time.Time) {
	for _, r := range c.resources {
		src := r.replicas[r.active]
		for i, sec := range r.replicas {
			if i == r.active || sec.diverged || r.suspended {
				continue
			}
			if !c.linkUp(c.replicaSite(src), c.replicaSite(sec)) {
				continue
			}
			cutoff := now.Add(-c.linkLag(src, sec))
			n := len(sec.log)
			for n < len(src.log) && !src.log[n].After(cutoff) {
				n++
			}
			if n > len(sec.log) {
				sec.log = append(sec.log, src.log[len(sec.log):n]...)
			}
		}
	}
	for _, m := range c.servers {
		for _, s := range m {
			if s.state == drivers.ServerBooting && !now.Before(s.readyAt) {
				s.state = drivers.ServerRunning
			}
		}
	}
}

// linkLag is the larger of the two backends' lags, so SetLag on either end
// of a link (and either direction, before or after a failover) takes effect.
func (c *Cloud) linkLag(a, b *replica) time.Duration {
	return max(c.backends[a.backend].lag, c.backends[b.backend].lag)
}

// lastAt is when the replica's newest write happened (its creation time if
// it has none).
func (r *resource) lastAt(rep *replica) time.Time {
	if len(rep.log) == 0 {
		return r.created
	}
	return rep.log[len(rep.log)-1]
}

func (c *Cloud) replicaStatus(r *resource, i int, now time.Time) drivers.ReplicaStatus {
	rep := r.replicas[i]
	src := r.replicas[r.active]
	st := drivers.ReplicaStatus{Resource: r.name, Site: c.replicaSite(rep), Backend: rep.backend, Seq: rep.seq(),
		Suspended: r.suspended && i != r.active}
	switch {
	case !c.siteUp(st.Site) || rep.diverged || r.status == StatusError:
		st.State = ferry.ReplicaError
		st.LastConsistent = r.lastAt(rep)
	case i == r.active && !r.demoted:
		st.State = ferry.ReplicaActive
		st.LastConsistent = now
	default:
		// The replica is consistent up to just before its oldest unapplied
		// write: that is the data-loss window a failover to it would have.
		st.LastConsistent = now
		if len(rep.log) < len(src.log) {
			st.LastConsistent = src.log[len(rep.log)]
		}
		st.Lag = max(now.Sub(st.LastConsistent), 0)
		st.State = ferry.ReplicaInSync
		if st.Lag > r.rpo {
			st.State = ferry.ReplicaOutOfSync
		}
	}
	return st
}

// --- fault injection, idempotency and the ledger ---------------------------

// InjectFault adds a fault and returns its id.
func (c *Cloud) InjectFault(f Fault) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	fs := &faultState{id: c.id("fault"), f: f, remaining: f.Times}
	c.faults = append(c.faults, fs)
	return fs.id
}

// ClearFaults removes every fault.
func (c *Cloud) ClearFaults() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.faults = nil
}

// hitFaults consumes the faults matching a call and returns the latency to
// add (the operation's modelled latency plus the faults') and the error to
// fail with (nil if the call should go ahead).
func (c *Cloud) hitFaults(op string, targets []string) (time.Duration, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	latency := c.opts.OpLatency[op]
	var fail error
	kept := c.faults[:0]
	for _, fs := range c.faults {
		if !fs.matches(op, targets) {
			kept = append(kept, fs)
			continue
		}
		latency += fs.f.Latency
		if fail == nil && (fs.f.Kind != "" || fs.f.Latency == 0) {
			kind := fs.f.Kind
			if kind == "" {
				kind = drivers.Retryable
			}
			fail = drivers.Errorf(kind, op, "injected fault %s", fs.id)
		}
		if fs.f.Times > 0 {
			fs.remaining--
			if fs.remaining <= 0 {
				continue
			}
		}
		kept = append(kept, fs)
	}
	c.faults = kept
	return latency, fail
}

func (fs *faultState) matches(op string, targets []string) bool {
	if fs.f.Op != "" && fs.f.Op != op {
		return false
	}
	if fs.f.Target == "" {
		return true
	}
	for _, t := range targets {
		if t == fs.f.Target {
			return true
		}
	}
	return false
}

func sleepCtx(ctx context.Context, op string, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return &drivers.Error{Kind: drivers.Retryable, Op: op, Err: ctx.Err()}
	}
}

// call describes one port call for the fault, replay and ledger machinery.
type call struct {
	op      string
	key     string
	target  string   // the ledger's target
	targets []string // what a Fault.Target may name
}

// query runs a read-only port call: faults apply, the ledger does not.
func query[T any](ctx context.Context, c *Cloud, cl call, fn func(now time.Time) (T, error)) (T, error) {
	var zero T
	latency, fail := c.hitFaults(cl.op, cl.targets)
	if err := sleepCtx(ctx, cl.op, latency); err != nil {
		return zero, err
	}
	if fail != nil {
		return zero, fail
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.opts.Now()
	c.materialize(now)
	return fn(now)
}

// mutate runs a mutating port call exactly once per idempotency key: a key
// that already succeeded returns its first result without touching the
// model, and every attempt lands in the ledger. fn must validate before it
// changes anything, so a failed call applies nothing.
func mutate[T any](ctx context.Context, c *Cloud, cl call, fn func(now time.Time) (T, error)) (T, error) {
	var zero T
	latency, fail := c.hitFaults(cl.op, cl.targets)
	if fail == nil {
		fail = sleepCtx(ctx, cl.op, latency)
	} else if err := sleepCtx(ctx, cl.op, latency); err != nil {
		fail = err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.opts.Now()
	record := func(outcome string, err error) {
		e := LedgerEntry{Seq: int64(len(c.ledger) + 1), Key: cl.key, Op: cl.op, Target: cl.target, At: now, Outcome: outcome}
		if err != nil {
			e.Error = err.Error()
		}
		c.ledger = append(c.ledger, e)
	}
	if fail != nil {
		record(OutcomeFailed, fail)
		return zero, fail
	}
	if d, ok := c.done[cl.key]; ok && cl.key != "" {
		if d.op != cl.op {
			// Replaying another operation's result would silently skip this
			// one: a key reused across operations is a caller's bug.
			err := perm(cl.op, "idempotency key %q was already used for %s", cl.key, d.op)
			record(OutcomeFailed, err)
			return zero, err
		}
		record(OutcomeReplayed, nil)
		v, _ := d.result.(T)
		return v, nil
	}
	if err := c.refuseFrozen(cl); err != nil {
		record(OutcomeFailed, err)
		return zero, err
	}
	c.materialize(now)
	v, err := fn(now)
	if err != nil {
		record(OutcomeFailed, err)
		return zero, err
	}
	record(OutcomeApplied, nil)
	if cl.key != "" {
		c.done[cl.key] = doneCall{op: cl.op, result: v}
	}
	return v, nil
}

// Ledger returns every mutating call so far, oldest first.
func (c *Cloud) Ledger() []LedgerEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]LedgerEntry(nil), c.ledger...)
}

// --- control methods --------------------------------------------------------

// Write appends n writes to the resource's active replica and returns its
// newest seq.
func (c *Cloud) Write(resource string, n int) (int64, error) {
	return c.WriteAt(resource, "", n)
}

// WriteAt appends n writes to the resource's replica at site, as an
// application running there would; "" means wherever the active is. It is
// how a test shows an old primary refuses writes.
func (c *Cloud) WriteAt(resource, siteName string, n int) (int64, error) {
	const op = "sim.write"
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.opts.Now()
	c.materialize(now)
	r, ok := c.resources[resource]
	if !ok {
		return 0, perm(op, "unknown resource %q", resource)
	}
	idx := r.active
	if siteName != "" {
		idx = -1
		for i, rep := range r.replicas {
			if c.replicaSite(rep) == siteName {
				idx = i
			}
		}
		if idx < 0 {
			return 0, perm(op, "%s has no replica at site %s", resource, siteName)
		}
	}
	rep := r.replicas[idx]
	s := c.replicaSite(rep)
	switch {
	case !c.siteUp(s):
		return 0, unreachable(op, "site %s is down", s)
	case c.backends[rep.backend].fenced:
		return 0, perm(op, "%s on %s: backend is fenced", resource, rep.backend)
	case idx != r.active || r.demoted:
		return 0, perm(op, "%s on %s: replica is read-only", resource, rep.backend)
	}
	for range n {
		rep.log = append(rep.log, now)
	}
	return rep.seq(), nil
}

// SetSiteDown takes a site down (every call aimed at it is Unreachable, its
// links stop) or brings it back.
func (c *Cloud) SetSiteDown(name string, down bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.sites[name]
	if !ok {
		return perm("sim.set_site_down", "unknown site %q", name)
	}
	c.materialize(c.opts.Now())
	s.up = !down
	return nil
}

// SetPartition cuts (or heals) replication between two sites; control calls
// to both still work.
func (c *Cloud) SetPartition(a, b string, partitioned bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range []string{a, b} {
		if _, ok := c.sites[n]; !ok {
			return perm("sim.set_partition", "unknown site %q", n)
		}
	}
	c.materialize(c.opts.Now())
	if partitioned {
		c.partitions[pair(a, b)] = true
	} else {
		delete(c.partitions, pair(a, b))
	}
	return nil
}

// SetLag sets a backend's replication lag.
func (c *Cloud) SetLag(name string, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.backends[name]
	if !ok {
		return perm("sim.set_lag", "unknown backend %q", name)
	}
	c.materialize(c.opts.Now())
	b.lag = d
	return nil
}

// State returns the stable state of the cloud.
func (c *Cloud) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.materialize(c.opts.Now())
	st := State{
		Sites: []SiteState{}, Backends: []BackendState{}, Resources: []ResourceState{}, Servers: []ServerState{},
		Networks: []NetworkState{}, Bubbles: []BubbleState{}, Clones: []CloneState{}, Records: []drivers.Record{},
	}
	for _, s := range c.sites {
		st.Sites = append(st.Sites, SiteState{Name: s.name, Up: s.up})
	}
	sort.Slice(st.Sites, func(i, j int) bool { return st.Sites[i].Name < st.Sites[j].Name })
	for _, b := range c.backends {
		bs := BackendState{Name: b.name, Site: b.site, ReplicationStatus: b.replStatus, ActiveBackendID: b.activeID,
			Frozen: b.frozen, Fenced: b.fenced, Members: []MemberState{}}
		for _, m := range b.members {
			bs.Members = append(bs.Members, MemberState{Name: m.name, ActiveBackendID: m.activeID})
		}
		sort.Slice(bs.Members, func(i, j int) bool { return bs.Members[i].Name < bs.Members[j].Name })
		st.Backends = append(st.Backends, bs)
	}
	sort.Slice(st.Backends, func(i, j int) bool { return st.Backends[i].Name < st.Backends[j].Name })
	for _, r := range c.resources {
		rs := ResourceState{Name: r.name, Status: r.status}
		for i, rep := range r.replicas {
			active := i == r.active && !r.demoted
			role := RoleSecondary
			if active {
				role = RoleActive
			}
			rs.Replicas = append(rs.Replicas, ReplicaState{
				Site: c.replicaSite(rep), Backend: rep.backend, Role: role,
				Writable: active && !c.backends[rep.backend].fenced, Diverged: rep.diverged,
			})
		}
		sort.Slice(rs.Replicas, func(i, j int) bool { return rs.Replicas[i].Site < rs.Replicas[j].Site })
		st.Resources = append(st.Resources, rs)
	}
	sort.Slice(st.Resources, func(i, j int) bool { return st.Resources[i].Name < st.Resources[j].Name })
	for s, m := range c.servers {
		for _, sv := range m {
			st.Servers = append(st.Servers, ServerState{Site: s, Name: sv.name, State: sv.state, Quiesced: sv.quiesced})
		}
	}
	sort.Slice(st.Servers, func(i, j int) bool {
		if st.Servers[i].Site != st.Servers[j].Site {
			return st.Servers[i].Site < st.Servers[j].Site
		}
		return st.Servers[i].Name < st.Servers[j].Name
	})
	for s, m := range c.networks {
		for n := range m {
			st.Networks = append(st.Networks, NetworkState{Site: s, Name: n})
		}
	}
	sort.Slice(st.Networks, func(i, j int) bool {
		if st.Networks[i].Site != st.Networks[j].Site {
			return st.Networks[i].Site < st.Networks[j].Site
		}
		return st.Networks[i].Name < st.Networks[j].Name
	})
	for _, b := range c.bubbles {
		st.Bubbles = append(st.Bubbles, BubbleState{ID: b.id, Site: b.site, Name: b.name})
	}
	sort.Slice(st.Bubbles, func(i, j int) bool { return st.Bubbles[i].ID < st.Bubbles[j].ID })
	for _, cl := range c.clones {
		st.Clones = append(st.Clones, CloneState{ID: cl.id, Resource: cl.resource, Backend: cl.backend, Seq: cl.seq})
	}
	sort.Slice(st.Clones, func(i, j int) bool { return st.Clones[i].ID < st.Clones[j].ID })
	for _, r := range c.records {
		st.Records = append(st.Records, r)
	}
	sort.Slice(st.Records, func(i, j int) bool {
		if st.Records[i].Name != st.Records[j].Name {
			return st.Records[i].Name < st.Records[j].Name
		}
		return st.Records[i].Type < st.Records[j].Type
	})
	return st
}

// ResourceInfo returns the truth about one resource's writes.
func (c *Cloud) ResourceInfo(name string) (ResourceInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.resources[name]
	if !ok {
		return ResourceInfo{}, perm("sim.resource_info", "unknown resource %q", name)
	}
	now := c.opts.Now()
	c.materialize(now)
	src := r.replicas[r.active]
	ri := ResourceInfo{Name: name, ActiveSite: c.replicaSite(src), ActiveBackend: src.backend, ActiveSeq: src.seq(),
		LostWrites: r.lost, DiscardedWrites: r.discarded, Status: r.status}
	for i, rep := range r.replicas {
		st := c.replicaStatus(r, i, now)
		ri.Replicas = append(ri.Replicas, ReplicaInfo{Site: st.Site, Backend: rep.backend, Seq: rep.seq(), State: st.State, Diverged: rep.diverged})
	}
	sort.Slice(ri.Replicas, func(i, j int) bool { return ri.Replicas[i].Site < ri.Replicas[j].Site })
	return ri, nil
}

// --- background workload ----------------------------------------------------

// Run runs the background workload until ctx ends.
func (c *Cloud) Run(ctx context.Context) error {
	if c.opts.WorkloadInterval <= 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(c.opts.WorkloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			c.workloadTick()
		}
	}
}

// StartWorkload runs the background workload in a goroutine until ctx ends.
func (c *Cloud) StartWorkload(ctx context.Context) {
	if c.opts.WorkloadInterval > 0 {
		go func() { _ = c.Run(ctx) }()
	}
}

// workloadTick writes once to every resource an application is using right
// now. Only running, unquiesced servers write, which is why a planned
// failover (quiesce, stop, then sync) loses nothing.
func (c *Cloud) workloadTick() {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.opts.Now()
	c.materialize(now)
	for _, r := range c.resources {
		src := r.replicas[r.active]
		s := c.replicaSite(src)
		if r.demoted || c.backends[src.backend].fenced || !c.siteUp(s) {
			continue
		}
		for _, sv := range c.servers[s] {
			if sv.state != drivers.ServerRunning || sv.quiesced {
				continue
			}
			if (r.share && sv.group == r.group) || (!r.share && contains(sv.volumes, r.name)) {
				src.log = append(src.log, now)
				break
			}
		}
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
