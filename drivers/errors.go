package drivers

import (
	"errors"
	"fmt"
)

// Error kinds. Activities map them to Temporal's retry policy: Retryable and
// Unreachable are retried, Permanent is not.
const (
	Retryable   = "retryable"   // a transient failure: try again
	Permanent   = "permanent"   // trying again will not help
	Unreachable = "unreachable" // the endpoint (or its whole site) does not answer
)

// Error is an adapter's typed error.
type Error struct {
	Kind string
	Op   string // the port operation, e.g. "storage.promote"
	Err  error
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s: %v", e.Op, e.Kind, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error.
func Errorf(kind, op, format string, args ...any) error {
	return &Error{Kind: kind, Op: op, Err: fmt.Errorf(format, args...)}
}

// Kind returns err's kind; an untyped error counts as Retryable, since an
// adapter that did not say otherwise may well succeed the next time.
func Kind(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Retryable
}

// IsPermanent reports whether retrying err is pointless.
func IsPermanent(err error) bool { return err != nil && Kind(err) == Permanent }
