package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ferrydr/ferry/codec"
)

func TestPayloadKeys(t *testing.T) {
	c, err := LoadFrom(map[string]string{})
	require.NoError(t, err)
	k, err := c.PayloadKeys()
	require.NoError(t, err)
	require.Nil(t, k, "no keyring: payloads are not encrypted")

	dir := t.TempDir()
	line, err := codec.NewKey("k1")
	require.NoError(t, err)
	good := filepath.Join(dir, "keys")
	require.NoError(t, os.WriteFile(good, []byte(line+"\n"), 0o600))
	c, err = LoadFrom(map[string]string{"FERRY_PAYLOAD_KEYS_FILE": good})
	require.NoError(t, err)
	k, err = c.PayloadKeys()
	require.NoError(t, err)
	require.NotNil(t, k)

	// The path is no secret and shows; the key never does.
	var b strings.Builder
	c.Print(&b)
	require.Contains(t, b.String(), "FERRY_PAYLOAD_KEYS_FILE="+good+"\n")

	bad := filepath.Join(dir, "bad")
	_, key, _ := strings.Cut(line, ":")
	require.NoError(t, os.WriteFile(bad, []byte("k1 "+key+"\n"), 0o600))
	for _, path := range []string{bad, filepath.Join(dir, "missing")} {
		c, err = LoadFrom(map[string]string{"FERRY_PAYLOAD_KEYS_FILE": path})
		require.NoError(t, err)
		_, err = c.PayloadKeys()
		require.ErrorContains(t, err, "FERRY_PAYLOAD_KEYS_FILE")
		require.NotContains(t, err.Error(), key)
	}
}
