package main

import (
	"fmt"
	"io"
	"strings"

	"go.temporal.io/sdk/client"

	"github.com/ferrydr/ferry/codec"
)

// sealPayloads makes a Temporal client (and the workers built on it) seal
// every payload it hands Temporal, and move failure messages and stack
// traces into sealed payloads, with the keyring; nil keys leave o as it
// is (payloads in the clear).
func sealPayloads(keys *codec.Keyring, o *client.Options) {
	if keys == nil {
		return
	}
	o.DataConverter = codec.DataConverter(keys)
	o.FailureConverter = codec.FailureConverter(keys)
}

// codecEndpoint is where the API serves the codec server the Temporal UI
// and `temporal workflow show --codec-endpoint` call.
func codecEndpoint(apiURL string) string { return strings.TrimSuffix(apiURL, "/") + "/codec" }

const payloadKeyUsage = `usage: ferry payload-key new ID

Prints a new line for a payload keyring file (FERRY_PAYLOAD_KEYS_FILE):
ID, a colon and 32 random bytes in base64. The first line of the file is
the key that encrypts; every line decrypts. See docs/security.md.
`

// runPayloadKey is `ferry payload-key new ID`. It needs no configuration,
// so it runs before the configuration is read.
func runPayloadKey(args []string, stdout, stderr io.Writer) int {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprint(stdout, payloadKeyUsage)
		return 0
	}
	if len(args) != 2 || args[0] != "new" {
		fmt.Fprint(stderr, payloadKeyUsage)
		return 2
	}
	line, err := codec.NewKey(args[1])
	if err != nil {
		fmt.Fprintln(stderr, "ferry payload-key:", err)
		return 2
	}
	fmt.Fprintln(stdout, line)
	return 0
}
