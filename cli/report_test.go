package cli_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferrydr/ferry"
)

// reportAPI is the real API over a fresh database holding one finished
// drill of group shop: approved by bob, one check failed.
func reportAPI(t *testing.T) (string, string) {
	t.Helper()
	url, st := api(t, nil)
	r := run(t, url, "", "apply", "-f", writeFile(t, "inv.yaml", inventoryYAML))
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(s int) *time.Time { v := t0.Add(time.Duration(s) * time.Second); return &v }
	rto := 14.0
	require.NoError(t, st.FinishRun(context.Background(), ferry.Run{
		ID: "drill-1", WorkflowID: "ferry-group-shop", Kind: ferry.KindDrill, Group: "shop", Site: "site-b",
		State: ferry.RunCompleted, RequestedBy: "alice", Created: t0, Ended: at(20), RTOSeconds: &rto,
		Steps: []ferry.Step{
			{Name: "precheck", State: ferry.StepCompleted, Started: at(0), Ended: at(1), Attempts: 1},
			{Name: "approval", State: ferry.StepCompleted, Started: at(1), Ended: at(5), Attempts: 1},
			{Name: "checks", State: ferry.StepCompleted, Started: at(5), Ended: at(9), Attempts: 1},
		},
		Approvals: []ferry.Approval{{By: "bob", At: *at(5), Comment: "go"}},
		RunDetails: ferry.RunDetails{Checks: []ferry.CheckOutcome{
			{Name: "shop-home", Passed: true, Detail: "HTTP 200"},
			{Name: "shop-db", Passed: false, Detail: "refused"},
		}},
	}))
	return url, "drill-1"
}

func TestReportWritesAFileInTheFormatOfItsExtension(t *testing.T) {
	url, id := reportAPI(t)
	dir := t.TempDir()

	page := filepath.Join(dir, "drill.html")
	r := run(t, url, "", "report", id, "-o", page)
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	require.Contains(t, r.stdout, "Report of run drill-1 written to "+page+" (html,")
	b, err := os.ReadFile(page)
	require.NoError(t, err)
	html := string(b)
	require.True(t, strings.HasPrefix(html, "<!DOCTYPE html>"))
	require.Contains(t, html, "<svg")
	require.Contains(t, html, "shop-db")
	require.Contains(t, html, "Verdict: failed")
	st, err := os.Stat(page)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o644), st.Mode().Perm())

	md := filepath.Join(dir, "drill.md")
	r = run(t, url, "", "report", id, "-o", md)
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	b, err = os.ReadFile(md)
	require.NoError(t, err)
	require.Contains(t, string(b), "| shop-db | FAILED | refused |")

	// --format wins over the extension; JSON is indented.
	other := filepath.Join(dir, "drill.txt")
	r = run(t, url, "", "report", id, "-o", other, "--format", "json")
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	b, err = os.ReadFile(other)
	require.NoError(t, err)
	require.Contains(t, string(b), "\n  \"verdict\": \"failed\"")
	var doc struct {
		ID        string `json:"id"`
		Approvals []struct {
			By string `json:"by"`
		} `json:"approvals"`
	}
	require.NoError(t, json.Unmarshal(b, &doc))
	require.Equal(t, id, doc.ID)
	require.Equal(t, "bob", doc.Approvals[0].By)

	// No file left behind but the three.
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 3)
}

func TestReportPrintsMarkdownWithoutAFile(t *testing.T) {
	url, id := reportAPI(t)
	r := run(t, url, "", "report", id)
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	require.True(t, strings.HasPrefix(r.stdout, "# Ferry drill of group shop: completed\n"), r.stdout)
	require.Contains(t, r.stdout, "- bob at 2025-03-01T12:00:05Z: go")
	// --markdown, which report used to need, still works.
	r2 := run(t, url, "", "report", id, "--markdown")
	require.Equal(t, 0, r2.code)
	require.Equal(t, strings.Split(r.stdout, "| Report generated")[0], strings.Split(r2.stdout, "| Report generated")[0])
	r = run(t, url, "", "report", id, "--format", "html", "-o", "-")
	require.Equal(t, 0, r.code)
	require.True(t, strings.HasPrefix(r.stdout, "<!DOCTYPE html>"))
}

func TestReportRefusesWhatItCannotWrite(t *testing.T) {
	url, id := reportAPI(t)
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-o", filepath.Join(dir, "drill.pdf")}, "flag -o: cannot tell the format"},
		{[]string{"--format", "pdf"}, `flag --format must be json, markdown or html, not "pdf"`},
		{[]string{"--markdown", "-o", filepath.Join(dir, "drill.html")}, "disagree"},
	} {
		r := run(t, url, "", append([]string{"report", id}, c.args...)...)
		require.Equal(t, 2, r.code, "%v: %s", c.args, r.stdout)
		require.Contains(t, r.stderr, c.want)
	}
	r := run(t, url, "", "report", "no-such-run", "-o", filepath.Join(dir, "x.html"))
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "HTTP 404")
	r = run(t, url, "", "report", id, "-o", filepath.Join(dir, "missing-dir", "x.html"))
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "write report of run "+id)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "nothing written")
}
