package apiclient

import (
	"context"
	"net/http"
	"net/url"
)

// Report formats GET /v1/runs/{id}/report makes (docs/reports.md).
const (
	ReportJSON     = "json"
	ReportMarkdown = "markdown"
	ReportHTML     = "html"
)

// ReportAs returns a run's report in format (json, markdown or html), as
// the API renders it.
func (c *Client) ReportAs(ctx context.Context, id, format string) ([]byte, error) {
	var raw rawBody
	path := "/v1/runs/" + url.PathEscape(id) + "/report?format=" + url.QueryEscape(format)
	err := c.do(ctx, http.MethodGet, path, nil, &raw, http.Header{})
	return raw, err
}
