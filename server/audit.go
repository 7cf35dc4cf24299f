package server

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/ferrydr/ferry"
)

const auditKey ctxKey = 2

// auditTimeout bounds each write of the audit log.
const auditTimeout = 5 * time.Second

// auditState is one mutating request's audit entry while it is handled:
// authenticate fills in the token, authorize appends the entry before the
// handler acts, handlers note the run they start or steer, and the audit
// middleware records the outcome.
type auditState struct {
	entry ferry.AuditEntry
	id    int64 // set once appended
}

func auditFrom(ctx context.Context) *auditState {
	a, _ := ctx.Value(auditKey).(*auditState)
	return a
}

// noteRun records the run a request started or steered in its audit entry.
func noteRun(ctx context.Context, runID string) {
	if a := auditFrom(ctx); a != nil {
		a.entry.RunID = runID
	}
}

// mutating reports whether a request of method may change something, and so
// is audited.
func mutating(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// audit writes every mutating request to the audit log, refused ones
// included: method, path (never the query or body), the token (id, name,
// role, project; never its secret), status, run and remote address.
func (s *server) audit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !mutating(r.Method) {
			next.ServeHTTP(w, r)
			return
		}
		a := &auditState{entry: ferry.AuditEntry{
			At:     time.Now().UTC(),
			Method: r.Method,
			// The escaped form is plain ASCII, so any path a client sends
			// can be stored as it came.
			Path:       r.URL.EscapedPath(),
			RemoteAddr: r.RemoteAddr,
			RequestID:  requestIDFrom(r.Context()),
		}}
		if len(a.entry.Method) > 16 {
			a.entry.Method = a.entry.Method[:16]
		}
		if len(a.entry.Path) > 2048 {
			a.entry.Path = a.entry.Path[:2048]
		}
		rec := &recorder{ResponseWriter: w}
		defer func() {
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			if v := recover(); v != nil {
				// recoverPanics answers 500 inside; a panic here means the
				// answer was cut short. Record that, then let it go on.
				if status < 500 {
					status = http.StatusInternalServerError
				}
				s.finishAudit(r.Context(), a, status)
				panic(v)
			}
			s.finishAudit(r.Context(), a, status)
		}()
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), auditKey, a)))
	})
}

// beginAudit appends the entry of a request about to act. Failing to is
// failing the request: nothing may change that the log does not show.
func (s *server) beginAudit(ctx context.Context) error {
	a := auditFrom(ctx)
	if a == nil {
		return nil
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
	defer cancel()
	id, err := s.Store.AppendAudit(actx, a.entry)
	if err != nil {
		s.Logger.ErrorContext(ctx, "audit log not written; request refused",
			slog.String("request_id", a.entry.RequestID), slog.Any("error", err))
		return &unavailableError{"the audit log cannot be written now, so nothing was changed; retry later"}
	}
	a.id = id
	return nil
}

// finishAudit records how a request ended: it completes the entry appended
// before it acted, or appends the whole entry of a request refused before
// that (no token, too low a role, no such route).
func (s *server) finishAudit(ctx context.Context, a *auditState, status int) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
	defer cancel()
	var err error
	if a.id != 0 {
		err = s.Store.CompleteAudit(actx, a.id, status, a.entry.RunID)
	} else {
		e := a.entry
		e.Status = status
		_, err = s.Store.AppendAudit(actx, e)
	}
	if err != nil {
		s.Logger.ErrorContext(ctx, "audit log entry not completed",
			slog.String("request_id", a.entry.RequestID), slog.Int64("audit_id", a.id),
			slog.Int("status", status), slog.Any("error", err))
	}
}

// listAudit answers GET /v1/audit?since=&token=&limit=&page_token=, newest
// first.
func (s *server) listAudit(w http.ResponseWriter, r *http.Request) {
	p, err := pageFrom(r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	q := r.URL.Query()
	f := ferry.AuditFilter{Token: q.Get("token"), Page: p}
	if v := q.Get("since"); v != "" {
		if f.Since, err = time.Parse(time.RFC3339Nano, v); err != nil {
			s.error(w, r, ferry.Invalid("since", "must be an RFC 3339 time such as 2026-01-02T15:04:05Z, not %q", v))
			return
		}
	}
	es, next, err := s.Store.ListAudit(r.Context(), f)
	if err != nil {
		s.error(w, r, err)
		return
	}
	if es == nil {
		es = []ferry.AuditEntry{}
	}
	writeJSON(w, http.StatusOK, list[ferry.AuditEntry]{Items: es, NextPageToken: next})
}
