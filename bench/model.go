package bench

import (
	"container/heap"
	"fmt"
	"time"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/drivers/sim"
)

// Latency is the benchmark's latency model: how long the storage, the
// servers, DNS and the checks themselves take. The simulator applies it
// (sim.Options) and CriticalPath computes the floor from the same numbers.
type Latency struct {
	Promote time.Duration // one promote call (a batch of one backend's volumes)
	Boot    time.Duration // a server from boot to running
	Health  time.Duration // one health read of a tier's servers
	DNS     time.Duration // one record replaced
	Verify  time.Duration // one check run
}

// Zero is the model with no latency at all: what remains is orchestration.
var Zero = Latency{}

// String shows the model in the results table.
func (l Latency) String() string {
	return fmt.Sprintf("promote %s, boot %s, health %s, DNS %s, verify %s", l.Promote, l.Boot, l.Health, l.DNS, l.Verify)
}

// SimOptions configures the simulator with the model: servers boot for
// Boot, and each modelled operation waits its latency before it answers.
// Replication has no lag and there is no background workload, so the
// final sync of a planned failover passes at once.
func (l Latency) SimOptions() sim.Options {
	return sim.Options{
		BootTime: l.Boot,
		OpLatency: map[string]time.Duration{
			"storage.promote": l.Promote,
			"compute.health":  l.Health,
			"dns.replace":     l.DNS,
			"verify.check":    l.Verify,
		},
	}
}

// GroupPath is the critical path of one group's failover under the model:
// the storage and server operations that must happen one after the other,
// with no orchestration at all. Batches promote in parallel (one call
// each); each tier boots after the one before it is healthy, and a tier is
// known healthy no sooner than one health read and no sooner than its boot
// (the simulator reads state when the call answers); then DNS, one record
// after the other, and the checks, one after the other, as the group
// defines them. Every other operation is free in the model.
func GroupPath(g ferry.Group, l Latency) time.Duration {
	d := time.Duration(0)
	if len(g.Volumes)+len(g.Shares) > 0 {
		d += l.Promote
	}
	for _, t := range g.Tiers {
		if len(t.Servers) > 0 {
			d += max(l.Boot, l.Health)
		}
	}
	d += time.Duration(len(g.DNSRecords)) * l.DNS
	d += time.Duration(len(g.Checks)) * l.Verify
	return d
}

// CriticalPath is the floor of an evacuation's RTO under the model: the
// groups, highest priority first (ties by name, as the evacuation orders
// them), each taking its GroupPath, with at most concurrency running at
// once and the next starting the moment one ends.
func CriticalPath(groups []ferry.Group, l Latency, concurrency int) time.Duration {
	if concurrency < 1 {
		concurrency = 1
	}
	order := append([]ferry.Group(nil), groups...)
	sortByPriority(order)
	slots := &endTimes{}
	var end time.Duration
	for _, g := range order {
		start := time.Duration(0)
		if slots.Len() == concurrency {
			start = heap.Pop(slots).(time.Duration)
		}
		done := start + GroupPath(g, l)
		heap.Push(slots, done)
		end = max(end, done)
	}
	return end
}

func sortByPriority(gs []ferry.Group) {
	// insertion sort keeps it stable and obvious; a site has few groups
	for i := 1; i < len(gs); i++ {
		for j := i; j > 0 && before(gs[j], gs[j-1]); j-- {
			gs[j], gs[j-1] = gs[j-1], gs[j]
		}
	}
}

func before(a, b ferry.Group) bool {
	if a.Priority != b.Priority {
		return a.Priority > b.Priority
	}
	return a.Name < b.Name
}

// endTimes is a min-heap of the times running groups end.
type endTimes []time.Duration

func (h endTimes) Len() int           { return len(h) }
func (h endTimes) Less(i, j int) bool { return h[i] < h[j] }
func (h endTimes) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *endTimes) Push(x any)        { *h = append(*h, x.(time.Duration)) }
func (h *endTimes) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
