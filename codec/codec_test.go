package codec_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/ferrydr/ferry/codec"
	"github.com/ferrydr/ferry/internal/devserver"
)

func keyring(t *testing.T, lines ...string) *codec.Keyring {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys")
	require.NoError(t, os.WriteFile(path, []byte("# ferry payload keys\n"+strings.Join(lines, "\n")+"\n"), 0o600))
	k, err := codec.LoadKeyring(path)
	require.NoError(t, err)
	return k
}

func newKey(t *testing.T, id string) string {
	line, err := codec.NewKey(id)
	require.NoError(t, err)
	return line
}

const secret = "s3cr3t-do-not-leak"

func TestRoundTripAndRotation(t *testing.T) {
	k1, k2 := newKey(t, "k1"), newKey(t, "k2")
	old := codec.DataConverter(keyring(t, k1))
	p, err := old.ToPayload(map[string]string{"token": secret})
	require.NoError(t, err)
	require.Equal(t, codec.Encoding, string(p.Metadata[codec.MetadataEncoding]))
	require.Equal(t, "k1", string(p.Metadata[codec.MetadataKeyID]))
	require.NotContains(t, string(p.Data), secret)
	require.NotContains(t, string(p.Data), "json/plain", "the inner encoding is sealed too")

	// After rotation (k2 first, k1 kept) old payloads still open and new
	// ones are sealed with k2.
	rotated := codec.DataConverter(keyring(t, k2, k1))
	var got map[string]string
	require.NoError(t, rotated.FromPayload(p, &got))
	require.Equal(t, secret, got["token"])
	p2, err := rotated.ToPayload("x")
	require.NoError(t, err)
	require.Equal(t, "k2", string(p2.Metadata[codec.MetadataKeyID]))

	// Dropping k1 makes its payloads unreadable, with the reason.
	onlyNew := codec.DataConverter(keyring(t, k2))
	err = onlyNew.FromPayload(p, &got)
	require.ErrorContains(t, err, `key "k1", which the keyring does not hold`)

	// Payloads written before encryption pass through.
	plain, err := converter.GetDefaultDataConverter().ToPayload("before")
	require.NoError(t, err)
	var s string
	require.NoError(t, rotated.FromPayload(plain, &s))
	require.Equal(t, "before", s)
}

func TestTamperAndRelabel(t *testing.T) {
	k1, k2 := newKey(t, "k1"), newKey(t, "k2")
	c := codec.New(keyring(t, k1, k2))
	in, err := converter.GetDefaultDataConverter().ToPayload(secret)
	require.NoError(t, err)
	sealed, err := c.Encode([]*commonpb.Payload{in})
	require.NoError(t, err)

	flipped := &commonpb.Payload{Metadata: sealed[0].Metadata, Data: bytes.Clone(sealed[0].Data)}
	flipped.Data[len(flipped.Data)-1] ^= 1
	_, err = c.Decode([]*commonpb.Payload{flipped})
	require.ErrorContains(t, err, "does not open")

	relabelled := &commonpb.Payload{Metadata: map[string][]byte{codec.MetadataEncoding: []byte(codec.Encoding), codec.MetadataKeyID: []byte("k2")}, Data: sealed[0].Data}
	_, err = c.Decode([]*commonpb.Payload{relabelled})
	require.ErrorContains(t, err, "does not open", "the key id is authenticated")

	out, err := c.Decode(sealed)
	require.NoError(t, err)
	require.Equal(t, in.Data, out[0].Data)
}

func TestKeyringErrors(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"no colon":  "k1 abc\n",
		"not b64":   "k1:!!!\n",
		"short key": "k1:" + "AAAA" + "\n",
		"empty":     "# nothing\n",
		"dup":       newKey(t, "k1") + "\n" + newKey(t, "k1") + "\n",
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
		_, err := codec.LoadKeyring(path)
		require.Error(t, err, name)
		for _, line := range strings.Split(body, "\n") {
			if _, key, ok := strings.Cut(line, ":"); ok && len(key) > 8 {
				require.NotContains(t, err.Error(), key, "an error never shows a key")
			}
		}
	}
}

// The codec server as the Temporal UI calls it: a CORS preflight from the
// UI's origin, then /decode of sealed payloads.
func TestHandler(t *testing.T) {
	keys := keyring(t, newKey(t, "k1"))
	const ui = "http://127.0.0.1:8233"
	srv := httptest.NewServer(codec.Handler(keys, ui))
	defer srv.Close()

	req, _ := http.NewRequest(http.MethodOptions, srv.URL+"/decode", nil)
	req.Header.Set("Origin", ui)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.Equal(t, ui, resp.Header.Get("Access-Control-Allow-Origin"))

	req, _ = http.NewRequest(http.MethodOptions, srv.URL+"/decode", nil)
	req.Header.Set("Origin", "http://evil.example")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))

	remote := converter.NewRemotePayloadCodec(converter.RemotePayloadCodecOptions{Endpoint: srv.URL})
	in, err := converter.GetDefaultDataConverter().ToPayload(secret)
	require.NoError(t, err)
	sealed, err := codec.New(keys).Encode([]*commonpb.Payload{in})
	require.NoError(t, err)
	opened, err := remote.Decode(sealed)
	require.NoError(t, err)
	require.Equal(t, in.Data, opened[0].Data)

	resp, err = http.Post(srv.URL+"/decode", "application/json", strings.NewReader(strings.Repeat("x", 9<<20)))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "an oversized body is refused")
}

func echo(ctx workflow.Context, in string) (string, error) { return in + "!", nil }

// Through a real Temporal server: the history holds ciphertext only, and
// the worker and client, sharing the keyring, see the plain values.
func TestTemporalHistoryIsSealed(t *testing.T) {
	srv := devserver.Start(t)
	keys := keyring(t, newKey(t, "k1"))
	c, err := client.Dial(client.Options{HostPort: srv.HostPort, DataConverter: codec.DataConverter(keys)})
	require.NoError(t, err)
	defer c.Close()
	w := worker.New(c, "codec-test", worker.Options{})
	w.RegisterWorkflow(echo)
	require.NoError(t, w.Start())
	defer w.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "codec-echo", TaskQueue: "codec-test"}, echo, secret)
	require.NoError(t, err)
	var out string
	require.NoError(t, run.Get(ctx, &out))
	require.Equal(t, secret+"!", out)

	// Read the raw history with a client that has no codec.
	raw := srv.Client()
	it := raw.GetWorkflowHistory(ctx, "codec-echo", run.GetRunID(), false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	sealedSeen := 0
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		blob, err := ev.Marshal()
		require.NoError(t, err)
		require.NotContains(t, string(blob), secret, "event %s", ev.GetEventType())
		if bytes.Contains(blob, []byte(codec.Encoding)) {
			sealedSeen++
		}
	}
	require.GreaterOrEqual(t, sealedSeen, 2, "input and result are sealed")
}

func failWith(ctx workflow.Context, msg string) error {
	return temporal.NewNonRetryableApplicationError("refused: "+msg, "test", nil)
}

// The failure converter seals a failure's message and stack trace: the raw
// history says "Encoded failure", a client with the keyring reads the
// message.
func TestFailureMessagesAreSealed(t *testing.T) {
	srv := devserver.Start(t)
	keys := keyring(t, newKey(t, "k1"))
	c, err := client.Dial(client.Options{HostPort: srv.HostPort,
		DataConverter: codec.DataConverter(keys), FailureConverter: codec.FailureConverter(keys)})
	require.NoError(t, err)
	defer c.Close()
	w := worker.New(c, "codec-fail", worker.Options{})
	w.RegisterWorkflow(failWith)
	require.NoError(t, w.Start())
	defer w.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "codec-fail", TaskQueue: "codec-fail"}, failWith, secret)
	require.NoError(t, err)
	err = run.Get(ctx, nil)
	require.ErrorContains(t, err, "refused: "+secret, "the keyring's client reads the message")

	it := srv.Client().GetWorkflowHistory(ctx, "codec-fail", run.GetRunID(), false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var failed bool
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		blob, err := ev.Marshal()
		require.NoError(t, err)
		require.NotContains(t, string(blob), secret, "event %s", ev.GetEventType())
		if f := ev.GetWorkflowExecutionFailedEventAttributes().GetFailure(); f != nil {
			failed = true
			require.Equal(t, "Encoded failure", f.GetMessage())
			require.Equal(t, codec.Encoding, string(f.GetEncodedAttributes().GetMetadata()[codec.MetadataEncoding]))
		}
	}
	require.True(t, failed)
}

func TestNewKeyIDAndOrigin(t *testing.T) {
	for _, id := range []string{"", "a:b", "a b", strings.Repeat("x", 65)} {
		_, err := codec.NewKey(id)
		require.ErrorContains(t, err, "key id", "%q", id)
	}
	line := newKey(t, "2026-01")
	require.True(t, strings.HasPrefix(line, "2026-01:"))
	keyring(t, line) // the line loads

	require.Equal(t, "http://127.0.0.1:8233", codec.Origin("http://127.0.0.1:8233/namespaces/default/workflows"))
	require.Equal(t, "https://temporal.example", codec.Origin("HTTPS://Temporal.Example"))
	require.Empty(t, codec.Origin("127.0.0.1:8233"))
}
