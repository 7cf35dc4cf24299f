package server

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/ferrydr/ferry"
)

// DefaultProgressTTL is how long the API reuses a live run's progress. A
// progress read costs Temporal a describe and a query, and a query is a
// workflow task on a worker: under load, one per GET would make the
// worker's load follow the API's request rate. `ferry watch` and the
// dashboard poll every 1-2 s, so a progress at most this old is never
// seen stale by them; a steering action through this API drops it at once.
const DefaultProgressTTL = 250 * time.Millisecond

// progressCache coalesces the progress reads of one unfinished run: the
// requests that arrive while one read is in flight share its answer, and
// an answer is served again for ttl. Only the workflow's own answer to the
// progress query is kept: a finished run's record (from the store), a run
// Temporal says has closed and a run whose workflow does not answer yet are
// asked again on the next read.
type progressCache struct {
	ttl    time.Duration
	now    func() time.Time
	flight singleflight.Group

	mu      sync.Mutex
	entries map[string]progressEntry
	// gen counts a run's invalidations: a read that started before one
	// must not store its (older) answer after it.
	gen map[string]uint64
}

type progressEntry struct {
	run ferry.Run
	at  time.Time
}

func newProgressCache(ttl time.Duration) *progressCache {
	return &progressCache{ttl: ttl, now: time.Now, entries: map[string]progressEntry{}, gen: map[string]uint64{}}
}

// get returns the run's progress: cached if fresh, else from read, which
// concurrent callers share. read gets a context of its own, so one caller
// going away does not fail the others' shared read; it says whether its
// answer is the workflow's progress, which may be kept.
func (c *progressCache) get(ctx context.Context, id string, read func(context.Context) (ferry.Run, bool, error)) (ferry.Run, error) {
	if c.ttl <= 0 {
		run, _, err := read(ctx)
		return run, err
	}
	c.mu.Lock()
	if e, ok := c.entries[id]; ok && c.now().Sub(e.at) < c.ttl {
		c.mu.Unlock()
		return e.run, nil
	}
	gen := c.gen[id]
	c.mu.Unlock()
	ch := c.flight.DoChan(id, func() (any, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*queryTimeout)
		defer cancel()
		run, keep, err := read(rctx)
		if err != nil || !keep {
			return run, err
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.gen[id] == gen && !ferry.RunEnded(run.State) {
			c.entries[id] = progressEntry{run: run, at: c.now()}
			c.prune()
		}
		return run, nil
	})
	select {
	case res := <-ch:
		return res.Val.(ferry.Run), res.Err
	case <-ctx.Done():
		return ferry.Run{}, ctx.Err()
	}
}

// invalidate drops what is known of a run's progress: the next read asks
// the workflow, and a read in flight neither answers it nor is kept.
func (c *progressCache) invalidate(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, id)
	c.gen[id]++
	c.flight.Forget(id)
}

// prune drops stale entries once the map has grown, so runs that ended or
// are no longer read do not accumulate. Called with mu held.
func (c *progressCache) prune() {
	if len(c.entries) < 256 && len(c.gen) < 4096 {
		return
	}
	now := c.now()
	for id, e := range c.entries {
		if now.Sub(e.at) >= c.ttl {
			delete(c.entries, id)
		}
	}
	if len(c.gen) >= 4096 {
		// A generation only matters while a read of the run is in flight,
		// which lasts at most the read's timeout; reads in flight now keep
		// a stale generation and so do not store, which is safe.
		for id := range c.gen {
			if _, ok := c.entries[id]; !ok {
				delete(c.gen, id)
			}
		}
	}
}
