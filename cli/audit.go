package cli

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/apiclient"
)

// audit lists the audit log, newest first: `ferry audit [--since 24h|TIME]
// [--token ID|NAME] [--limit N]`.
func (c *CLI) audit(ctx context.Context, args []string) error {
	fs := flags("audit")
	since := fs.String("since", "", "entries since a time (RFC 3339) or for a duration back (e.g. 24h)")
	token := fs.String("token", "", "entries of one token, by id or name")
	limit := fs.Int("limit", 100, "at most this many entries")
	out := c.outputFlag(fs)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if err := checkOutput("audit", *out); err != nil {
		return err
	}
	if *limit < 1 {
		return &usageError{"audit", "--limit must be at least 1"}
	}
	f := apiclient.AuditFilter{Token: *token}
	if *since != "" {
		if d, err := time.ParseDuration(*since); err == nil && d > 0 {
			f.Since = time.Now().Add(-d)
		} else if t, err := time.Parse(time.RFC3339, *since); err == nil {
			f.Since = t
		} else {
			return &usageError{"audit", fmt.Sprintf("--since must be a duration such as 24h or a time such as 2026-01-02T15:04:05Z, not %q", *since)}
		}
	}
	var t table
	t.rowText("TIME", "METHOD", "PATH", "STATUS", "TOKEN", "ROLE", "PROJECT", "RUN", "FROM")
	entries := []ferry.AuditEntry{}
	left := *limit
	for left > 0 {
		f.Limit = min(left, 1000)
		p, err := c.API.ListAudit(ctx, f)
		if err != nil {
			return err
		}
		for _, e := range p.Items {
			status := strconv.Itoa(e.Status)
			if e.Status == 0 {
				status = "-" // appended, outcome not recorded
			}
			who := dash(e.TokenName)
			if e.TokenID != "" {
				who += " (" + e.TokenID + ")"
			}
			statusColor := ""
			if e.Status >= 400 {
				statusColor = red
			}
			t.row(cell{text: c.when(&e.At)}, cell{text: e.Method}, cell{text: e.Path}, cell{status, statusColor},
				cell{text: who}, cell{text: dash(e.Role)}, cell{text: dash(e.Project)}, cell{text: dash(e.RunID)}, cell{text: dash(e.RemoteAddr)})
		}
		entries = append(entries, p.Items...)
		left -= len(p.Items)
		if f.PageToken = p.NextPageToken; f.PageToken == "" {
			break
		}
	}
	if *out != OutputTable {
		return encode(c.Stdout, *out, entries)
	}
	return t.write(c.Stdout, c.colorOn())
}
