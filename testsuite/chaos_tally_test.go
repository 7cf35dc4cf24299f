package testsuite

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
)

// chaosRow is one line of the chaos table: what a scenario tried and the
// defects it found. Everything but KillPoints must come out zero (and
// Completed equal to Runs).
type chaosRow struct {
	KillPoints int
	Runs       int
	Completed  int
	Duplicates int
	Leaked     int
	LostWrites int64 // writes lost beyond what the runs reported
}

// chaosTally gathers the rows of every system; systems run in parallel.
type chaosTally struct {
	mu     sync.Mutex
	rows   map[string]*chaosRow
	order  []string
	points []string
	notes  []string
}

func newChaosTally(order ...string) *chaosTally {
	t := &chaosTally{rows: map[string]*chaosRow{}}
	for _, o := range order {
		t.row(o)
	}
	return t
}

func (t *chaosTally) row(name string) *chaosRow {
	r, ok := t.rows[name]
	if !ok {
		r = &chaosRow{}
		t.rows[name] = r
		t.order = append(t.order, name)
	}
	return r
}

// track counts one run in a scenario's row when the job's test ends,
// however it ends: the run of a job that failed counts as not completed,
// with the defects found before it failed.
func (t *chaosTally) track(tt *testing.T, scenario string, killPoints int) *runOutcome {
	o := &runOutcome{KillPoints: killPoints}
	tt.Cleanup(func() {
		if tt.Failed() {
			o.Completed = false
		}
		t.add(scenario, *o)
	})
	return o
}

// add folds one run's outcome into its scenario's row.
func (t *chaosTally) add(scenario string, o runOutcome) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.row(scenario)
	r.KillPoints += o.KillPoints
	r.Runs++
	if o.Completed {
		r.Completed++
	}
	r.Duplicates += o.Duplicates
	r.Leaked += o.Leaked
	r.LostWrites += o.LostBeyond
}

// point records what happened at one kill point, for the list under the
// table.
func (t *chaosTally) point(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.points = append(t.points, fmt.Sprintf(format, args...))
}

// note keeps a line for the report under the table: what an operator was
// told when a run paused, say.
func (t *chaosTally) note(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.notes = append(t.notes, fmt.Sprintf(format, args...))
}

// total sums every row.
func (t *chaosTally) total() chaosRow {
	t.mu.Lock()
	defer t.mu.Unlock()
	var tot chaosRow
	for _, r := range t.rows {
		tot.KillPoints += r.KillPoints
		tot.Runs += r.Runs
		tot.Completed += r.Completed
		tot.Duplicates += r.Duplicates
		tot.Leaked += r.Leaked
		tot.LostWrites += r.LostWrites
	}
	return tot
}

// table renders the rows as a Markdown table, with a total.
func (t *chaosTally) table(mode string) string {
	tot := t.total()
	t.mu.Lock()
	defer t.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "Chaos suite (%s)\n\n", mode)
	fmt.Fprintf(&b, "| scenario | kill points tried | runs | runs completed | duplicate side effects | leaked resources | lost writes beyond reported RPO |\n")
	fmt.Fprintf(&b, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	line := func(name string, r chaosRow) {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d |\n", name, r.KillPoints, r.Runs, r.Completed, r.Duplicates, r.Leaked, r.LostWrites)
	}
	for _, name := range t.order {
		line(name, *t.rows[name])
	}
	line("**total**", tot)
	for _, list := range []struct {
		title string
		lines []string
	}{{"Kill points", t.points}, {"Notes", t.notes}} {
		if len(list.lines) == 0 {
			continue
		}
		lines := append([]string(nil), list.lines...)
		sort.Strings(lines)
		fmt.Fprintf(&b, "\n%s (%d):\n", list.title, len(lines))
		for _, l := range lines {
			b.WriteString("- " + l + "\n")
		}
	}
	return b.String()
}
