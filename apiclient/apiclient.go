// Package apiclient is a typed Go client for Ferry's HTTP API (v1).
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ferrydr/ferry"
)

// Client calls one Ferry API server.
type Client struct {
	base  string
	hc    *http.Client
	token string
}

// Option configures a Client.
type Option func(*Client)

// WithToken makes the client send token as its bearer (docs/security.md):
// every route but /healthz and /readyz needs one.
func WithToken(token string) Option {
	return func(c *Client) { c.token = token }
}

// New returns a client of the API at baseURL (e.g. http://127.0.0.1:8080).
// A nil hc means http.DefaultClient.
func New(baseURL string, hc *http.Client, opts ...Option) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	c := &Client{base: strings.TrimRight(baseURL, "/"), hc: hc}
	for _, o := range opts {
		o(c)
	}
	return c
}

// HasToken reports whether the client has a token to send.
func (c *Client) HasToken() bool { return c.token != "" }

// ProblemError is an RFC 9457 problem the API answered with.
type ProblemError struct {
	Status int    `json:"status"`
	Type   string `json:"type"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
	// Field names the offending input field, when there is one.
	Field string `json:"field"`
	// RunID names the run a conflict is about.
	RunID string `json:"run_id"`
	// Role names the role a refused (403) request needs.
	Role string `json:"role"`
}

func (e *ProblemError) Error() string {
	msg := e.Detail
	if msg == "" {
		msg = e.Title
	}
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if e.Field != "" && !strings.Contains(msg, e.Field) {
		msg = e.Field + ": " + msg
	}
	return fmt.Sprintf("%s (HTTP %d)", msg, e.Status)
}

// IsStatus reports whether err is a ProblemError with the given status.
func IsStatus(err error, status int) bool {
	var p *ProblemError
	return errors.As(err, &p) && p.Status == status
}

// Page is one page of a collection.
type Page[T any] struct {
	Items         []T    `json:"items"`
	NextPageToken string `json:"next_page_token"`
}

// ListOptions asks for one page.
type ListOptions struct {
	Limit     int
	PageToken string
}

func (o ListOptions) values() url.Values {
	v := url.Values{}
	if o.Limit > 0 {
		v.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.PageToken != "" {
		v.Set("page_token", o.PageToken)
	}
	return v
}

// RunOptions tune a run.
type RunOptions struct {
	QuiescePolicy string `json:"quiesce_policy,omitempty"`
	SkipApproval  bool   `json:"skip_approval,omitempty"`
	HoldSeconds   int    `json:"hold_seconds,omitempty"`
	Concurrency   int    `json:"concurrency,omitempty"`
	// FencedOutOfBand: see POST /v1/runs in docs/api.md.
	FencedOutOfBand string `json:"fenced_out_of_band,omitempty"`
}

// StartRunRequest is the body of POST /v1/runs.
type StartRunRequest struct {
	Kind        string     `json:"kind"`
	Group       string     `json:"group,omitempty"`
	Site        string     `json:"site,omitempty"`
	Backend     string     `json:"backend,omitempty"`
	Share       string     `json:"share,omitempty"`
	Mode        string     `json:"mode,omitempty"`
	Target      string     `json:"target,omitempty"`
	Options     RunOptions `json:"options"`
	RequestedBy string     `json:"requested_by,omitempty"`
	DryRun      bool       `json:"dry_run,omitempty"`
}

// StartRunResponse answers a started run.
type StartRunResponse struct {
	ID            string `json:"id"`
	WorkflowID    string `json:"workflow_id"`
	Kind          string `json:"kind"`
	Group         string `json:"group"`
	Site          string `json:"site"`
	Mode          string `json:"mode"`
	State         string `json:"state"`
	TemporalUIURL string `json:"temporal_ui_url"`
}

// RunFilter selects runs; empty fields match all.
type RunFilter struct {
	Group, Site, Kind, State string
	ListOptions
}

// SteerRequest is the optional body of a steering action.
type SteerRequest struct {
	By      string `json:"by,omitempty"`
	Comment string `json:"comment,omitempty"`
}

// Steering actions.
const (
	ActionApprove = "approve"
	ActionPause   = "pause"
	ActionResume  = "resume"
	ActionAbort   = "abort"
	ActionRetry   = "retry"
	ActionSkip    = "skip"
)

// Actions lists the steering actions.
var Actions = []string{ActionApprove, ActionPause, ActionResume, ActionAbort, ActionRetry, ActionSkip}

// ReplicaStatus is one replica of a group with its RPO compliance.
type ReplicaStatus struct {
	ferry.Replica
	RPOCompliant bool `json:"rpo_compliant"`
}

// Replication is the replication state of a group.
type Replication struct {
	Group      string          `json:"group"`
	RPOSeconds int             `json:"rpo_seconds"`
	Items      []ReplicaStatus `json:"items"`
	// Events are the replication monitor's recent events, newest first.
	Events []ferry.ReplicationEvent `json:"events"`
}

// Health calls GET /healthz.
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/healthz", nil, nil, nil)
}

// Ready calls GET /readyz: nil when PostgreSQL and Temporal answer.
func (c *Client) Ready(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/readyz", nil, nil, nil)
}

// PutSite creates or replaces a site and reports whether it was created.
func (c *Client) PutSite(ctx context.Context, s ferry.Site) (ferry.Site, bool, error) {
	return put(ctx, c, "/v1/sites/", s.Name, s)
}

// GetSite returns a site.
func (c *Client) GetSite(ctx context.Context, name string) (ferry.Site, error) {
	return get[ferry.Site](ctx, c, "/v1/sites/"+url.PathEscape(name))
}

// ListSites returns one page of sites.
func (c *Client) ListSites(ctx context.Context, o ListOptions) (Page[ferry.Site], error) {
	return get[Page[ferry.Site]](ctx, c, "/v1/sites?"+o.values().Encode())
}

// DeleteSite deletes a site.
func (c *Client) DeleteSite(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/sites/"+url.PathEscape(name), nil, nil, nil)
}

// PutBackend creates or replaces a backend and reports whether it was
// created.
func (c *Client) PutBackend(ctx context.Context, b ferry.Backend) (ferry.Backend, bool, error) {
	return put(ctx, c, "/v1/backends/", b.Name, b)
}

// GetBackend returns a backend.
func (c *Client) GetBackend(ctx context.Context, name string) (ferry.Backend, error) {
	return get[ferry.Backend](ctx, c, "/v1/backends/"+url.PathEscape(name))
}

// ListBackends returns one page of backends.
func (c *Client) ListBackends(ctx context.Context, o ListOptions) (Page[ferry.Backend], error) {
	return get[Page[ferry.Backend]](ctx, c, "/v1/backends?"+o.values().Encode())
}

// DeleteBackend deletes a backend.
func (c *Client) DeleteBackend(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/backends/"+url.PathEscape(name), nil, nil, nil)
}

// PutGroup creates or replaces a protection group and reports whether it
// was created.
func (c *Client) PutGroup(ctx context.Context, g ferry.Group) (ferry.Group, bool, error) {
	return put(ctx, c, "/v1/groups/", g.Name, g)
}

// GetGroup returns a protection group.
func (c *Client) GetGroup(ctx context.Context, name string) (ferry.Group, error) {
	return get[ferry.Group](ctx, c, "/v1/groups/"+url.PathEscape(name))
}

// ListGroups returns one page of protection groups.
func (c *Client) ListGroups(ctx context.Context, o ListOptions) (Page[ferry.Group], error) {
	return get[Page[ferry.Group]](ctx, c, "/v1/groups?"+o.values().Encode())
}

// DeleteGroup deletes a protection group.
func (c *Client) DeleteGroup(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/groups/"+url.PathEscape(name), nil, nil, nil)
}

// GroupReplication returns the observed replicas of a group.
func (c *Client) GroupReplication(ctx context.Context, name string) (Replication, error) {
	return get[Replication](ctx, c, "/v1/groups/"+url.PathEscape(name)+"/replication")
}

// StartRun starts a run.
func (c *Client) StartRun(ctx context.Context, req StartRunRequest) (StartRunResponse, error) {
	var out StartRunResponse
	err := c.do(ctx, http.MethodPost, "/v1/runs", req, &out, nil)
	return out, err
}

// GetRun returns a run with its live progress.
func (c *Client) GetRun(ctx context.Context, id string) (ferry.Run, error) {
	return get[ferry.Run](ctx, c, "/v1/runs/"+url.PathEscape(id))
}

// ListRuns returns one page of runs, newest first.
func (c *Client) ListRuns(ctx context.Context, f RunFilter) (Page[ferry.Run], error) {
	v := f.values()
	for k, s := range map[string]string{"group": f.Group, "site": f.Site, "kind": f.Kind, "state": f.State} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return get[Page[ferry.Run]](ctx, c, "/v1/runs?"+v.Encode())
}

// Steer sends a steering action (approve, pause, resume, abort, retry,
// skip) and returns the run's progress after it.
func (c *Client) Steer(ctx context.Context, id, action string, req SteerRequest) (ferry.Run, error) {
	var out ferry.Run
	err := c.do(ctx, http.MethodPost, "/v1/runs/"+url.PathEscape(id)+"/"+url.PathEscape(action), req, &out, nil)
	return out, err
}

// Report returns a run's report: its JSON record, or Markdown.
func (c *Client) Report(ctx context.Context, id string, markdown bool) ([]byte, error) {
	h := http.Header{}
	if markdown {
		h.Set("Accept", "text/markdown")
	} else {
		h.Set("Accept", "application/json")
	}
	var raw rawBody
	err := c.do(ctx, http.MethodGet, "/v1/runs/"+url.PathEscape(id)+"/report", nil, &raw, h)
	return raw, err
}

// rawBody receives a response body as it is.
type rawBody []byte

func put[T any](ctx context.Context, c *Client, prefix, name string, item T) (T, bool, error) {
	var out T
	var status int
	err := c.send(ctx, http.MethodPut, prefix+url.PathEscape(name), item, &out, nil, &status)
	return out, status == http.StatusCreated, err
}

func get[T any](ctx context.Context, c *Client, path string) (T, error) {
	var out T
	err := c.do(ctx, http.MethodGet, path, nil, &out, nil)
	return out, err
}

func (c *Client) do(ctx context.Context, method, path string, in, out any, h http.Header) error {
	return c.send(ctx, method, path, in, out, h, nil)
}

// send makes one call: in (if not nil) as the JSON body, the JSON answer
// into out (if not nil), a problem answer as a *ProblemError.
func (c *Client) send(ctx context.Context, method, path string, in, out any, h http.Header, status *int) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if status != nil {
		*status = resp.StatusCode
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode >= 400 {
		p := &ProblemError{}
		if json.Unmarshal(b, p) != nil || p.Status == 0 {
			p = &ProblemError{Title: http.StatusText(resp.StatusCode), Detail: strings.TrimSpace(string(b))}
		}
		p.Status = resp.StatusCode
		return p
	}
	switch o := out.(type) {
	case nil:
		return nil
	case *rawBody:
		*o = b
		return nil
	}
	if len(b) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}
