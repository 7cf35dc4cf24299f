package apiclient

import (
	"context"
	"net/http"
)

// Precondition is one checked precondition of a dry run.
type Precondition struct {
	Name   string `json:"name"`
	Passed bool   `json:"passed"`
	Detail string `json:"detail,omitempty"`
}

// DryRunResponse is what a run would do: POST /v1/runs with "dry_run": true.
type DryRunResponse struct {
	DryRun             bool           `json:"dry_run"`
	Kind               string         `json:"kind"`
	Group              string         `json:"group,omitempty"`
	Site               string         `json:"site,omitempty"`
	Mode               string         `json:"mode,omitempty"`
	Steps              []string       `json:"steps"`
	Touches            []string       `json:"touches"`
	Preconditions      []Precondition `json:"preconditions"`
	Warnings           []string       `json:"warnings,omitempty"`
	Ready              bool           `json:"ready"`
	RTOEstimateSeconds *float64       `json:"rto_estimate_seconds"`
	RTOBasis           string         `json:"rto_basis"`
}

// DryRun asks what a run would do; it starts nothing.
func (c *Client) DryRun(ctx context.Context, req StartRunRequest) (DryRunResponse, error) {
	req.DryRun = true
	var out DryRunResponse
	err := c.do(ctx, http.MethodPost, "/v1/runs", req, &out, nil)
	return out, err
}
