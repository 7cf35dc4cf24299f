package testsuite

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ferrydr/ferry"
)

// bootstrapToken makes the install's first admin token the way an operator
// does on a new production install: `ferry token bootstrap` against the
// database in env's FERRY_DATABASE_URL. It returns the token, for the
// API client and FERRY_TOKEN.
func bootstrapToken(t *testing.T, bin string, env []string) string {
	t.Helper()
	cmd := exec.Command(bin, "token", "bootstrap", "--name", "e2e-admin")
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "ferry token bootstrap: %s", stderr.String())
	token := strings.TrimSpace(string(out))
	require.True(t, strings.HasPrefix(token, ferry.TokenPrefix), "ferry token bootstrap printed %q", out)
	require.Contains(t, stderr.String(), "only time its secret is shown")

	// A second bootstrap is refused while that admin token is active.
	again := exec.Command(bin, "token", "bootstrap", "--name", "e2e-admin-2")
	again.Env = env
	b, err := again.CombinedOutput()
	require.Error(t, err, "a second bootstrap must be refused: %s", b)
	require.Contains(t, string(b), "an active admin token exists")
	require.NotContains(t, string(b), token)
	return token
}
