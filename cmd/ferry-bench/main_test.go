package main

import (
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferrydr/ferry/bench"
)

func TestFlagsDefaultToTheIssuesSite(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	require.NoError(t, err)
	require.Equal(t, bench.Full, o.shape)
	require.Equal(t, bench.Latency{Promote: 2 * time.Second, Boot: 5 * time.Second, Health: 100 * time.Millisecond,
		DNS: 500 * time.Millisecond, Verify: 300 * time.Millisecond}, o.model)
	require.Equal(t, 3, o.runs)
	require.Equal(t, 32, o.wrkConns)
	for _, b := range []string{"modeled", "zero", "scaleout", "group", "api", "postgres"} {
		require.True(t, o.want(b), b)
	}
}

func TestFlagsRefuseBadValuesByName(t *testing.T) {
	for args, want := range map[string][]string{
		"-runs must be at least 1, got 0":             {"-runs", "0"},
		"-concurrency must be at most 100":            {"-concurrency", "101"},
		"tiers must be at least 1":                    {"-tiers", "0"},
		`-only: unknown benchmark "bogus"`:            {"-only", "zero,bogus"},
		"-groups must exceed -group-runs (5)":         {"-groups", "5"},
		"-wrk-duration must be at least 1s, got 10ms": {"-wrk-duration", "10ms"},
		`unexpected arguments ["extra"]`:              {"extra"},
		"backends per group (3) exceeds backends (2)": {"-backends", "2", "-backends-per-group", "3"},
	} {
		_, err := parseFlags(want, io.Discard)
		require.ErrorContains(t, err, args, "%v", want)
	}
}

func TestOnlyPicksASubset(t *testing.T) {
	o, err := parseFlags([]string{"-only", "zero, api"}, io.Discard)
	require.NoError(t, err)
	require.True(t, o.want("zero"))
	require.True(t, o.want("api"))
	require.False(t, o.want("modeled"))
	require.False(t, o.want("postgres"))

	o, err = parseFlags([]string{"-postgres-temporal=false"}, io.Discard)
	require.NoError(t, err)
	require.False(t, o.want("postgres"))
	require.True(t, o.want("modeled"))
}

func TestPercentile(t *testing.T) {
	ds := []time.Duration{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}
	require.Equal(t, time.Duration(10), percentile(ds, 100))
	require.Equal(t, time.Duration(10), percentile(ds, 95))
	require.Equal(t, time.Duration(5), percentile(ds, 50))
	require.Zero(t, percentile(nil, 95))
}
