package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ferrydr/ferry/apiclient"
)

// reportFormats are what --format takes, and what -o's extension implies.
var reportFormats = map[string]string{
	"json": apiclient.ReportJSON, "markdown": apiclient.ReportMarkdown, "md": apiclient.ReportMarkdown,
	"html": apiclient.ReportHTML, "htm": apiclient.ReportHTML,
}

// report fetches a run's report: Markdown on stdout by default, or a file
// (-o) in the format its extension names (.html, .md, .json) or --format
// says. The API renders every format, so the CLI and a browser agree.
func (c *CLI) report(ctx context.Context, args []string) error {
	fs := flags("report")
	out := fs.String("o", "", "write the report to this file (format from its extension: .html, .md, .json)")
	format := fs.String("format", "", "json, markdown or html (default: from -o's extension, else markdown)")
	// --markdown is what report took before --format; Markdown is now the
	// default, so it changes nothing but is still accepted.
	md := fs.Bool("markdown", false, "the Markdown report (the default)")
	pos, err := parse(fs, args, "RUN")
	if err != nil {
		return err
	}
	f, err := reportFormatOf(*format, *out, *md)
	if err != nil {
		return err
	}
	b, err := c.API.ReportAs(ctx, pos[0], f)
	if err != nil {
		return err
	}
	if f == apiclient.ReportJSON {
		var indented bytes.Buffer
		if json.Indent(&indented, b, "", "  ") == nil {
			b = append(indented.Bytes(), '\n')
		}
	}
	if *out == "" || *out == "-" {
		_, err = c.Stdout.Write(b)
		return err
	}
	if err := writeFileAtomic(*out, b); err != nil {
		return fmt.Errorf("write report of run %s: %w", pos[0], err)
	}
	fmt.Fprintf(c.Stdout, "Report of run %s written to %s (%s, %d bytes)\n", pos[0], *out, f, len(b))
	return nil
}

// reportFormatOf picks the format: --format, else -o's extension, else
// Markdown.
func reportFormatOf(format, out string, markdown bool) (string, error) {
	if format != "" {
		f, ok := reportFormats[strings.ToLower(format)]
		if !ok {
			return "", &usageError{"report", fmt.Sprintf("flag --format must be json, markdown or html, not %q", format)}
		}
		if markdown && f != apiclient.ReportMarkdown {
			return "", &usageError{"report", fmt.Sprintf("flags --markdown and --format %s disagree", format)}
		}
		return f, nil
	}
	if out == "" || out == "-" {
		return apiclient.ReportMarkdown, nil
	}
	ext := strings.TrimPrefix(strings.ToLower(filepath.Ext(out)), ".")
	f, ok := reportFormats[ext]
	if !ok {
		return "", &usageError{"report", fmt.Sprintf("flag -o: cannot tell the format of %q from its extension (.html, .md or .json); say it with --format", out)}
	}
	if markdown && f != apiclient.ReportMarkdown {
		return "", &usageError{"report", fmt.Sprintf("flag --markdown and -o %s disagree", out)}
	}
	return f, nil
}

// writeFileAtomic writes b to path through a temporary file in the same
// directory, so a failed write never leaves half a report behind.
func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
