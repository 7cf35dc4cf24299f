package ferry

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Limits on the size of one item, so a single PUT cannot ask a run for more
// than Temporal and the drivers are sized for.
const (
	MaxServersPerGroup = 1000
	MaxVolumesPerGroup = 4000
	MaxSharesPerGroup  = 4000
	MaxMembers         = 100
	MaxNameLen         = 63
)

// Defaults a group gets for the fields it leaves empty.
const (
	DefaultConsistency   = ConsistencyCrash
	DefaultQuiescePolicy = QuiesceAbort
	DefaultDNSTTL        = 60
)

// Backend types.
const (
	BackendCinder   = "cinder"
	BackendManila   = "manila"
	BackendRBD      = "rbd"
	BackendPostgres = "postgres"
	BackendSim      = "sim"
)

var (
	nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$`)

	backendTypes  = []string{BackendCinder, BackendManila, BackendRBD, BackendPostgres, BackendSim}
	consistencies = []string{ConsistencyCrash, ConsistencyApplication}
	quiesce       = []string{QuiesceAbort, QuiesceContinue}
	dnsTypes      = []string{"A", "AAAA", "CNAME", "TXT"}
	checkTypes    = []string{CheckHTTP, CheckTCP, CheckDNS, CheckSQL}
)

// Defaults fills the fields a group may leave empty: consistency crash,
// quiesce policy abort and a DNS TTL of 60 seconds.
func (g *Group) Defaults() {
	if g.Consistency == "" {
		g.Consistency = DefaultConsistency
	}
	if g.QuiescePolicy == "" {
		g.QuiescePolicy = DefaultQuiescePolicy
	}
	for i := range g.DNSRecords {
		if g.DNSRecords[i].TTL == 0 {
			g.DNSRecords[i].TTL = DefaultDNSTTL
		}
	}
}

// Validate reports the first invalid field of the site.
func (s Site) Validate() error {
	if err := checkName("name", s.Name); err != nil {
		return err
	}
	for k := range s.Labels {
		if k == "" || len(k) > 253 {
			return Invalid("labels", "label keys must be 1 to 253 characters")
		}
	}
	return nil
}

// Validate reports the first invalid field of the backend. Observed fields
// (replication_status, active_backend_id, frozen) are not checked: a PUT
// ignores them.
func (b Backend) Validate() error {
	if err := checkName("name", b.Name); err != nil {
		return err
	}
	if err := checkName("site", b.Site); err != nil {
		return err
	}
	if b.Type == "" {
		return Invalid("type", "is required (one of %s)", strings.Join(backendTypes, ", "))
	}
	if !slices.Contains(backendTypes, b.Type) {
		return Invalid("type", "must be one of %s, not %q", strings.Join(backendTypes, ", "), b.Type)
	}
	if len(b.Members) > MaxMembers {
		return Invalid("members", "at most %d members, got %d", MaxMembers, len(b.Members))
	}
	seen := make(map[string]int, len(b.Members))
	for i, m := range b.Members {
		f := fmt.Sprintf("members[%d]", i)
		if strings.TrimSpace(m) == "" {
			return Invalid(f, "is empty")
		}
		if len(m) > 255 {
			return Invalid(f, "is longer than 255 characters")
		}
		if j, dup := seen[m]; dup {
			return Invalid(f, "duplicates members[%d] %q", j, m)
		}
		seen[m] = i
	}
	ids := make(map[string]int, len(b.ReplicationTargets))
	for i, t := range b.ReplicationTargets {
		f := fmt.Sprintf("replication_targets[%d]", i)
		if t.ID == "" {
			return Invalid(f+".id", "is required")
		}
		if t.ID == ActiveBackendDefault {
			return Invalid(f+".id", "%q is reserved for failing back", ActiveBackendDefault)
		}
		if j, dup := ids[t.ID]; dup {
			return Invalid(f+".id", "duplicates replication_targets[%d].id %q", j, t.ID)
		}
		ids[t.ID] = i
		if err := checkName(f+".backend", t.Backend); err != nil {
			return err
		}
		if t.Backend == b.Name {
			return Invalid(f+".backend", "a backend cannot replicate to itself")
		}
	}
	return nil
}

// Validate reports the first invalid field of the group. Fields that
// Defaults fills may be empty.
func (g Group) Validate() error {
	if err := checkName("name", g.Name); err != nil {
		return err
	}
	// A project scopes who may see and run the group (docs/security.md),
	// so it is a name like any other, compared exactly.
	if g.Project != "" {
		if err := checkName("project", g.Project); err != nil {
			return err
		}
	}
	if err := checkName("primary_site", g.PrimarySite); err != nil {
		return err
	}
	if err := checkName("dr_site", g.DRSite); err != nil {
		return err
	}
	if g.PrimarySite == g.DRSite {
		return Invalid("dr_site", "must differ from primary_site %q", g.PrimarySite)
	}
	if g.RPOSeconds <= 0 {
		return Invalid("rpo_seconds", "must be a positive number of seconds, got %d", g.RPOSeconds)
	}
	if g.RPOSeconds > 30*24*3600 {
		return Invalid("rpo_seconds", "must be at most 30 days (2592000), got %d", g.RPOSeconds)
	}
	if g.RTOSeconds < 0 || g.RTOSeconds > 30*24*3600 {
		return Invalid("rto_seconds", "must be 0 (no objective) to 30 days (2592000) seconds, got %d", g.RTOSeconds)
	}
	if g.Consistency != "" && !slices.Contains(consistencies, g.Consistency) {
		return Invalid("consistency", "must be one of %s, not %q", strings.Join(consistencies, ", "), g.Consistency)
	}
	if g.QuiescePolicy != "" && !slices.Contains(quiesce, g.QuiescePolicy) {
		return Invalid("quiesce_policy", "must be one of %s, not %q", strings.Join(quiesce, ", "), g.QuiescePolicy)
	}
	if g.ActiveSite != "" && g.ActiveSite != g.PrimarySite && g.ActiveSite != g.DRSite {
		return Invalid("active_site", "must be primary_site or dr_site, not %q", g.ActiveSite)
	}

	volumes, err := checkResources("volumes", len(g.Volumes), MaxVolumesPerGroup, func(i int) (string, string) {
		return g.Volumes[i].Name, g.Volumes[i].Backend
	}, func(i int) int { return g.Volumes[i].SizeGB })
	if err != nil {
		return err
	}
	if _, err := checkResources("shares", len(g.Shares), MaxSharesPerGroup, func(i int) (string, string) {
		return g.Shares[i].Name, g.Shares[i].Backend
	}, func(i int) int { return g.Shares[i].SizeGB }); err != nil {
		return err
	}

	if err := g.validateTiers(volumes); err != nil {
		return err
	}

	prod := make(map[string]int, len(g.NetworkMappings))
	for i, m := range g.NetworkMappings {
		f := fmt.Sprintf("network_mappings[%d]", i)
		if m.Production == "" {
			return Invalid(f+".production", "is required")
		}
		if m.DR == "" {
			return Invalid(f+".dr", "is required")
		}
		if j, dup := prod[m.Production]; dup {
			return Invalid(f+".production", "duplicates network_mappings[%d] %q", j, m.Production)
		}
		prod[m.Production] = i
	}

	records := make(map[string]int, len(g.DNSRecords))
	for i, r := range g.DNSRecords {
		f := fmt.Sprintf("dns_records[%d]", i)
		if r.Name == "" {
			return Invalid(f+".name", "is required")
		}
		if len(r.Name) > 253 {
			return Invalid(f+".name", "is longer than 253 characters")
		}
		if !slices.Contains(dnsTypes, r.Type) {
			return Invalid(f+".type", "must be one of %s, not %q", strings.Join(dnsTypes, ", "), r.Type)
		}
		if r.TTL != 0 && (r.TTL < 1 || r.TTL > 86400) {
			return Invalid(f+".ttl", "must be 1 to 86400 seconds, got %d", r.TTL)
		}
		if r.Primary == "" {
			return Invalid(f+".primary", "is required")
		}
		if r.DR == "" {
			return Invalid(f+".dr", "is required")
		}
		key := r.Type + " " + strings.ToLower(strings.TrimSuffix(r.Name, "."))
		if j, dup := records[key]; dup {
			return Invalid(f+".name", "duplicates dns_records[%d] (%s %s)", j, r.Type, r.Name)
		}
		records[key] = i
	}

	checks := make(map[string]int, len(g.Checks))
	for i, c := range g.Checks {
		f := fmt.Sprintf("checks[%d]", i)
		if err := checkName(f+".name", c.Name); err != nil {
			return err
		}
		if j, dup := checks[c.Name]; dup {
			return Invalid(f+".name", "duplicates checks[%d] %q", j, c.Name)
		}
		checks[c.Name] = i
		if !slices.Contains(checkTypes, c.Type) {
			return Invalid(f+".type", "must be one of %s, not %q", strings.Join(checkTypes, ", "), c.Type)
		}
		if strings.TrimSpace(c.Target) == "" {
			return Invalid(f+".target", "is required")
		}
	}

	if g.DrillSchedule != "" {
		if err := checkCron(g.DrillSchedule); err != nil {
			return Invalid("drill_schedule", "%s", err)
		}
	}
	return g.validateHooks()
}

// MaxHooks bounds a group's hooks; MaxHookTimeout one hook's run time.
const (
	MaxHooks       = 50
	MaxHookTimeout = 3600
)

func (g Group) validateHooks() error {
	if len(g.Hooks) > MaxHooks {
		return Invalid("hooks", "at most %d hooks per group, got %d", MaxHooks, len(g.Hooks))
	}
	names := map[string]bool{}
	for i, h := range g.Hooks {
		f := fmt.Sprintf("hooks[%d]", i)
		if err := checkName(f+".name", h.Name); err != nil {
			return err
		}
		if names[h.Name] {
			return Invalid(f+".name", "hook %q is listed twice", h.Name)
		}
		names[h.Name] = true
		switch h.Point {
		case HookBeforeQuiesce, HookAfterSnapshot, HookAfterPromote, HookAfterTier, HookBeforeCleanup:
		default:
			return Invalid(f+".point", "must be one of %s, %s, %s, %s, %s; got %q",
				HookBeforeQuiesce, HookAfterSnapshot, HookAfterPromote, HookAfterTier, HookBeforeCleanup, h.Point)
		}
		switch {
		case h.URL == "" && len(h.Command) == 0:
			return Invalid(f, "needs a url (webhook) or a command")
		case h.URL != "" && len(h.Command) > 0:
			return Invalid(f, "takes a url or a command, not both")
		case h.URL != "":
			u, err := url.Parse(h.URL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return Invalid(f+".url", "must be an http or https URL")
			}
		case strings.TrimSpace(h.Command[0]) == "":
			return Invalid(f+".command[0]", "is empty")
		}
		if h.TimeoutSeconds < 0 || h.TimeoutSeconds > MaxHookTimeout {
			return Invalid(f+".timeout_seconds", "must be between 0 (default 60) and %d", MaxHookTimeout)
		}
		switch h.OnFailure {
		case "", HookAbort, HookContinue, HookPause:
		default:
			return Invalid(f+".on_failure", "must be %s, %s or %s; got %q", HookAbort, HookContinue, HookPause, h.OnFailure)
		}
	}
	return nil
}

func (g Group) validateTiers(volumes map[string]int) error {
	if len(g.Tiers) == 0 {
		return Invalid("tiers", "a group needs at least one tier with at least one server")
	}
	total := 0
	for _, t := range g.Tiers {
		total += len(t.Servers)
	}
	if total > MaxServersPerGroup {
		return Invalid("tiers", "at most %d servers per group, got %d", MaxServersPerGroup, total)
	}
	tiers := make(map[string]int, len(g.Tiers))
	servers := make(map[string]string, total)
	for i, t := range g.Tiers {
		f := fmt.Sprintf("tiers[%d]", i)
		if err := checkName(f+".name", t.Name); err != nil {
			return err
		}
		if j, dup := tiers[t.Name]; dup {
			return Invalid(f+".name", "duplicates tiers[%d] %q", j, t.Name)
		}
		tiers[t.Name] = i
		if len(t.Servers) == 0 {
			return Invalid(f+".servers", "a tier needs at least one server")
		}
		for k, s := range t.Servers {
			sf := fmt.Sprintf("%s.servers[%d]", f, k)
			if err := checkName(sf+".name", s.Name); err != nil {
				return err
			}
			if prev, dup := servers[s.Name]; dup {
				return Invalid(sf+".name", "duplicates %s %q", prev, s.Name)
			}
			servers[s.Name] = sf
			for v, vol := range s.Volumes {
				if _, ok := volumes[vol]; !ok {
					return Invalid(fmt.Sprintf("%s.volumes[%d]", sf, v), "%q is not one of the group's volumes", vol)
				}
			}
			for n, net := range s.Networks {
				if net == "" {
					return Invalid(fmt.Sprintf("%s.networks[%d]", sf, n), "is empty")
				}
			}
		}
	}
	return nil
}

// checkResources checks the names, backends and sizes of a group's volumes or
// shares and returns the index of each name.
func checkResources(field string, n, limit int, at func(int) (name, backend string), size func(int) int) (map[string]int, error) {
	if n > limit {
		return nil, Invalid(field, "at most %d %s per group, got %d", limit, field, n)
	}
	seen := make(map[string]int, n)
	for i := 0; i < n; i++ {
		f := fmt.Sprintf("%s[%d]", field, i)
		name, backend := at(i)
		if err := checkName(f+".name", name); err != nil {
			return nil, err
		}
		if j, dup := seen[name]; dup {
			return nil, Invalid(f+".name", "duplicates %s[%d] %q", field, j, name)
		}
		seen[name] = i
		if err := checkName(f+".backend", backend); err != nil {
			return nil, err
		}
		if size(i) < 0 {
			return nil, Invalid(f+".size_gb", "must not be negative")
		}
	}
	return seen, nil
}

// Validate reports the first invalid field of the document, prefixed with
// the item's place in it ("groups[1].tiers[0].name"), and names used twice.
// References between items (a backend's site, a group's volumes' backends)
// may point at items the server already holds, so they are checked there.
func (inv Inventory) Validate() error {
	sites := make(map[string]int, len(inv.Sites))
	for i, s := range inv.Sites {
		p := fmt.Sprintf("sites[%d]", i)
		if err := s.Validate(); err != nil {
			return prefix(p, err)
		}
		if j, dup := sites[s.Name]; dup {
			return Invalid(p+".name", "duplicates sites[%d] %q", j, s.Name)
		}
		sites[s.Name] = i
	}
	backends := make(map[string]int, len(inv.Backends))
	for i, b := range inv.Backends {
		p := fmt.Sprintf("backends[%d]", i)
		if err := b.Validate(); err != nil {
			return prefix(p, err)
		}
		if j, dup := backends[b.Name]; dup {
			return Invalid(p+".name", "duplicates backends[%d] %q", j, b.Name)
		}
		backends[b.Name] = i
	}
	groups := make(map[string]int, len(inv.Groups))
	for i, g := range inv.Groups {
		p := fmt.Sprintf("groups[%d]", i)
		if err := g.Validate(); err != nil {
			return prefix(p, err)
		}
		if j, dup := groups[g.Name]; dup {
			return Invalid(p+".name", "duplicates groups[%d] %q", j, g.Name)
		}
		groups[g.Name] = i
	}
	return nil
}

// prefix puts an item's place in front of the field of err.
func prefix(p string, err error) error {
	e, ok := err.(*Error)
	if !ok {
		return err
	}
	out := *e
	if out.Field == "" {
		out.Field = p
	} else {
		out.Field = p + "." + out.Field
	}
	return &out
}

func checkName(field, name string) error {
	switch {
	case name == "":
		return Invalid(field, "is required")
	case len(name) > MaxNameLen:
		return Invalid(field, "must be at most %d characters, got %d", MaxNameLen, len(name))
	case !nameRE.MatchString(name):
		return Invalid(field, "%q must be lower-case letters, digits, '-', '.' or '_', and start and end with a letter or digit", name)
	}
	return nil
}

// checkCron accepts a standard five-field cron expression (minute hour
// day-of-month month day-of-week), as Temporal schedules do.
func checkCron(expr string) error {
	fields := strings.Fields(expr)
	if len(fields) != 5 {
		return fmt.Errorf("must be a cron expression with 5 fields (minute hour day month weekday), got %d", len(fields))
	}
	names := [5]string{"minute", "hour", "day of month", "month", "day of week"}
	for i, f := range fields {
		for _, r := range f {
			ok := r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' ||
				strings.ContainsRune("*,-/?", r)
			if !ok {
				return fmt.Errorf("%s field %q has an unexpected character %q", names[i], f, r)
			}
		}
	}
	return nil
}
