package bench

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseStatCPU(t *testing.T) {
	// A command name with spaces and a parenthesis must not shift fields.
	stat := "4242 (ferry (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 12 0 100 0 0"
	d, err := parseStatCPU(stat)
	require.NoError(t, err)
	require.Equal(t, 3250*time.Millisecond, d, "utime 250 + stime 75 ticks at 100 Hz")
	_, err = parseStatCPU("4242 ferry S 1")
	require.ErrorContains(t, err, "no ')'")
	_, err = parseStatCPU("4242 (ferry) S 1 2")
	require.ErrorContains(t, err, "fields after the name")
}

func TestParseStatusKB(t *testing.T) {
	status := "Name:\tferry\nVmPeak:\t  900 kB\nVmHWM:\t   51200 kB\nVmRSS:\t 40000 kB\n"
	kb, err := parseStatusKB(status, "VmHWM")
	require.NoError(t, err)
	require.Equal(t, int64(51200), kb)
	_, err = parseStatusKB(status, "VmSwap")
	require.ErrorContains(t, err, "no VmSwap")
}

// TestReadProcOfItself reads the test's own process: CPU and peak memory
// are there and sane (a process has used some memory).
func TestReadProcOfItself(t *testing.T) {
	s, err := ReadProc(os.Getpid())
	require.NoError(t, err)
	require.Positive(t, s.PeakRSS)
	require.GreaterOrEqual(t, s.CPU, time.Duration(0))
	_, err = ReadProc(-1)
	require.ErrorContains(t, err, "pid -1")
}

func TestParseWrk(t *testing.T) {
	out := "Running 10s test @ http://127.0.0.1:8080/v1/groups\n  2 threads and 32 connections\n" +
		"FERRY_BENCH requests=5000 duration_us=10000000 errors=1 status_errors=2 p50_us=4100 p99_us=30500 max_us=90000\n"
	l, err := ParseWrk(out)
	require.NoError(t, err)
	require.Equal(t, Load{Requests: 5000, Duration: 10 * time.Second, Errors: 1, StatusErrors: 2,
		P50: 4100 * time.Microsecond, P99: 30500 * time.Microsecond, Max: 90 * time.Millisecond}, l)
	require.InDelta(t, 500.0, l.RPS(), 1e-9)

	_, err = ParseWrk("Running 10s test\n")
	require.ErrorContains(t, err, "no report line")
	_, err = ParseWrk("FERRY_BENCH requests=1 duration_us=1\n")
	require.ErrorContains(t, err, "no errors")
}

func TestMedianAndRatios(t *testing.T) {
	require.Equal(t, 2.0, Median([]float64{3, 1, 2}))
	require.Equal(t, 2.5, Median([]float64{4, 1, 2, 3}))
	require.Zero(t, Median(nil))
	xs := []float64{3, 1, 2}
	Median(xs)
	require.Equal(t, []float64{3, 1, 2}, xs, "Median leaves its input alone")
	require.Equal(t, 2*time.Second, MedianDuration([]time.Duration{time.Second, 3 * time.Second, 2 * time.Second}))
	require.Equal(t, []float64{2, 0.5}, Ratios([]time.Duration{2, 1, 5}, []time.Duration{1, 2}))
}
