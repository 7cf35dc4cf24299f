package sim

import (
	"crypto/sha1"
	"fmt"
)

// FacadeID is the id the simulator's OpenStack-API facades give a named
// thing: a stable UUID (version 5 layout) of its kind and name, so that
// every facade (Cinder's volumes, Nova's servers, Neutron's networks,
// Designate's zones) names the same thing the same way without sharing
// tables, and a restarted simulator keeps its ids.
func FacadeID(kind, name string) string {
	h := sha1.Sum([]byte("ferry-sim-facade/" + kind + "/" + name))
	h[6] = h[6]&0x0f | 0x50
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}
