package server_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/codec"
	"github.com/ferrydr/ferry/server"
	"github.com/ferrydr/ferry/store/storetest"
)

func testKeyring(t *testing.T) *codec.Keyring {
	t.Helper()
	line, err := codec.NewKey("k1")
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "keys")
	require.NoError(t, os.WriteFile(path, []byte(line+"\n"), 0o600))
	k, err := codec.LoadKeyring(path)
	require.NoError(t, err)
	return k
}

// remote is the codec endpoint as `temporal workflow show --codec-endpoint
// --codec-auth` and the UI call it: the SDK's remote codec.
func (e *env) remote(token string) converter.PayloadCodec {
	return converter.NewRemotePayloadCodec(converter.RemotePayloadCodecOptions{
		Endpoint: e.url + "/codec",
		ModifyRequest: func(r *http.Request) error {
			if token != "" {
				r.Header.Set("Authorization", "Bearer "+token)
			}
			return nil
		},
	})
}

// TestCodecEndpoint: the codec server of the Temporal UI at /codec/, behind
// the API's authentication (decode: viewer, encode: operator, no project),
// with CORS for the UI's origin only, preflights answered before
// authentication.
func TestCodecEndpoint(t *testing.T) {
	keys := testKeyring(t)
	e := newEnv(t, nil, func(d *server.Deps) { d.PayloadKeys = keys })
	tok := e.roleTokens("")
	scoped := storetest.Token(t, e.store, "scoped-"+suffix(), ferry.RoleViewer, "proj")
	const ui = "http://ui.example:8233" // newEnv's TemporalUIURL

	plain, err := converter.GetDefaultDataConverter().ToPayload(map[string]string{"group": "shop"})
	require.NoError(t, err)
	sealed, err := codec.New(keys).Encode([]*commonpb.Payload{plain})
	require.NoError(t, err)

	// A viewer decodes; the result is the plain payload.
	opened, err := e.remote(tok.viewer).Decode(sealed)
	require.NoError(t, err)
	require.Equal(t, plain.Data, opened[0].Data)
	require.Equal(t, "json/plain", string(opened[0].Metadata["encoding"]))

	// Without a token: 401, and the UI's origin may read that answer.
	body := `{"payloads":[]}`
	r := e.do("POST", "/codec/decode", body, "Authorization", "", "Origin", ui)
	requireProblem(t, r, http.StatusUnauthorized, "")
	require.Equal(t, ui, r.header.Get("Access-Control-Allow-Origin"))
	require.True(t, strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer "))
	_, err = e.remote("").Decode(sealed)
	require.ErrorContains(t, err, "401")

	// Preflight from the UI: 204 with the headers the browser needs, no
	// token asked. From another origin it is an unauthenticated request.
	r = e.do("OPTIONS", "/codec/decode", "", "Authorization", "", "Origin", ui, "Access-Control-Request-Method", "POST")
	require.Equal(t, http.StatusNoContent, r.status, "body: %s", r.body)
	require.Equal(t, ui, r.header.Get("Access-Control-Allow-Origin"))
	require.Equal(t, "true", r.header.Get("Access-Control-Allow-Credentials"))
	require.Contains(t, r.header.Get("Access-Control-Allow-Headers"), "Authorization")
	r = e.do("OPTIONS", "/codec/decode", "", "Authorization", "", "Origin", "http://evil.example", "Access-Control-Request-Method", "POST")
	require.Equal(t, http.StatusUnauthorized, r.status)
	require.Empty(t, r.header.Get("Access-Control-Allow-Origin"))
	// Other routes get no CORS headers, even from the UI's origin.
	r = e.do("GET", "/v1/groups", "", "Authorization", bearer(tok.viewer), "Origin", ui)
	require.Equal(t, http.StatusOK, r.status)
	require.Empty(t, r.header.Get("Access-Control-Allow-Origin"))

	// Encoding is an operator's; its payloads open with the keyring.
	p := requireProblem(t, e.as(tok.viewer, "POST", "/codec/encode", body), http.StatusForbidden, "")
	require.Equal(t, "operator", p["role"])
	enc, err := e.remote(tok.operator).Encode([]*commonpb.Payload{plain})
	require.NoError(t, err)
	require.Equal(t, codec.Encoding, string(enc[0].Metadata[codec.MetadataEncoding]))
	back, err := codec.New(keys).Decode(enc)
	require.NoError(t, err)
	require.Equal(t, plain.Data, back[0].Data)

	// A project's token is refused: a payload does not say whose it is.
	p = requireProblem(t, e.as(scoped, "POST", "/codec/decode", body), http.StatusForbidden, "")
	require.Contains(t, p["detail"], "without a project")

	// A payload sealed with a key the server does not hold: 400 naming
	// the key id.
	other := codec.New(testKeyring(t))
	foreign, err := other.Encode([]*commonpb.Payload{plain})
	require.NoError(t, err)
	_, err = e.remote(tok.viewer).Decode(foreign)
	require.ErrorContains(t, err, "Bad Request")
	require.ErrorContains(t, err, `sealed with key "k1" does not open`)

	// Each call is in the audit log, with the token that made it.
	entries, _, err := e.store.ListAudit(context.Background(), ferry.AuditFilter{})
	require.NoError(t, err)
	var viewerDecodes int
	for _, a := range entries {
		if a.Path == "/codec/decode" && a.Role == ferry.RoleViewer && a.Status == http.StatusOK {
			viewerDecodes++
		}
	}
	require.Equal(t, 1, viewerDecodes, "%+v", entries)
}

// Without a keyring the endpoint says payloads are not encrypted here.
func TestCodecEndpointWithoutKeys(t *testing.T) {
	e := newEnv(t, nil)
	p := requireProblem(t, e.do("POST", "/codec/decode", `{"payloads":[]}`), http.StatusNotFound, "")
	require.Contains(t, p["detail"], "FERRY_PAYLOAD_KEYS_FILE")
}
