package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strings"

	"go.temporal.io/api/serviceerror"

	"github.com/ferrydr/ferry"
)

// maxBody is the largest request body the API reads.
const maxBody = 1 << 20

// problem is an RFC 9457 problem detail.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Field names the offending input field (a JSON path).
	Field string `json:"field,omitempty"`
	// RunID names the run a conflict is about.
	RunID string `json:"run_id,omitempty"`
	// Role names the role a refused (403) request needs.
	Role string `json:"role,omitempty"`
}

// malformedError is a request body that is not the JSON the route reads: 400.
type malformedError struct{ msg string }

func (e *malformedError) Error() string { return e.msg }

// runConflictError is a refusal because a run is in the way: 409 naming it.
type runConflictError struct {
	RunID string
	Msg   string
}

func (e *runConflictError) Error() string { return e.Msg }

// unavailableError is a dependency the request needs that is not there: 503.
type unavailableError struct{ msg string }

func (e *unavailableError) Error() string { return e.msg }

// timeoutError is a dependency that did not answer in time: 504.
type timeoutError struct{ msg string }

func (e *timeoutError) Error() string { return e.msg }

var (
	errRouteNotFound    = ferry.Errorf(ferry.ENotFound, "no such route")
	errMethodNotAllowed = &methodError{}
)

type methodError struct{}

func (*methodError) Error() string { return "method not allowed on this route" }

// problemFor maps an error to the problem the client sees. It is the one
// place where errors become HTTP statuses. internal reports whether the
// error's text must stay out of the answer.
func problemFor(err error) (p problem, internal bool) {
	var (
		fe       *ferry.Error
		tooBig   *http.MaxBytesError
		bad      *malformedError
		conflict *runConflictError
		unavail  *unavailableError
		timeout  *timeoutError
		method   *methodError
		unauth   *unauthorizedError
		forbid   *forbiddenError
	)
	switch {
	case errors.As(err, &unauth):
		return problem{Status: http.StatusUnauthorized, Title: "Unauthorized", Detail: unauth.msg}, false
	case errors.As(err, &forbid):
		return problem{Status: http.StatusForbidden, Title: "Forbidden", Detail: forbid.Msg, Role: forbid.Need}, false
	case errors.As(err, &tooBig):
		return problem{Status: http.StatusRequestEntityTooLarge, Title: "Request body too large",
			Detail: fmt.Sprintf("the request body is larger than %d bytes", tooBig.Limit)}, false
	case errors.As(err, &bad):
		return problem{Status: http.StatusBadRequest, Title: "Malformed request body", Detail: bad.msg}, false
	case errors.As(err, &conflict):
		return problem{Status: http.StatusConflict, Title: "Conflict", Detail: conflict.Msg, RunID: conflict.RunID}, false
	case errors.As(err, &unavail):
		return problem{Status: http.StatusServiceUnavailable, Title: "Service unavailable", Detail: unavail.msg}, false
	case errors.As(err, &timeout):
		return problem{Status: http.StatusGatewayTimeout, Title: "Timeout", Detail: timeout.msg}, false
	case errors.As(err, &method):
		return problem{Status: http.StatusMethodNotAllowed, Title: "Method not allowed", Detail: method.Error()}, false
	case unstorableText(err):
		return problem{Status: http.StatusBadRequest, Title: "Malformed request",
			Detail: "the request holds text that cannot be stored: a NUL character or invalid UTF-8"}, false
	case errors.As(err, &fe):
		switch fe.Code {
		case ferry.EInvalid:
			return problem{Status: http.StatusUnprocessableEntity, Title: "Invalid input", Detail: fe.Error(), Field: fe.Field}, false
		case ferry.ENotFound:
			return problem{Status: http.StatusNotFound, Title: "Not found", Detail: fe.Error(), Field: fe.Field}, false
		case ferry.EConflict:
			return problem{Status: http.StatusConflict, Title: "Conflict", Detail: fe.Error(), Field: fe.Field}, false
		}
	}
	return problem{Status: http.StatusInternalServerError, Title: "Internal error",
		Detail: "the server failed to handle the request; its log has the details"}, true
}

// unstorableText reports whether PostgreSQL refused a text the request
// carried (a name, filter, token or field with a NUL byte or invalid UTF-8):
// SQLSTATE 22021 or 22P05. The driver's error is matched by its method, so
// the API does not import the store's driver.
func unstorableText(err error) bool {
	var pg interface{ SQLState() string }
	if !errors.As(err, &pg) {
		return false
	}
	code := pg.SQLState()
	return code == "22021" || code == "22P05"
}

// error answers a request with the problem err maps to, logging internal
// errors with the request's id.
func (s *server) error(w http.ResponseWriter, r *http.Request, err error) {
	p, internal := problemFor(err)
	p.Type = "about:blank"
	if internal {
		s.Logger.ErrorContext(r.Context(), "request failed",
			slog.String("request_id", requestIDFrom(r.Context())),
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Any("error", err))
	}
	writeProblem(w, p)
}

func writeProblem(w http.ResponseWriter, p problem) {
	if p.Type == "" {
		p.Type = "about:blank"
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// decode reads the request body, at most maxBody bytes, as one JSON value
// into v, refusing unknown fields. An empty body is an error unless
// optional. The errors name the field at fault.
func decode(w http.ResponseWriter, r *http.Request, v any, optional bool) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) && optional {
			return nil
		}
		return decodeError(err)
	}
	var extra json.RawMessage
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil:
		return decodeError(err)
	default:
		return &malformedError{"the request body holds more than one JSON value"}
	}
}

func decodeError(err error) error {
	var (
		tooBig  *http.MaxBytesError
		syntax  *json.SyntaxError
		typeErr *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &tooBig):
		return err
	case errors.Is(err, io.EOF):
		return &malformedError{"the request body is empty; it must be a JSON object"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &malformedError{"the request body ends in the middle of a JSON value"}
	case errors.As(err, &syntax):
		return &malformedError{fmt.Sprintf("the request body is not valid JSON: %s (at byte %d)", syntax.Error(), syntax.Offset)}
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return &malformedError{fmt.Sprintf("the request body must be a JSON %s, not %s", jsonKind(typeErr.Type), typeErr.Value)}
		}
		return ferry.Invalid(typeErr.Field, "must be %s %s, not %s", article(jsonKind(typeErr.Type)), jsonKind(typeErr.Type), typeErr.Value)
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		return ferry.Invalid(name, "unknown field %q", name)
	}
	return &malformedError{"the request body is not valid JSON: " + err.Error()}
}

// jsonKind names the JSON type a Go type decodes from.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "value"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "object"
}

func article(s string) string {
	if strings.ContainsRune("aeiou", rune(s[0])) {
		return "an"
	}
	return "a"
}

// timedOut turns a call's deadline error into a timeoutError saying what
// did not answer, and leaves other errors alone.
func timedOut(err error, what string) error {
	var de *serviceerror.DeadlineExceeded
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &de) {
		return &timeoutError{what + " did not answer in time"}
	}
	return err
}
