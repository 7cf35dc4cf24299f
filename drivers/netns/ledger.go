package netns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ferrydr/ferry/drivers"
)

// ledger remembers which idempotency keys succeeded and what they returned.
// The kernel cannot tell a bubble destroyed after its creation from one
// never created, so without it a replayed CreateBubble would build a second
// bubble after cleanup. It is a JSON file in the state dir, guarded by an
// flock so that several workers on one machine share it.
type ledger struct {
	path string
	lock string
}

type entry struct {
	Op     string    `json:"op"`
	Site   string    `json:"site"`
	Result string    `json:"result,omitempty"`
	At     time.Time `json:"at"`
}

func newLedger(dir string) (*ledger, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return &ledger{path: filepath.Join(dir, "netns-ledger.json"), lock: filepath.Join(dir, "netns-ledger.lock")}, nil
}

// do runs fn once per key: under the ledger's lock, a key that succeeded
// before returns its first result (Permanent if it was another operation's
// key), otherwise fn runs and its success is written down.
func (l *ledger) do(ctx context.Context, op, key, site string, fn func() (string, error)) (string, error) {
	if key == "" {
		return "", perm(op, "an idempotency key is required")
	}
	unlock, err := l.acquire(ctx, op)
	if err != nil {
		return "", err
	}
	defer unlock()
	entries, err := l.read()
	if err != nil {
		return "", retryable(op, "ledger: %v", err)
	}
	if e, ok := entries[key]; ok {
		if e.Op != op {
			return "", perm(op, "idempotency key %q was already used for %s", key, e.Op)
		}
		return e.Result, nil
	}
	res, err := fn()
	if err != nil {
		return "", err
	}
	entries[key] = entry{Op: op, Site: site, Result: res, At: time.Now().UTC()}
	if err := l.write(entries); err != nil {
		// The change is made but not written down: a retry with the same key
		// finds it by its derived name and makes nothing twice.
		return "", retryable(op, "ledger: %v", err)
	}
	return res, nil
}

func (l *ledger) acquire(ctx context.Context, op string) (func(), error) {
	f, err := os.OpenFile(l.lock, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, retryable(op, "ledger lock: %v", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				_ = f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			_ = f.Close()
			return nil, retryable(op, "ledger lock: %v", err)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, &drivers.Error{Kind: drivers.Retryable, Op: op, Err: fmt.Errorf("waiting for the ledger lock: %w", ctx.Err())}
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (l *ledger) read() (map[string]entry, error) {
	b, err := os.ReadFile(l.path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]entry{}, nil
	}
	if err != nil {
		return nil, err
	}
	m := map[string]entry{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", l.path, err)
	}
	return m, nil
}

// write replaces the file atomically, so a crash leaves the old or the new
// ledger, never half of one.
func (l *ledger) write(m map[string]entry) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp := l.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, l.path)
}
