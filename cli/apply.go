package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/apiclient"
)

// apply puts the sites, backends and groups of an inventory document, in
// that order, after validating the whole document.
func (c *CLI) apply(ctx context.Context, args []string) error {
	fs := flags("apply")
	file := fs.String("f", "", "inventory file (YAML or JSON; - for stdin)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *file == "" {
		return &usageError{"apply", "flag -f FILE is required"}
	}
	var data []byte
	var err error
	if *file == "-" {
		data, err = io.ReadAll(c.Stdin)
	} else {
		data, err = os.ReadFile(*file)
	}
	if err != nil {
		return err
	}
	inv, err := ParseInventory(*file, data)
	if err != nil {
		return err
	}
	for i := range inv.Groups {
		inv.Groups[i].Defaults()
	}
	if err := inv.Validate(); err != nil {
		return fmt.Errorf("%s: %w (nothing was applied)", *file, err)
	}
	if len(inv.Sites)+len(inv.Backends)+len(inv.Groups) == 0 {
		fmt.Fprintf(c.Stderr, "%s: nothing to apply\n", *file)
		return nil
	}

	report := func(kind, name string, created bool) {
		verb := "configured"
		if created {
			verb = "created"
		}
		fmt.Fprintf(c.Stdout, "%s/%s %s\n", kind, clean(name), verb)
	}
	for _, s := range inv.Sites {
		_, created, err := c.API.PutSite(ctx, s)
		if err != nil {
			return fmt.Errorf("site/%s: %w", s.Name, err)
		}
		report("site", s.Name, created)
	}
	// Backends may name each other as replication targets (a and b
	// replicate to each other). A new backend with targets is created
	// without them first, so every target exists when the full backend is
	// put.
	created := map[string]bool{}
	for _, b := range inv.Backends {
		if len(b.ReplicationTargets) == 0 {
			continue
		}
		_, err := c.API.GetBackend(ctx, b.Name)
		if !apiclient.IsStatus(err, 404) {
			if err != nil {
				return fmt.Errorf("backend/%s: %w", b.Name, err)
			}
			continue
		}
		bare := b
		bare.ReplicationTargets = nil
		if _, _, err := c.API.PutBackend(ctx, bare); err != nil {
			return fmt.Errorf("backend/%s: %w", b.Name, err)
		}
		created[b.Name] = true
	}
	for _, b := range inv.Backends {
		_, isNew, err := c.API.PutBackend(ctx, b)
		if err != nil {
			return fmt.Errorf("backend/%s: %w", b.Name, err)
		}
		report("backend", b.Name, isNew || created[b.Name])
	}
	for _, g := range inv.Groups {
		_, isNew, err := c.API.PutGroup(ctx, g)
		if err != nil {
			return fmt.Errorf("group/%s: %w", g.Name, err)
		}
		report("group", g.Name, isNew)
	}
	return nil
}

// ParseInventory reads an inventory document: JSON when the file name ends
// in .json or the content starts with '{', else YAML. Unknown fields are
// errors.
func ParseInventory(name string, data []byte) (ferry.Inventory, error) {
	var inv ferry.Inventory
	isJSON := false
	switch strings.ToLower(filepath.Ext(name)) {
	case ".json":
		isJSON = true
	case ".yaml", ".yml":
	default:
		isJSON = bytes.HasPrefix(bytes.TrimSpace(data), []byte("{"))
	}
	if isJSON {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&inv); err != nil {
			return inv, fmt.Errorf("%s: %w", name, jsonError(data, err))
		}
		return inv, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&inv); err != nil && err != io.EOF {
		return inv, fmt.Errorf("%s: %w", name, err)
	}
	return inv, nil
}

// jsonError adds the line of a JSON syntax error.
func jsonError(data []byte, err error) error {
	var off int64 = -1
	switch e := err.(type) {
	case *json.SyntaxError:
		off = e.Offset
	case *json.UnmarshalTypeError:
		off = e.Offset
	}
	if off < 0 {
		return err
	}
	line := 1
	sc := bufio.NewScanner(bytes.NewReader(data[:min(int(off), len(data))]))
	for sc.Scan() {
		line++
	}
	return fmt.Errorf("line %d: %w", line-1, err)
}
