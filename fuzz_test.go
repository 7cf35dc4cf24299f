package ferry_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/cli"
	"github.com/ferrydr/ferry/demo"
)

// FuzzInventory feeds any document to the inventory loader (as `ferry
// apply` does: parse, defaults, validate). It never panics; a parse error
// names the document, and a validation error is an invalid-input error
// that names the field at fault.
func FuzzInventory(f *testing.F) {
	j, err := json.Marshal(demo.Inventory())
	require.NoError(f, err)
	for _, name := range []string{"inv.yaml", "inv.json", "inv", "-"} {
		f.Add(name, demo.YAML())
		f.Add(name, j)
	}
	for _, doc := range []string{
		"", "{}", "[]", "null", "~", "sites: 1", "sites: [1]", "sites:\n  - name: Site A\n",
		"sites:\n  - name: a\n  - name: a\n", "sites:\n  - name: a\n    nope: 1\n",
		"groups:\n  - name: g\n    primary_site: a\n    dr_site: a\n    rpo_seconds: 1\n",
		"groups:\n  - name: g\n    rpo_seconds: 99999999999999999999\n",
		"groups:\n  - &a {name: g}\n  - *a\n", "a: &a [*a]\n", "groups: [{tiers: [{servers: [{}]}]}]",
		"backends:\n  - {name: b, site: a, type: sim, members: [m, m]}\n",
		"backends:\n  - {name: b, site: a, type: tape}\n", "--- \n--- \n", "\x00", "\xff\xfe",
		"{\"sites\":[{\"name\":\"a\"}]} {}", "{\"sites\":[{\"name\":1}]}", "{\"sites\":", "{\"groups\":[{\"nope\":1}]}",
		"{\"groups\":[{\"name\":\"g\",\"drill_schedule\":\"\\u0000\"}]}", "{\"backends\":[{\"members\":[\"\"]}]}",
	} {
		f.Add("inv.yaml", []byte(doc))
		f.Add("inv.json", []byte(doc))
		f.Add("inv", []byte(doc))
	}
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		inv, err := cli.ParseInventory(name, data)
		if err != nil {
			require.True(t, strings.HasPrefix(err.Error(), name+": "), "a parse error names the document %q: %v", name, err)
			return
		}
		for i := range inv.Groups {
			inv.Groups[i].Defaults()
		}
		err = inv.Validate()
		if err == nil {
			return
		}
		var fe *ferry.Error
		require.True(t, errors.As(err, &fe), "a validation error is a *ferry.Error: %T %v", err, err)
		require.Equal(t, ferry.EInvalid, fe.Code, "%v", err)
		require.NotEmpty(t, fe.Field, "a validation error names the field: %v", err)
		require.Regexp(t, `^(sites|backends|groups)\[\d+\]`, fe.Field, "the field says which item: %v", err)
	})
}
