package cli

import (
	"flag"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// The usage lines are the flag table that help and completion read: every
// flag they name must be one the verb parses, and every flag a verb parses
// must be named, except the run-starting verbs' shared flags, which they
// refuse where they do not apply, and report's (owned by its own file).
func TestUsageLinesMatchTheFlagsVerbsParse(t *testing.T) {
	shared := map[string]bool{"run": true, "replication": true, "report": true}
	for name := range kindVerbs {
		shared[name] = true
	}
	for _, verb := range Verbs {
		sets := verbFlagSets(verb)
		require.NotEmpty(t, sets, "%s --help answers with its flags", verb)
		parsed := map[string]bool{}
		for _, fs := range sets {
			fs.VisitAll(func(f *flag.Flag) { parsed[f.Name] = true })
		}
		named := usageFlags(verb)
		for _, f := range named {
			require.True(t, parsed[f], "usage of %s names --%s, which it does not parse", verb, f)
		}
		if shared[verb] {
			continue
		}
		for f := range parsed {
			if f == "output" && parsed["o"] {
				f = "o" // -o and --output are one flag
			}
			require.True(t, slices.Contains(named, f), "%s parses --%s, which its usage does not name", verb, f)
		}
	}
}

func TestSpecsOfferWhatVerbsTake(t *testing.T) {
	byName := map[string]verbSpec{}
	for _, s := range specs() {
		byName[s.name] = s
	}
	require.Len(t, byName, len(Verbs))
	require.Subset(t, byName["failover"].flags, []string{"unplanned", "target", "quiesce-policy", "config", "api-url"})
	require.Equal(t, []string{"abort", "continue"}, byName["failover"].values["quiesce-policy"])
	require.Equal(t, Outputs, byName["groups"].values["o"])
	require.Equal(t, Outputs, byName["status"].values["output"])
	require.True(t, byName["apply"].files["f"])
	require.Equal(t, []string{"create", "list", "revoke", "bootstrap"}, byName["token"].subs)
	require.Subset(t, byName["token"].flags, []string{"name", "role", "project", "expires", "force", "o"})
	require.NotContains(t, byName["failback"].flags, "hold", "a flag a verb refuses is not offered")
	require.Contains(t, byName["drill"].flags, "hold")
	require.NotContains(t, byName["report"].values["o"], "json", "report's -o is a file, not a format")
}
