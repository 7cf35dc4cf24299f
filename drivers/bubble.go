package drivers

import "context"

// BubbleCloner is an optional capability of a storage adapter: it can start
// its drill clones inside a test bubble (the id CreateBubble returned, e.g.
// a network namespace), so that the clones answer only there and nothing in
// production can reach them. A drill calls it instead of TestFailoverStart
// when the storage has it; the clones are stopped with TestFailoverStop.
// The key is the same kind of idempotency key as TestFailoverStart's, and a
// replay of it through TestFailoverStart answers the same clones.
type BubbleCloner interface {
	TestFailoverStartIn(ctx context.Context, key, backend string, resources []string, bubble string) ([]string, error)
}
