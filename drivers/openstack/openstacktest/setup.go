package openstacktest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// requireBins fails the test, naming what to install, when one of bins
// is not on PATH.
func requireBins(tb testing.TB, packages string, bins ...string) {
	tb.Helper()
	for _, bin := range bins {
		if _, err := exec.LookPath(bin); err != nil {
			tb.Fatalf("%s is not installed: apt-get install --no-install-recommends %s", bin, packages)
		}
	}
}

// provision creates a fresh MariaDB database and user, and a RabbitMQ
// vhost, named prefix_<random>, all dropped at cleanup (registered first,
// so they go after the services stopped: cleanups run last-registered
// first). It returns the name and the database password.
func provision(tb testing.TB, prefix, charset string) (id, dbPass string) {
	tb.Helper()
	id = prefix + "_" + randHex(4)
	dbPass = randHex(12)
	sql := fmt.Sprintf("CREATE DATABASE %[1]s CHARACTER SET %[3]s; CREATE USER '%[1]s'@'127.0.0.1' IDENTIFIED BY '%[2]s'; GRANT ALL ON %[1]s.* TO '%[1]s'@'127.0.0.1';", id, dbPass, charset)
	run(tb, 30*time.Second, "mariadb", "-e", sql)
	tb.Cleanup(func() {
		runQuiet(30*time.Second, "mariadb", "-e", fmt.Sprintf("DROP DATABASE IF EXISTS %[1]s; DROP USER IF EXISTS '%[1]s'@'127.0.0.1';", id))
	})
	run(tb, 60*time.Second, "rabbitmqctl", "add_vhost", id)
	tb.Cleanup(func() { runQuiet(60*time.Second, "rabbitmqctl", "delete_vhost", id) })
	run(tb, 60*time.Second, "rabbitmqctl", "set_permissions", "-p", id, "guest", ".*", ".*", ".*")
	return id, dbPass
}

// stateDirs makes the state, lock and log directories under dir.
func stateDirs(tb testing.TB, dir string) {
	tb.Helper()
	for _, d := range []string{"state", "lock", "log"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
}

// doJSON sends one JSON request to url with the given headers and
// decodes a JSON answer into out when out is not nil. path names the
// request in errors. It returns the HTTP status, also on errors; a status
// of 300 or more is an error with the body.
func doJSON(ctx context.Context, method, url, path string, header http.Header, body, out any) (int, error) {
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var raw bytes.Buffer
	if _, err := raw.ReadFrom(resp.Body); err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, strings.TrimSpace(raw.String()))
	}
	if out != nil && raw.Len() > 0 {
		if err := json.Unmarshal(raw.Bytes(), out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: decode: %v", method, path, err)
		}
	}
	return resp.StatusCode, nil
}
