package cli_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/apiclient"
	"github.com/ferrydr/ferry/cli"
)

// runAs runs a verb with the given token ("" for none).
func runAs(t *testing.T, url, token string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	c := &cli.CLI{
		API:    apiclient.New(url, nil, apiclient.WithToken(token)),
		Stdin:  strings.NewReader(""),
		Stdout: &out, Stderr: &errb, User: "alice", Location: time.UTC,
	}
	code := c.Run(context.Background(), args)
	return result{code, out.String(), errb.String()}
}

func TestTokenVerbs(t *testing.T) {
	url, st := api(t, nil)
	admin := tokenOf(url)

	// create prints the secret alone on stdout, and what it is on stderr.
	r := runAs(t, url, admin, "token", "create", "--name", "ci", "--role", "operator", "--project", "retail", "--expires", "720h")
	require.Equal(t, cli.ExitOK, r.code, r.stderr)
	secret := strings.TrimSpace(r.stdout)
	require.True(t, strings.HasPrefix(secret, ferry.TokenPrefix), r.stdout)
	require.NotContains(t, secret, "\n")
	require.Contains(t, r.stderr, "only time its secret is shown")
	require.Contains(t, r.stderr, "operator, project retail, expires")
	tok, err := st.TokenByHash(context.Background(), ferry.HashToken(secret))
	require.NoError(t, err)
	require.Equal(t, "test-admin", tok.CreatedBy)
	require.WithinDuration(t, time.Now().Add(720*time.Hour), *tok.ExpiresAt, time.Minute)

	// The new token works, within its role.
	require.Equal(t, cli.ExitOK, runAs(t, url, secret, "groups").code)
	r = runAs(t, url, secret, "token", "list")
	require.Equal(t, cli.ExitError, r.code)
	require.Contains(t, r.stderr, "needs the admin role")
	require.Contains(t, r.stderr, "ask an admin for a token with the role named above")

	// list shows every token, never a secret.
	r = runAs(t, url, admin, "token", "list")
	require.Equal(t, cli.ExitOK, r.code, r.stderr)
	require.Regexp(t, `(?m)^`+tok.ID+`\s+ci\s+operator\s+retail\s+active\s`, r.stdout)
	require.Contains(t, r.stdout, "test-admin")
	require.NotContains(t, r.stdout, secret)

	// revoke stops it at once.
	r = runAs(t, url, admin, "token", "revoke", tok.ID)
	require.Equal(t, cli.ExitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "revoked at")
	r = runAs(t, url, secret, "groups")
	require.Equal(t, cli.ExitError, r.code)
	require.Contains(t, r.stderr, "was revoked")
	require.Contains(t, r.stderr, "the API refused the token in FERRY_TOKEN")
	r = runAs(t, url, admin, "token", "list")
	require.Regexp(t, `(?m)^`+tok.ID+`\s+ci\s+operator\s+retail\s+revoked\s`, r.stdout)

	// Without a token: a clear message saying what to set.
	r = runAs(t, url, "", "groups")
	require.Equal(t, cli.ExitError, r.code)
	require.Contains(t, r.stderr, "FERRY_TOKEN is not set")

	// Bad arguments are usage errors.
	for _, args := range [][]string{
		{"token"}, {"token", "create", "--role", "viewer"}, {"token", "create", "--name", "x"},
		{"token", "revoke"}, {"token", "frobnicate"}, {"token", "create", "--name", "x", "--role", "viewer", "--expires", "-1h"},
	} {
		r := runAs(t, url, admin, args...)
		require.Equal(t, cli.ExitUsage, r.code, "%q: %s", args, r.stderr)
	}
	// What the API refuses names the field.
	r = runAs(t, url, admin, "token", "create", "--name", "boss", "--role", "admin", "--project", "retail")
	require.Equal(t, cli.ExitError, r.code)
	require.Contains(t, r.stderr, "project")

	// The audit log shows what happened, without a secret.
	r = runAs(t, url, admin, "audit", "--since", "1h")
	require.Equal(t, cli.ExitOK, r.code, r.stderr)
	require.Regexp(t, `(?m)POST\s+/v1/tokens\s+201\s+test-admin \(tok_`, r.stdout)
	require.Regexp(t, `(?m)DELETE\s+/v1/tokens/`+tok.ID+`\s+200\s+test-admin`, r.stdout)
	require.NotContains(t, r.stdout, secret)
	require.NotContains(t, r.stdout, admin)
	r = runAs(t, url, admin, "audit", "--token", "test-admin", "--limit", "1")
	require.Equal(t, cli.ExitOK, r.code, r.stderr)
	require.Len(t, strings.Split(strings.TrimSpace(r.stdout), "\n"), 2, "a header and one entry: %s", r.stdout)
	require.Equal(t, cli.ExitUsage, runAs(t, url, admin, "audit", "--since", "last tuesday").code)
}
