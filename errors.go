package ferry

import (
	"errors"
	"fmt"
)

// Error codes, mapped to HTTP statuses in one place (server/).
const (
	EConflict = "conflict"  // 409
	EInvalid  = "invalid"   // 422 (400 for a body that is not JSON)
	ENotFound = "not_found" // 404
	EInternal = "internal"  // 500
)

// Error is Ferry's application error. Field names the offending input field,
// when there is one, so a client can point at it.
type Error struct {
	Code    string
	Field   string
	Message string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s", e.Field, e.Message)
	}
	return e.Message
}

// Errorf returns an *Error with the given code and message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns an EInvalid *Error naming field.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: EInvalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err's *Error, or EInternal.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}
