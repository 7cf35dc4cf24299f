// Package demo holds the demo inventory `ferry dev` seeds: two simulated
// sites, replicated backends served by an active-active cluster, and two
// protection groups.
package demo

import (
	_ "embed"
	"fmt"

	"gopkg.in/yaml.v3"

	"github.com/ferrydr/ferry"
)

//go:embed demo.yaml
var document []byte

// YAML is the demo inventory as a document for `ferry apply -f`.
func YAML() []byte { return document }

// Inventory is the demo inventory.
func Inventory() ferry.Inventory {
	var inv ferry.Inventory
	if err := yaml.Unmarshal(document, &inv); err != nil {
		panic(fmt.Sprintf("demo: embedded inventory does not parse: %v", err))
	}
	return inv
}
