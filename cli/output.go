package cli

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Output formats of the read verbs (-o, --output).
const (
	OutputTable = "table"
	OutputJSON  = "json"
	OutputYAML  = "yaml"
)

// Outputs lists the output formats, for help and completion.
var Outputs = []string{OutputTable, OutputJSON, OutputYAML}

// outputFlag registers -o and --output on a read verb's flags. The
// default is the configured output (config file or FERRY_OUTPUT), else a
// table.
func (c *CLI) outputFlag(fs *flag.FlagSet) *string {
	v := new(string)
	*v = c.Output
	if *v == "" {
		*v = OutputTable
	}
	usage := "output format: " + strings.Join(Outputs, ", ")
	fs.StringVar(v, "o", *v, usage)
	fs.StringVar(v, "output", *v, usage)
	return v
}

// checkOutput refuses an unknown output format as a usage error naming
// the flag.
func checkOutput(verb, v string) error {
	for _, o := range Outputs {
		if v == o {
			return nil
		}
	}
	return &usageError{verb, fmt.Sprintf("flag -o/--output must be %s, not %q", strings.Join(Outputs, ", "), v)}
}

// encode writes v, an API object or a list of them, as JSON or YAML. YAML
// is the JSON document re-encoded, so both carry the API's field names
// in the API's order.
func encode(w io.Writer, format string, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	if format == OutputJSON {
		_, err := w.Write(buf.Bytes())
		return err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(buf.Bytes(), &doc); err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	blockStyle(&doc)
	ye := yaml.NewEncoder(w)
	ye.SetIndent(2)
	if err := ye.Encode(&doc); err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	return ye.Close()
}

// blockStyle turns JSON's flow style and quoting into YAML's block style;
// the encoder still quotes a string that would read as another type.
func blockStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		blockStyle(c)
	}
}

// colorOn reports whether to colour Stdout: a terminal, and NO_COLOR
// (https://no-color.org) unset or empty.
func (c *CLI) colorOn() bool {
	if c.NoColor || os.Getenv("NO_COLOR") != "" {
		return false
	}
	return c.isTTY()
}

// ANSI colours.
const (
	red    = "31"
	green  = "32"
	yellow = "33"
	blue   = "34"
	faint  = "2"
	bold   = "1"
)

// paint colours s when on is set.
func paint(on bool, color, s string) string {
	if !on || color == "" || s == "" {
		return s
	}
	return "\x1b[" + color + "m" + s + "\x1b[0m"
}

// cell is one table cell: its text and the colour it is painted in.
type cell struct {
	text, color string
}

// table lays out rows in columns two spaces apart, measuring the plain
// text so that colours do not break the alignment (tabwriter counts the
// escape codes).
type table struct {
	rows [][]cell
}

func (t *table) row(cells ...cell) { t.rows = append(t.rows, cells) }

// rowText adds a row of uncoloured cells.
func (t *table) rowText(texts ...string) {
	cells := make([]cell, len(texts))
	for i, s := range texts {
		cells[i] = cell{text: s}
	}
	t.row(cells...)
}

// write prints the table; every cell goes through clean, since cells hold
// what the API says (names, errors, notes, messages) and a terminal must
// never receive its control characters.
func (t *table) write(w io.Writer, color bool) error {
	var widths []int
	for _, r := range t.rows {
		for i := range r {
			r[i].text = clean(r[i].text)
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(r[i].text))
		}
	}
	var b strings.Builder
	for _, r := range t.rows {
		var line strings.Builder
		for i, c := range r {
			line.WriteString(paint(color, c.color, c.text))
			if i < len(r)-1 {
				line.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c.text)+2))
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " "))
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// clean makes text that came from the API (or from whoever wrote to it:
// step errors, notes, messages, the "by" of a steering action are chosen
// by clients) safe to print on a terminal, as one line. Line breaks and
// tabs become spaces; every other C0 or C1 control character (ESC among
// them, so no escape sequence survives), DEL, the bidirectional controls
// that reorder what is shown, and bytes that are not UTF-8 become U+FFFD,
// so that what was there stays visible without being interpreted. Every
// line and cell printed from API data goes through it.
func clean(s string) string {
	ok := true
	for _, r := range s {
		if r == utf8.RuneError || unsafeRune(r) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s { // an invalid byte ranges as utf8.RuneError
		switch {
		case r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f' || r == 0x85 || r == '\u2028' || r == '\u2029':
			b.WriteByte(' ')
		case r == utf8.RuneError || unsafeRune(r):
			b.WriteRune(utf8.RuneError)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// unsafeRune reports a rune a terminal may act on rather than show: the C0
// and C1 controls and DEL (unicode.IsControl), the line and paragraph
// separators, and the bidirectional embedding, override and isolate marks.
func unsafeRune(r rune) bool {
	switch {
	case unicode.IsControl(r), r == '\u2028', r == '\u2029', r == '\u061c', r == '\u200e', r == '\u200f':
		return true
	case r >= '\u202a' && r <= '\u202e', r >= '\u2066' && r <= '\u2069':
		return true
	}
	return false
}
