package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// API is the bench's small client of Ferry's API: every request carries the
// bench's admin token as its bearer.
type API struct {
	Base  string
	Token string
	hc    *http.Client
}

// NewAPI returns a client of the API at base.
func NewAPI(base, token string) *API {
	return &API{Base: base, Token: token, hc: &http.Client{Timeout: time.Minute}}
}

// StartRunRequest is the body of POST /v1/runs.
type StartRunRequest struct {
	Kind        string         `json:"kind"`
	Group       string         `json:"group,omitempty"`
	Site        string         `json:"site,omitempty"`
	Mode        string         `json:"mode,omitempty"`
	Options     map[string]any `json:"options,omitempty"`
	RequestedBy string         `json:"requested_by,omitempty"`
	DryRun      bool           `json:"dry_run,omitempty"`
}

// StartRunResponse is what POST /v1/runs answers for a started run.
type StartRunResponse struct {
	ID         string `json:"id"`
	WorkflowID string `json:"workflow_id"`
	State      string `json:"state"`
}

// Do sends a request and decodes a 2xx answer into out (nil: discard). A
// non-2xx answer is an error carrying the status and the body.
func (a *API) Do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.Base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.Token != "" {
		req.Header.Set("Authorization", "Bearer "+a.Token)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, tail(string(b), 1000))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// Headers are the headers wrk sends: the bearer token.
func (a *API) Headers() map[string]string {
	if a.Token == "" {
		return nil
	}
	return map[string]string{"Authorization": "Bearer " + a.Token}
}
