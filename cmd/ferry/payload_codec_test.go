package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/ferrydr/ferry/codec"
	"github.com/ferrydr/ferry/config"
)

// `ferry payload-key new ID` prints a line a keyring loads; bad use is
// refused with the usage.
func TestPayloadKeyNew(t *testing.T) {
	var out, errOut bytes.Buffer
	require.Equal(t, 0, run(context.Background(), []string{"payload-key", "new", "2026-01"}, nil, &out, &errOut), errOut.String())
	line := strings.TrimSpace(out.String())
	require.True(t, strings.HasPrefix(line, "2026-01:"), line)
	path := filepath.Join(t.TempDir(), "keys")
	require.NoError(t, os.WriteFile(path, []byte(line+"\n"), 0o600))
	_, err := codec.LoadKeyring(path)
	require.NoError(t, err)

	out.Reset()
	require.Equal(t, 0, run(context.Background(), []string{"payload-key", "new", "2026-01"}, nil, &out, &errOut))
	require.NotEqual(t, line, strings.TrimSpace(out.String()), "each key is new")

	for _, args := range [][]string{{"payload-key"}, {"payload-key", "old", "x"}, {"payload-key", "new"}, {"payload-key", "new", "a:b"}} {
		errOut.Reset()
		require.Equal(t, 2, run(context.Background(), args, nil, io.Discard, &errOut), "%q", args)
		require.NotEmpty(t, errOut.String())
	}
}

// Every Temporal client Ferry builds goes through secureTemporal: with a
// keyring it seals payloads and failures, without one it leaves them.
func TestSecureTemporalSealsWithAKeyring(t *testing.T) {
	cfg, err := config.LoadFrom(map[string]string{})
	require.NoError(t, err)
	var o client.Options
	require.NoError(t, secureTemporal(cfg, &o))
	require.Nil(t, o.DataConverter)
	require.Nil(t, o.FailureConverter)

	line, err := codec.NewKey("k1")
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "keys")
	require.NoError(t, os.WriteFile(path, []byte(line+"\n"), 0o600))
	cfg, err = config.LoadFrom(map[string]string{"FERRY_PAYLOAD_KEYS_FILE": path})
	require.NoError(t, err)
	require.NoError(t, secureTemporal(cfg, &o))
	require.NotNil(t, o.DataConverter)
	require.NotNil(t, o.FailureConverter)
	p, err := o.DataConverter.ToPayload("x")
	require.NoError(t, err)
	require.Equal(t, codec.Encoding, string(p.Metadata[codec.MetadataEncoding]))

	cfg, err = config.LoadFrom(map[string]string{"FERRY_PAYLOAD_KEYS_FILE": filepath.Join(t.TempDir(), "missing")})
	require.NoError(t, err)
	require.ErrorContains(t, secureTemporal(cfg, &client.Options{}), "FERRY_PAYLOAD_KEYS_FILE")
}

// `ferry dev` with a keyring starts the Temporal dev server with the API's
// codec endpoint as its UI's: the UI's own settings say so.
func TestDevUIGetsTheCodecEndpoint(t *testing.T) {
	line, err := codec.NewKey("k1")
	require.NoError(t, err)
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	require.NoError(t, os.WriteFile(keys, []byte(line+"\n"), 0o600))
	uiPort, apiPort := freePort(t), freePort(t)
	cfg, err := config.LoadFrom(map[string]string{
		"FERRY_TEMPORAL_ADDRESS":   "127.0.0.1:" + strconv.Itoa(freePort(t)),
		"FERRY_TEMPORAL_UI_URL":    "http://127.0.0.1:" + strconv.Itoa(uiPort),
		"FERRY_HTTP_ADDR":          "127.0.0.1:" + strconv.Itoa(apiPort),
		"FERRY_DATA_DIR":           dir,
		"FERRY_PAYLOAD_KEYS_FILE":  keys,
		"FERRY_TEMPORAL_NAMESPACE": "default",
	})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stop, err := startTemporal(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	defer stop()

	var settings struct {
		Codec struct {
			Endpoint string
		}
	}
	require.Eventually(t, func() bool {
		resp, err := http.Get(cfg.TemporalUIURL + "/api/v1/settings")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&settings) == nil
	}, time.Minute, 200*time.Millisecond)
	require.Equal(t, "http://127.0.0.1:"+strconv.Itoa(apiPort)+"/codec", settings.Codec.Endpoint)
}
