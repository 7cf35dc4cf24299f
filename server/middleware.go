package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/telemetry"
)

type ctxKey int

const requestIDKey ctxKey = 0

// requestIDHeader carries the request id both ways: a caller may send its
// own, and every answer names the one in the server's log.
const requestIDHeader = "X-Request-Id"

func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

func (s *server) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(requestIDHeader)
		if !validRequestID(id) {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set(requestIDHeader, id)
		// Every line logged with the request's context names it.
		ctx := telemetry.WithLogAttrs(r.Context(), slog.String("request_id", id))
		next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, requestIDKey, id)))
	})
}

// routeFields runs once the route is known: it names the request's trace
// span by the route's pattern (never the raw path, whose ids would make
// every span name new), and puts the run or the group the request is about
// on every line logged for it, the request's closing line included.
func (s *server) routeFields(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pattern := chi.RouteContext(r.Context()).RoutePattern()
		telemetry.NameSpan(r.Context(), r.Method, pattern)
		switch {
		case strings.HasPrefix(pattern, "/v1/runs/{id}"):
			telemetry.AddLogAttrs(r.Context(), slog.String("run_id", chi.URLParam(r, "id")))
		case strings.HasPrefix(pattern, "/v1/groups/{name}"):
			telemetry.AddLogAttrs(r.Context(), slog.String("group", chi.URLParam(r, "name")))
		}
		next.ServeHTTP(w, r)
	})
}

// logRunOf puts the group of the run a request is about on the request's
// log lines once a handler has read that run: its route gives only the id
// (routeFields). Other runs a handler reads leave the lines alone.
func logRunOf(ctx context.Context, r ferry.Run) {
	for _, a := range telemetry.LogAttrs(ctx) {
		if a.Key == "run_id" && a.Value.String() == r.ID {
			telemetry.AddLogAttrs(ctx, runLogAttrs(r)...)
			return
		}
	}
}

// runLogAttrs are the log fields of a run: its id, and its group if it has
// one (a site's evacuation has many).
func runLogAttrs(r ferry.Run) []slog.Attr {
	attrs := []slog.Attr{slog.String("run_id", r.ID), slog.String("workflow_id", r.WorkflowID)}
	if r.Group != "" {
		attrs = append(attrs, slog.String("group", r.Group))
	}
	return attrs
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

// recorder remembers the status a handler wrote.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (rec *recorder) WriteHeader(code int) {
	if rec.status == 0 {
		rec.status = code
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *recorder) Write(b []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	n, err := rec.ResponseWriter.Write(b)
	rec.bytes += n
	return n, err
}

func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

func (s *server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		// Reads that succeed are the polling of `ferry watch` and probes:
		// at info they would drown the changes an operator looks for.
		level := slog.LevelInfo
		if r.Method == http.MethodGet && rec.status < 400 {
			level = slog.LevelDebug
		}
		s.Logger.Log(r.Context(), level, "http request",
			slog.String("request_id", requestIDFrom(r.Context())),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", rec.status),
			slog.Int("bytes", rec.bytes),
			slog.Duration("duration", time.Since(start)))
	})
}

// recoverPanics turns a handler's panic into a 500 problem and a log entry
// with the stack, so one bad request does not take the API down.
func (s *server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.Logger.ErrorContext(r.Context(), "handler panicked",
				slog.String("request_id", requestIDFrom(r.Context())),
				slog.String("method", r.Method), slog.String("path", r.URL.Path),
				slog.String("panic", fmt.Sprint(v)), slog.String("stack", string(debug.Stack())))
			if rec, ok := w.(*recorder); ok && rec.status != 0 {
				return // the answer has begun; nothing sensible can follow
			}
			p, _ := problemFor(fmt.Errorf("panic: %v", v))
			writeProblem(w, p)
		}()
		next.ServeHTTP(w, r)
	})
}
