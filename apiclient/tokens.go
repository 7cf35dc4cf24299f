package apiclient

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/ferrydr/ferry"
)

// CreateTokenRequest is the body of POST /v1/tokens.
type CreateTokenRequest struct {
	Name    string `json:"name"`
	Role    string `json:"role"`
	Project string `json:"project,omitempty"`
	// ExpiresInSeconds sets an expiry; 0 means none.
	ExpiresInSeconds int64 `json:"expires_in_seconds,omitempty"`
}

// CreatedToken is a new token with its secret, which the API shows this
// once only.
type CreatedToken struct {
	ferry.Token
	Secret string `json:"token"`
}

// CreateToken creates an API token (admin).
func (c *Client) CreateToken(ctx context.Context, req CreateTokenRequest) (CreatedToken, error) {
	var out CreatedToken
	err := c.do(ctx, http.MethodPost, "/v1/tokens", req, &out, nil)
	return out, err
}

// ListTokens returns one page of tokens, newest first (admin).
func (c *Client) ListTokens(ctx context.Context, o ListOptions) (Page[ferry.Token], error) {
	return get[Page[ferry.Token]](ctx, c, "/v1/tokens?"+o.values().Encode())
}

// RevokeToken revokes a token at once (admin).
func (c *Client) RevokeToken(ctx context.Context, id string) (ferry.Token, error) {
	var out ferry.Token
	err := c.do(ctx, http.MethodDelete, "/v1/tokens/"+url.PathEscape(id), nil, &out, nil)
	return out, err
}

// AuditFilter selects audit entries.
type AuditFilter struct {
	Since time.Time
	// Token is a token's id or name.
	Token string
	ListOptions
}

// ListAudit returns one page of the audit log, newest first (admin).
func (c *Client) ListAudit(ctx context.Context, f AuditFilter) (Page[ferry.AuditEntry], error) {
	v := f.values()
	if !f.Since.IsZero() {
		v.Set("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if f.Token != "" {
		v.Set("token", f.Token)
	}
	return get[Page[ferry.AuditEntry]](ctx, c, "/v1/audit?"+v.Encode())
}
