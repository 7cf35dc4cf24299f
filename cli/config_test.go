package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ferrydr/ferry/cli"
)

// mainWith runs cli.Main with the given environment only.
func mainWith(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Main(context.Background(), args, strings.NewReader(""), &out, &errb, cli.Options{
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
	})
	return result{code, out.String(), errb.String()}
}

func writeMode(t *testing.T, path, content string, mode os.FileMode) string {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	require.NoError(t, os.Chmod(path, mode))
	return path
}

func TestConfigFileEnvAndFlags(t *testing.T) {
	url, _ := api(t, nil)
	admin := tokenOf(url)
	require.Equal(t, 0, run(t, url, "", "apply", "-f", writeFile(t, "inv.yaml", inventoryYAML)).code)
	const nowhere = "http://127.0.0.1:1"
	home := t.TempDir()
	usual := filepath.Join(home, ".config", "ferry", "config.yaml")

	// The usual place under HOME: the file alone is enough.
	writeMode(t, usual, "api_url: "+url+"\ntoken: "+admin+"\n", 0o600)
	env := map[string]string{"HOME": home}
	r := mainWith(t, env, "sites")
	require.Equal(t, cli.ExitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "NAME")

	// The environment wins over the file, flags over the environment.
	env["FERRY_API_URL"] = nowhere
	r = mainWith(t, env, "sites")
	require.Equal(t, cli.ExitError, r.code)
	require.Contains(t, r.stderr, "127.0.0.1:1")
	r = mainWith(t, env, "sites", "--api-url", url)
	require.Equal(t, cli.ExitOK, r.code, r.stderr)
	r = mainWith(t, env, "--api-url="+url, "sites")
	require.Equal(t, cli.ExitOK, r.code, "a global flag before the verb: %s", r.stderr)
	delete(env, "FERRY_API_URL")
	env["FERRY_TOKEN"] = "fry_not-a-token"
	r = mainWith(t, env, "sites")
	require.Equal(t, cli.ExitError, r.code)
	require.Contains(t, r.stderr, "the API refused the token in FERRY_TOKEN")
	tokenFile := writeMode(t, filepath.Join(home, "admin.token"), admin+"\n", 0o600)
	r = mainWith(t, env, "sites", "--token-file", tokenFile)
	require.Equal(t, cli.ExitOK, r.code, "--token-file wins over FERRY_TOKEN: %s", r.stderr)
	delete(env, "FERRY_TOKEN")

	// A token readable by others is refused, as ssh refuses such a key.
	require.NoError(t, os.Chmod(usual, 0o644))
	r = mainWith(t, env, "sites")
	require.Equal(t, cli.ExitUsage, r.code)
	require.Contains(t, r.stderr, usual+" holds a token but others may read it (mode 0644): refused; run chmod 600 "+usual)
	require.NotContains(t, r.stderr, admin)
	require.Empty(t, r.stdout)
	// Without a token in it, the file may be readable: token_file points
	// at a private file (relative to the config's folder).
	writeMode(t, usual, "api_url: "+url+"\ntoken_file: ../../admin.token\noutput: yaml\n", 0o644)
	r = mainWith(t, env, "sites")
	require.Equal(t, cli.ExitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "- name: ", "output: yaml is the default -o")
	r = mainWith(t, env, "sites", "-o", "table")
	require.Equal(t, cli.ExitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "NAME", "-o wins over the file's output")
	env["FERRY_OUTPUT"] = "json"
	r = mainWith(t, env, "sites")
	require.True(t, strings.HasPrefix(r.stdout, "["), "FERRY_OUTPUT wins over the file: %s", r.stdout)
	delete(env, "FERRY_OUTPUT")
	require.NoError(t, os.Chmod(tokenFile, 0o640))
	r = mainWith(t, env, "sites")
	require.Equal(t, cli.ExitUsage, r.code)
	require.Contains(t, r.stderr, tokenFile+" is a token file but others may read it (mode 0640)")

	// XDG_CONFIG_HOME wins over HOME; FERRY_CONFIG and --config over both.
	xdg := t.TempDir()
	writeMode(t, filepath.Join(xdg, "ferry", "config.yaml"), "api_url: "+url+"\ntoken: "+admin+"\n", 0o600)
	env["XDG_CONFIG_HOME"] = xdg
	r = mainWith(t, env, "sites")
	require.Equal(t, cli.ExitOK, r.code, r.stderr)
	other := writeMode(t, filepath.Join(t.TempDir(), "other.yaml"), "api_url: "+nowhere+"\n", 0o600)
	env["FERRY_CONFIG"] = other
	r = mainWith(t, env, "sites")
	require.Equal(t, cli.ExitError, r.code)
	require.Contains(t, r.stderr, "127.0.0.1:1")
	r = mainWith(t, env, "sites", "--config", filepath.Join(xdg, "ferry", "config.yaml"))
	require.Equal(t, cli.ExitOK, r.code, r.stderr)

	// Mistakes are usage errors that say what is wrong.
	for _, tt := range []struct {
		file, want string
	}{
		{"api_url: x\ncolour: red\n", "colour"},
		{"token: a\ntoken_file: b\n", "token and token_file are both set"},
		{"output: xml\n", `output "xml"`},
		{"api_url: [\n", "config"},
	} {
		p := writeMode(t, filepath.Join(t.TempDir(), "c.yaml"), tt.file, 0o600)
		r := mainWith(t, map[string]string{"FERRY_CONFIG": p}, "sites")
		require.Equal(t, cli.ExitUsage, r.code, tt.file)
		require.Contains(t, r.stderr, tt.want)
	}
	r = mainWith(t, map[string]string{}, "sites", "--config", filepath.Join(home, "missing.yaml"))
	require.Equal(t, cli.ExitUsage, r.code, "a config asked for must exist")
	require.Contains(t, r.stderr, "missing.yaml")
	r = mainWith(t, map[string]string{}, "sites", "--config")
	require.Equal(t, cli.ExitUsage, r.code)
	require.Contains(t, r.stderr, "flag --config needs a value")
	r = mainWith(t, map[string]string{"HOME": t.TempDir()}, "sites")
	require.Equal(t, cli.ExitError, r.code, "no file in the usual place is fine: the default URL, no token")
	require.Regexp(t, `127\.0\.0\.1:8080|FERRY_TOKEN is not set`, r.stderr)
}

// TestConfigFileOthersMayNotChange: whoever can change the config file can
// send the CLI, and its token, to a server of their own; so the file, and
// a token file, must be the user's own and nobody else may write them.
func TestConfigFileOthersMayNotChange(t *testing.T) {
	const nowhere = "http://127.0.0.1:1"
	dir := t.TempDir()
	conf := writeMode(t, filepath.Join(dir, "config.yaml"), "api_url: "+nowhere+"\n", 0o664)
	env := map[string]string{"FERRY_CONFIG": conf}
	for _, mode := range []os.FileMode{0o664, 0o646, 0o622} {
		require.NoError(t, os.Chmod(conf, mode))
		r := mainWith(t, env, "sites")
		require.Equal(t, cli.ExitUsage, r.code, "mode %04o", mode)
		require.Contains(t, r.stderr, fmt.Sprintf("%s is a config file but others may write it (mode %04o): refused; run chmod go-w %s", conf, mode, conf))
		require.Empty(t, r.stdout)
	}
	// The fix it gives is enough: a readable file without a token is fine.
	require.NoError(t, os.Chmod(conf, 0o644))
	r := mainWith(t, env, "sites")
	require.Equal(t, cli.ExitError, r.code, "the config is used: %s", r.stderr)
	require.Contains(t, r.stderr, "127.0.0.1:1")

	// A token file others may write is refused too (chmod 600 fixes both).
	tok := writeMode(t, filepath.Join(dir, "t.token"), "fry_secret\n", 0o602)
	r = mainWith(t, env, "sites", "--token-file", tok)
	require.Equal(t, cli.ExitUsage, r.code)
	require.Contains(t, r.stderr, tok+" is a token file but others may read it (mode 0602): refused; run chmod 600 "+tok)
	require.NotContains(t, r.stderr, "fry_secret")

	// A file another user owns is refused whatever its mode.
	theirs := otherUsersFile(t, "api_url: "+nowhere+"\n")
	r = mainWith(t, map[string]string{"FERRY_CONFIG": theirs}, "sites")
	require.Equal(t, cli.ExitUsage, r.code, r.stderr)
	require.Regexp(t, regexp.QuoteMeta(theirs)+` is a config file but belongs to user \d+, not to you \(user `+strconv.Itoa(os.Getuid())+`\): refused`, r.stderr)
	r = mainWith(t, env, "sites", "--token-file", otherUsersFile(t, "fry_theirs\n"))
	require.Equal(t, cli.ExitUsage, r.code, r.stderr)
	require.Contains(t, r.stderr, "is a token file but belongs to user")
	require.NotContains(t, r.stderr, "fry_theirs")
}

// otherUsersFile is a private file that belongs to another user: as root,
// a file given to nobody (65534); otherwise /etc/passwd, which root owns.
func otherUsersFile(t *testing.T, content string) string {
	t.Helper()
	if os.Getuid() != 0 {
		return "/etc/passwd"
	}
	p := writeMode(t, filepath.Join(t.TempDir(), "theirs"), content, 0o600)
	require.NoError(t, os.Chown(p, 65534, 65534))
	return p
}
