// Package codec encrypts Temporal payloads: every workflow and activity
// input and result Ferry hands to Temporal is sealed with AES-256-GCM
// before it leaves the process, so the Temporal server, its database and
// its backups hold ciphertext only. The Temporal UI shows the payloads
// through the codec server endpoint (Handler), which decrypts for a
// browser the operator trusts.
//
// Keys live in a keyring file, one "id:base64-32-byte-key" a line; the
// first key encrypts, every key decrypts, so a key is rotated by adding a
// new first line and dropping the old one once no history needs it.
package codec

import (
	"bufio"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
)

// Metadata keys and the encoding of a sealed payload.
const (
	MetadataEncoding = "encoding"
	MetadataKeyID    = "encryption-key-id"
	Encoding         = "binary/encrypted"
)

// Keyring is the keys a codec knows, the first the one that encrypts.
type Keyring struct {
	current string
	aeads   map[string]cipher.AEAD
	order   []string
}

// NewKeyring builds a keyring from ids and raw 32-byte keys, in order.
func NewKeyring(ids []string, keys [][]byte) (*Keyring, error) {
	if len(ids) == 0 || len(ids) != len(keys) {
		return nil, fmt.Errorf("keyring: want at least one key, with an id each")
	}
	k := &Keyring{aeads: map[string]cipher.AEAD{}}
	for i, id := range ids {
		if err := checkID(id); err != nil {
			return nil, fmt.Errorf("keyring: key %d: %w", i+1, err)
		}
		if _, dup := k.aeads[id]; dup {
			return nil, fmt.Errorf("keyring: key id %q twice", id)
		}
		if len(keys[i]) != 32 {
			return nil, fmt.Errorf("keyring: key %q is %d bytes, want 32 (AES-256)", id, len(keys[i]))
		}
		block, err := aes.NewCipher(keys[i])
		if err != nil {
			return nil, fmt.Errorf("keyring: key %q: %w", id, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("keyring: key %q: %w", id, err)
		}
		k.aeads[id] = aead
		k.order = append(k.order, id)
	}
	k.current = ids[0]
	return k, nil
}

// LoadKeyring reads a keyring file: "id:base64key" lines, # comments.
// The error names the line, never the key.
func LoadKeyring(path string) (*Keyring, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	defer f.Close()
	var ids []string
	var keys [][]byte
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, b64, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("keyring %s line %d: want id:base64key", path, n)
		}
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
		if err != nil {
			return nil, fmt.Errorf("keyring %s line %d: the key is not base64", path, n)
		}
		ids, keys = append(ids, strings.TrimSpace(id)), append(keys, key)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("keyring %s: %w", path, err)
	}
	return NewKeyring(ids, keys)
}

// checkID refuses a key id the keyring file could not hold: it ends at
// the first colon, and the id travels in each sealed payload's metadata.
func checkID(id string) error {
	if id == "" || strings.ContainsAny(id, ": \t\r\n") || len(id) > 64 {
		return fmt.Errorf("key id %q must be a word of at most 64 characters, without colon or space", id)
	}
	return nil
}

// NewKey returns a fresh random key line for a keyring file.
func NewKey(id string) (string, error) {
	if err := checkID(id); err != nil {
		return "", err
	}
	key := make([]byte, 32)
	if _, err := io.ReadFull(rand.Reader, key); err != nil {
		return "", err
	}
	return id + ":" + base64.StdEncoding.EncodeToString(key), nil
}

// Codec is the payload codec over a keyring.
type Codec struct{ keys *Keyring }

var _ converter.PayloadCodec = (*Codec)(nil)

// New returns a codec that seals with the keyring's first key.
func New(keys *Keyring) *Codec { return &Codec{keys: keys} }

// Encode seals each payload whole (its metadata and data, so the encoding
// of what is inside does not show either).
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	aead := c.keys.aeads[c.keys.current]
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := p.Marshal()
		if err != nil {
			return nil, fmt.Errorf("codec: marshal payload: %w", err)
		}
		nonce := make([]byte, aead.NonceSize())
		if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
			return nil, fmt.Errorf("codec: nonce: %w", err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				MetadataEncoding: []byte(Encoding),
				MetadataKeyID:    []byte(c.keys.current),
			},
			// The key id is authenticated too: a payload cannot be
			// relabelled to another key.
			Data: aead.Seal(nonce, nonce, plain, []byte(c.keys.current)),
		}
	}
	return out, nil
}

// Decode opens sealed payloads and passes others through unchanged (the
// histories written before encryption was turned on).
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.Metadata[MetadataEncoding]) != Encoding {
			out[i] = p
			continue
		}
		id := string(p.Metadata[MetadataKeyID])
		aead, ok := c.keys.aeads[id]
		if !ok {
			return nil, fmt.Errorf("codec: payload sealed with key %q, which the keyring does not hold", id)
		}
		if len(p.Data) < aead.NonceSize() {
			return nil, fmt.Errorf("codec: sealed payload too short")
		}
		nonce, sealed := p.Data[:aead.NonceSize()], p.Data[aead.NonceSize():]
		plain, err := aead.Open(nil, nonce, sealed, []byte(id))
		if err != nil {
			return nil, fmt.Errorf("codec: payload sealed with key %q does not open (tampered, or a different key of that id)", id)
		}
		var inner commonpb.Payload
		if err := inner.Unmarshal(plain); err != nil {
			return nil, fmt.Errorf("codec: unmarshal payload: %w", err)
		}
		out[i] = &inner
	}
	return out, nil
}

// DataConverter is Temporal's default converter with payloads sealed.
func DataConverter(keys *Keyring) converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), New(keys))
}

// FailureConverter is Temporal's failure converter with error messages and
// stack traces moved into a sealed payload (EncodeCommonAttributes): a
// failure's message is often the most telling thing in a history ("promote
// of b-volume-1 on backend ..."). Histories then show "Encoded failure"
// until decoded through the codec.
func FailureConverter(keys *Keyring) converter.FailureConverter {
	return temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter:          DataConverter(keys),
		EncodeCommonAttributes: true,
	})
}

// maxBody bounds a codec request: Temporal caps a payload at 2 MiB, and the
// UI sends one event's payloads at a time.
const maxBody = 8 << 20

// Handler is the codec server the Temporal UI calls (POST /encode and
// /decode, relative to where it is mounted) to show payloads. uiOrigin is
// the UI's origin (e.g. http://127.0.0.1:8233), allowed by CORS so the
// browser may call it; an empty origin allows none. Whoever reaches it can
// read every payload: serve it behind the API's authentication (the API
// serves it at /codec/, CORS first, then authentication, then this).
func Handler(keys *Keyring, uiOrigin string) http.Handler {
	inner := converter.NewPayloadCodecHTTPHandler(New(keys))
	return CORS(uiOrigin, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		}
		inner.ServeHTTP(w, r)
	}))
}

// CORS lets the browser of uiOrigin call next: the answers to that origin
// carry the Access-Control headers (errors too, so the UI can show a 401
// rather than a network error), and its preflight is answered here, 204,
// without reaching next. A browser sends no credentials with a preflight,
// so it must be answered before authentication. Other origins get no
// CORS headers: their browsers refuse the answer.
func CORS(uiOrigin string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fromUI := uiOrigin != "" && r.Header.Get("Origin") == uiOrigin
		if fromUI {
			w.Header().Set("Access-Control-Allow-Origin", uiOrigin)
			w.Header().Set("Access-Control-Allow-Credentials", "true")
			w.Header().Set("Access-Control-Allow-Headers", "Content-Type,X-Namespace,Authorization")
			w.Header().Set("Access-Control-Allow-Methods", "POST,OPTIONS")
			w.Header().Set("Access-Control-Max-Age", "600")
		}
		if uiOrigin != "" {
			w.Header().Add("Vary", "Origin")
		}
		if r.Method == http.MethodOptions && fromUI {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Origin is the origin (scheme://host[:port]) of a URL such as
// FERRY_TEMPORAL_UI_URL, the value a browser sends in Origin; empty when
// the URL has none.
func Origin(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host)
}
