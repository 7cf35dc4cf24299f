package main

import (
	"go.temporal.io/sdk/client"

	"github.com/ferrydr/ferry/config"
)

// secureTemporal adds the configured TLS (mTLS client certificate, CA,
// server name), API key and payload encryption (FERRY_PAYLOAD_KEYS_FILE)
// to the Temporal client's options. Without any, the client speaks
// plaintext, as to a local dev server, and payloads are in the clear.
func secureTemporal(cfg config.Config, o *client.Options) error {
	tc, err := cfg.TemporalTLS()
	if err != nil {
		return err
	}
	o.ConnectionOptions.TLS = tc
	if cfg.TemporalAPIKey != "" {
		// Sent as "Authorization: Bearer <key>" on every call; it never
		// reaches a log (Config.Print masks it).
		o.Credentials = client.NewAPIKeyStaticCredentials(cfg.TemporalAPIKey)
	}
	// Every client Ferry builds goes through here, so with a keyring every
	// one of them (server, worker, dev) seals what it sends.
	keys, err := cfg.PayloadKeys()
	if err != nil {
		return err
	}
	sealPayloads(keys, o)
	return nil
}
