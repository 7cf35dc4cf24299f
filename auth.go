package ferry

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Roles of API tokens, from least to most able (docs/security.md).
const (
	// RoleViewer reads: inventory, runs, reports, replication, schedules.
	RoleViewer = "viewer"
	// RoleOperator also starts and steers runs of groups, and sets drill
	// schedules.
	RoleOperator = "operator"
	// RoleAdmin can do everything: the inventory, whole-site and
	// whole-backend runs, tokens and the audit log.
	RoleAdmin = "admin"
)

// Roles lists the roles from least to most able.
var Roles = []string{RoleViewer, RoleOperator, RoleAdmin}

// RoleAllows reports whether a token of role have may do what needs role
// need: roles are ordered, each able to do what the ones below it can.
func RoleAllows(have, need string) bool {
	h, n := slices.Index(Roles, have), slices.Index(Roles, need)
	return h >= 0 && n >= 0 && h >= n
}

// TokenPrefix starts every token secret, so that secret scanners and
// people can tell a Ferry token when they see one.
const TokenPrefix = "fry_"

// Token limits.
const (
	// MaxTokenTTL bounds how long a token may live.
	MaxTokenTTL = 5 * 365 * 24 * time.Hour
	// tokenEntropy is the number of random bytes of a secret: 256 bits, so
	// a fast unsalted hash is enough to keep it at rest (nobody can guess
	// their way back from the hash).
	tokenEntropy = 32
)

// Token is an API token as Ferry keeps it: never its secret, which only its
// creator sees, once.
type Token struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Role      string `json:"role"`
	Project   string `json:"project,omitempty"`
	CreatedBy string `json:"created_by"`
	// CreatedAt and the other times are UTC.
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

// Validate reports the first invalid field of a token to create.
func (t Token) Validate() error {
	if err := checkName("name", t.Name); err != nil {
		return err
	}
	if !slices.Contains(Roles, t.Role) {
		return Invalid("role", "must be one of %s, not %q", strings.Join(Roles, ", "), t.Role)
	}
	if t.Project != "" {
		if err := checkName("project", t.Project); err != nil {
			return err
		}
		// An admin manages the whole inventory and every token: a project
		// cannot bound that.
		if t.Role == RoleAdmin {
			return Invalid("project", "an admin token cannot be scoped to a project; use operator or viewer")
		}
	}
	if t.ExpiresAt != nil {
		switch {
		case !t.ExpiresAt.After(t.CreatedAt):
			return Invalid("expires_at", "must be after the token's creation (%s)", t.CreatedAt.Format(time.RFC3339))
		case t.ExpiresAt.Sub(t.CreatedAt) > MaxTokenTTL:
			return Invalid("expires_at", "must be at most %s after creation", MaxTokenTTL)
		}
	}
	return nil
}

// Active reports whether the token authenticates at time now: neither
// revoked nor expired.
func (t Token) Active(now time.Time) bool {
	return t.RevokedAt == nil && (t.ExpiresAt == nil || now.Before(*t.ExpiresAt))
}

// NewToken fills t's id and creation time and makes its secret. It returns
// the secret, to show once, and the hash to keep.
func NewToken(t Token, now time.Time) (Token, string, []byte, error) {
	var id [8]byte
	var secret [tokenEntropy]byte
	if _, err := rand.Read(id[:]); err != nil {
		return Token{}, "", nil, fmt.Errorf("token id: %w", err)
	}
	if _, err := rand.Read(secret[:]); err != nil {
		return Token{}, "", nil, fmt.Errorf("token secret: %w", err)
	}
	t.ID = "tok_" + hex.EncodeToString(id[:])
	t.CreatedAt = now.UTC().Truncate(time.Microsecond)
	if t.ExpiresAt != nil {
		e := t.ExpiresAt.UTC().Truncate(time.Microsecond)
		t.ExpiresAt = &e
	}
	t.RevokedAt, t.LastUsedAt = nil, nil
	s := TokenPrefix + base64.RawURLEncoding.EncodeToString(secret[:])
	return t, s, HashToken(s), nil
}

// HashToken is the form a secret is kept and looked up in: SHA-256.
func HashToken(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// AuditEntry is one mutating API request, as the audit log keeps it: who
// (the token, never its secret), what (method and path, never the body),
// and how it ended.
type AuditEntry struct {
	ID         int64     `json:"id"`
	At         time.Time `json:"at"`
	Method     string    `json:"method"`
	Path       string    `json:"path"`
	Status     int       `json:"status"`
	TokenID    string    `json:"token_id,omitempty"`
	TokenName  string    `json:"token_name,omitempty"`
	Role       string    `json:"role,omitempty"`
	Project    string    `json:"project,omitempty"`
	RunID      string    `json:"run_id,omitempty"`
	RemoteAddr string    `json:"remote_addr,omitempty"`
	RequestID  string    `json:"request_id,omitempty"`
}
