package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// WrkInstallHint says how to get wrk, Debian's HTTP load generator.
const WrkInstallHint = "wrk is not installed: run `apt-get install -y wrk` (Debian's package) as root, or let `make bench` do it"

// wrkScript makes wrk print one parseable line with the figures the table
// needs: its usual report rounds the percentiles.
const wrkScript = `done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("FERRY_BENCH requests=%d duration_us=%d errors=%d status_errors=%d p50_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency.max))
end
`

// Load is one wrk run's figures.
type Load struct {
	Requests     int64
	Duration     time.Duration
	Errors       int64 // connect, read, write and timeout errors
	StatusErrors int64 // answers other than 2xx or 3xx
	P50, P99     time.Duration
	Max          time.Duration
}

// RPS is requests per second.
func (l Load) RPS() float64 {
	if l.Duration <= 0 {
		return 0
	}
	return float64(l.Requests) / l.Duration.Seconds()
}

// Wrk runs wrk against url with the given connections for d, sending the
// headers (an Authorization header, say), and returns its figures.
func Wrk(ctx context.Context, url string, connections int, d time.Duration, headers map[string]string) (Load, error) {
	bin, err := exec.LookPath("wrk")
	if err != nil {
		return Load{}, fmt.Errorf("%s", WrkInstallHint)
	}
	dir, err := os.MkdirTemp("", "ferry-bench-wrk-")
	if err != nil {
		return Load{}, err
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "report.lua")
	if err := os.WriteFile(script, []byte(wrkScript), 0o644); err != nil {
		return Load{}, err
	}
	args := []string{"-t", "2", "-c", strconv.Itoa(connections), "-d", fmt.Sprintf("%ds", int(d.Seconds())), "--timeout", "5s", "-s", script}
	for k, v := range headers {
		args = append(args, "-H", k+": "+v)
	}
	args = append(args, url)
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return Load{}, fmt.Errorf("wrk %s: %w: %s", url, err, out.String())
	}
	return ParseWrk(out.String())
}

// ParseWrk reads the line wrkScript prints.
func ParseWrk(out string) (Load, error) {
	for _, line := range strings.Split(out, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "FERRY_BENCH ")
		if !ok {
			continue
		}
		v := map[string]int64{}
		for _, kv := range strings.Fields(rest) {
			k, s, ok := strings.Cut(kv, "=")
			if !ok {
				return Load{}, fmt.Errorf("wrk report: malformed field %q", kv)
			}
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return Load{}, fmt.Errorf("wrk report: field %s: %w", k, err)
			}
			v[k] = n
		}
		for _, k := range []string{"requests", "duration_us", "errors", "status_errors", "p50_us", "p99_us", "max_us"} {
			if _, ok := v[k]; !ok {
				return Load{}, fmt.Errorf("wrk report: no %s in %q", k, line)
			}
		}
		us := func(k string) time.Duration { return time.Duration(v[k]) * time.Microsecond }
		return Load{Requests: v["requests"], Duration: us("duration_us"), Errors: v["errors"], StatusErrors: v["status_errors"],
			P50: us("p50_us"), P99: us("p99_us"), Max: us("max_us")}, nil
	}
	return Load{}, fmt.Errorf("wrk printed no report line: %q", out)
}
