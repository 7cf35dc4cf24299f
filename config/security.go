package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/ferrydr/ferry/codec"
)

// checkSecurity refuses half a TLS configuration: a certificate without its
// key (or the reverse) would otherwise fall back to plaintext silently.
func (c Config) checkSecurity() error {
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("FERRY_TLS_CERT and FERRY_TLS_KEY go together: set both to serve the API over TLS, or neither")
	}
	if (c.TemporalTLSCert == "") != (c.TemporalTLSKey == "") {
		return errors.New("FERRY_TEMPORAL_TLS_CERT and FERRY_TEMPORAL_TLS_KEY go together: set both for mTLS, or neither")
	}
	return nil
}

// APITLS returns the API's server TLS configuration, nil when FERRY_TLS_CERT
// is not set.
func (c Config) APITLS() (*tls.Config, error) {
	if c.TLSCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("FERRY_TLS_CERT/FERRY_TLS_KEY: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// TemporalTLS returns the Temporal client's TLS configuration: nil when
// neither mTLS, a CA, a server name nor an API key is configured (plaintext,
// as to a local dev server).
func (c Config) TemporalTLS() (*tls.Config, error) {
	if c.TemporalTLSCert == "" && c.TemporalTLSCA == "" && c.TemporalTLSServerName == "" && c.TemporalAPIKey == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.TemporalTLSServerName}
	if c.TemporalTLSCert != "" {
		cert, err := tls.LoadX509KeyPair(c.TemporalTLSCert, c.TemporalTLSKey)
		if err != nil {
			return nil, fmt.Errorf("FERRY_TEMPORAL_TLS_CERT/FERRY_TEMPORAL_TLS_KEY: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if c.TemporalTLSCA != "" {
		pem, err := os.ReadFile(c.TemporalTLSCA)
		if err != nil {
			return nil, fmt.Errorf("FERRY_TEMPORAL_TLS_CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("FERRY_TEMPORAL_TLS_CA: %s holds no PEM certificate", c.TemporalTLSCA)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// PayloadKeys loads the payload keyring, nil when FERRY_PAYLOAD_KEYS_FILE
// is not set. Errors name the variable and the line, never a key.
func (c Config) PayloadKeys() (*codec.Keyring, error) {
	if c.PayloadKeysFile == "" {
		return nil, nil
	}
	k, err := codec.LoadKeyring(c.PayloadKeysFile)
	if err != nil {
		return nil, fmt.Errorf("FERRY_PAYLOAD_KEYS_FILE: %w", err)
	}
	return k, nil
}
