package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/store"
)

// Token creates an API token in s the way `ferry token create` does (only
// its hash is stored) and returns its secret, for a test to send as its
// bearer. The token's name is name-role-project, unique per call site.
func Token(tb testing.TB, s *store.Store, name, role, project string) string {
	tb.Helper()
	t, secret, hash, err := ferry.NewToken(ferry.Token{Name: name, Role: role, Project: project, CreatedBy: "test"}, time.Now())
	if err != nil {
		tb.Fatalf("storetest: new token: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.CreateToken(ctx, t, hash); err != nil {
		tb.Fatalf("storetest: create token %q: %v", name, err)
	}
	return secret
}

// AdminToken creates an admin token named "test-admin" in s and returns its
// secret.
func AdminToken(tb testing.TB, s *store.Store) string {
	tb.Helper()
	return Token(tb, s, "test-admin", ferry.RoleAdmin, "")
}
