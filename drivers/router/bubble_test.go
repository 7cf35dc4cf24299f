package router

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ferrydr/ferry/drivers"
)

// plainClones clones on the host only; bubbleClones can clone in a bubble.
type plainClones struct {
	drivers.Storage
	calls []string
}

func (p *plainClones) TestFailoverStart(_ context.Context, key, backend string, _ []string) ([]string, error) {
	p.calls = append(p.calls, "start "+backend)
	return []string{"host-clone"}, nil
}

type bubbleClones struct{ plainClones }

func (b *bubbleClones) TestFailoverStartIn(_ context.Context, key, backend string, _ []string, bubble string) ([]string, error) {
	b.calls = append(b.calls, "start "+backend+" in "+bubble)
	return []string{"bubble-clone"}, nil
}

func TestStorageForwardsBubbleCloner(t *testing.T) {
	ctx := context.Background()
	plain, inBubble := &plainClones{}, &bubbleClones{}
	s := NewStorage(Adapter{Name: "plain", Storage: plain})
	require.NoError(t, s.Add(Adapter{Name: "pg", Storage: inBubble}, []string{"pg-b"}, []string{"db"}))

	ids, err := s.TestFailoverStartIn(ctx, "k1", "pg-b", []string{"db"}, "ns-1")
	require.NoError(t, err)
	require.Equal(t, []string{"bubble-clone"}, ids)
	require.Equal(t, []string{"start pg-b in ns-1"}, inBubble.calls)

	// An adapter that cannot clone in a bubble gets TestFailoverStart.
	ids, err = s.TestFailoverStartIn(ctx, "k2", "sim-b", []string{"vol"}, "ns-1")
	require.NoError(t, err)
	require.Equal(t, []string{"host-clone"}, ids)
	require.Equal(t, []string{"start sim-b"}, plain.calls)
}
