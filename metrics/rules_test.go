package metrics_test

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// The example alert rules (docs/alerts/ferry.rules.yml), as Prometheus
// reads them.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func loadRules(t *testing.T) ruleFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "docs", "alerts", "ferry.rules.yml"))
	require.NoError(t, err)
	var f ruleFile
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&f))
	return f
}

// The metric names of a PromQL expression, read simply rather than with
// Prometheus' parser (whose module would bring the whole Prometheus server
// into go.mod): strings, label matchers, ranges and the label lists of
// by/without/on/ignoring/group_* are dropped; what is left that looks like
// a name and is not a function call or a keyword is a metric.
var (
	reString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	reMatchers = regexp.MustCompile(`\{[^}]*\}`)
	reRange    = regexp.MustCompile(`\[[^\]]*\]`)
	reLabelArg = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	reComment  = regexp.MustCompile(`#[^\n]*`)
	reIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	keywords   = map[string]bool{
		"and": true, "or": true, "unless": true, "bool": true, "offset": true, "by": true, "without": true,
		"on": true, "ignoring": true, "group_left": true, "group_right": true, "inf": true, "nan": true,
	}
)

func metricNames(expr string) []string {
	e := reComment.ReplaceAllString(expr, "")
	e = reString.ReplaceAllString(e, `""`)
	e = reMatchers.ReplaceAllString(e, "")
	e = reRange.ReplaceAllString(e, "")
	e = reLabelArg.ReplaceAllString(e, "")
	seen := map[string]bool{}
	var out []string
	for _, loc := range reIdent.FindAllStringIndex(e, -1) {
		name := e[loc[0]:loc[1]]
		rest := strings.TrimLeft(e[loc[1]:], " \t\n")
		if strings.HasPrefix(rest, "(") || keywords[strings.ToLower(name)] {
			continue // a function or an aggregation
		}
		if loc[0] > 0 && (e[loc[0]-1] >= '0' && e[loc[0]-1] <= '9' || e[loc[0]-1] == '.') {
			continue // the exponent or unit of a number
		}
		if !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func TestMetricNamesOfAnExpression(t *testing.T) {
	require.Equal(t, []string{"a_total", "b_seconds", "c"},
		metricNames(`sum by (job, x) (rate(a_total{x="y",z=~"b_seconds"}[5m])) / on (g) group_left (h) b_seconds > 2 * scalar(max(c)) and 1e3 # d_total`))
	require.Equal(t, []string{"up"}, metricNames(`up == 0 unless time() > 5`))
}

// TestAlertRulesAreWellFormed checks what Prometheus would refuse and
// what an operator needs: every alert has a name, an expression, a valid
// for, a severity and a summary, and the rules cover what docs/metrics.md
// promises.
func TestAlertRulesAreWellFormed(t *testing.T) {
	f := loadRules(t)
	require.NotEmpty(t, f.Groups)
	alerts := map[string]bool{}
	groups := map[string]bool{}
	for _, g := range f.Groups {
		require.NotEmpty(t, g.Name)
		require.False(t, groups[g.Name], "group %s twice", g.Name)
		groups[g.Name] = true
		require.NotEmpty(t, g.Rules, "group %s has no rules", g.Name)
		for _, r := range g.Rules {
			require.NotEmpty(t, r.Alert, "a rule of %s is not an alert", g.Name)
			require.Empty(t, r.Record, r.Alert)
			require.False(t, alerts[r.Alert], "alert %s twice", r.Alert)
			alerts[r.Alert] = true
			require.NotEmpty(t, strings.TrimSpace(r.Expr), r.Alert)
			require.NotEmpty(t, metricNames(r.Expr), "%s reads no metric", r.Alert)
			require.Equal(t, strings.Count(r.Expr, "("), strings.Count(r.Expr, ")"), "%s: unbalanced parentheses", r.Alert)
			if r.For != "" {
				_, err := time.ParseDuration(r.For)
				require.NoError(t, err, "%s: for", r.Alert)
			}
			require.Contains(t, []string{"info", "warning", "critical"}, r.Labels["severity"], "%s: severity", r.Alert)
			require.NotEmpty(t, r.Annotations["summary"], "%s: summary", r.Alert)
		}
	}
	for _, want := range []string{"FerryReplicaLagAboveTwiceRPO", "FerryReplicaLagAboveThreeTimesRPO", "FerryRunPaused",
		"FerryMonitorNotReporting", "FerryDriverErrorsRising", "FerryRunFailed"} {
		require.True(t, alerts[want], "no %s alert", want)
	}
}

// checkRulesExposed fails when an alert reads a metric the scrape did not
// expose: a renamed metric would otherwise leave its alert silent forever.
func checkRulesExposed(t *testing.T, exposed map[string]bool) {
	t.Helper()
	f := loadRules(t)
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			for _, name := range metricNames(r.Expr) {
				require.True(t, exposed[name], "alert %s reads %s, which no scrape exposes", r.Alert, name)
			}
		}
	}
}
