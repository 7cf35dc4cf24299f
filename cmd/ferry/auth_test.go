package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/cli"
	"github.com/ferrydr/ferry/config"
	"github.com/ferrydr/ferry/internal/devserver"
	"github.com/ferrydr/ferry/store"
	"github.com/ferrydr/ferry/store/storetest"
)

// TestTokenBootstrap runs `ferry token bootstrap` through the program's
// entry: the first admin token of an install goes straight into its
// database, once, as a hash.
func TestTokenBootstrap(t *testing.T) {
	dbURL := storetest.URL(t)
	t.Setenv("FERRY_DATABASE_URL", dbURL)
	ctx := context.Background()
	ferryRun := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(ctx, args, strings.NewReader(""), &out, &errb)
		return code, out.String(), errb.String()
	}
	code, out, errOut := ferryRun("token", "bootstrap", "--name", "root")
	require.Equal(t, 0, code, errOut)
	secret := strings.TrimSpace(out)
	require.True(t, strings.HasPrefix(secret, ferry.TokenPrefix), out)
	require.Contains(t, errOut, "export FERRY_TOKEN=")
	require.NotContains(t, errOut, secret, "the secret is printed once, on stdout")

	code, _, errOut = ferryRun("token", "bootstrap", "--name", "root2")
	require.Equal(t, cli.ExitError, code)
	require.Contains(t, errOut, "an active admin token exists")
	require.Contains(t, errOut, "--force")
	code, out, errOut = ferryRun("token", "bootstrap", "--name", "root2", "--force")
	require.Equal(t, 0, code, errOut)
	require.NotEqual(t, secret, strings.TrimSpace(out))

	st, err := store.Open(ctx, dbURL)
	require.NoError(t, err)
	defer st.Close()
	tok, err := st.TokenByHash(ctx, ferry.HashToken(secret))
	require.NoError(t, err)
	require.Equal(t, ferry.RoleAdmin, tok.Role)
	require.Equal(t, "bootstrap", tok.CreatedBy)
	var plain int
	require.NoError(t, st.Pool().QueryRow(ctx, `SELECT count(*) FROM auth_tokens t WHERE t::text LIKE '%' || $1 || '%'`,
		strings.TrimPrefix(secret, ferry.TokenPrefix)).Scan(&plain))
	require.Zero(t, plain, "no row holds the secret")

	// The dev token: made anew at each start, the last one revoked.
	first, err := devToken(ctx, st)
	require.NoError(t, err)
	second, err := devToken(ctx, st)
	require.NoError(t, err)
	a, err := st.TokenByHash(ctx, ferry.HashToken(first))
	require.NoError(t, err)
	require.NotNil(t, a.RevokedAt)
	b, err := st.TokenByHash(ctx, ferry.HashToken(second))
	require.NoError(t, err)
	require.True(t, b.Active(time.Now()))
	require.Equal(t, ferry.RoleAdmin, b.Role)
}

// pki is a throwaway certificate authority and the certificates it signs,
// written as PEM files.
type pki struct {
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caFile string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir()}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ferry test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	p.ca, err = x509.ParseCertificate(der)
	require.NoError(t, err)
	p.caKey = key
	p.caFile = p.write(t, "ca.pem", "CERTIFICATE", der)
	return p
}

func (p *pki) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
	return path
}

// issue signs a certificate for a server (dnsName, 127.0.0.1) or a client,
// and returns its certificate and key files.
func (p *pki) issue(t *testing.T, name, dnsName string, usage x509.ExtKeyUsage) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	if dnsName != "" {
		tmpl.DNSNames = []string{dnsName}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	return p.write(t, name+".pem", "CERTIFICATE", der), p.write(t, name+"-key.pem", "EC PRIVATE KEY", kder)
}

// selfSigned writes a self-signed server certificate for 127.0.0.1: its own
// CA.
func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "ferry api"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	p := &pki{dir: t.TempDir()}
	return p.write(t, "api.pem", "CERTIFICATE", der), p.write(t, "api-key.pem", "EC PRIVATE KEY", kder)
}

// TestAPIServesTLS serves the real API with a generated self-signed
// certificate: HTTPS answers, plain HTTP does not get in, and the CLI
// reaches it trusting the certificate through FERRY_API_CA.
func TestAPIServesTLS(t *testing.T) {
	certFile, keyFile := selfSigned(t)
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	cfg, err := config.LoadFrom(map[string]string{"FERRY_TLS_CERT": certFile, "FERRY_TLS_KEY": keyFile, "FERRY_HTTP_ADDR": addr})
	require.NoError(t, err)
	require.Equal(t, "https", apiScheme(cfg))
	st := storetest.New(t)
	admin := storetest.AdminToken(t, st)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveAPI(ctx, cfg, apiHandler(cfg, st, nil, nil, logger), logger) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})

	pem, err := os.ReadFile(certFile)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(pem))
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	var resp *http.Response
	require.Eventually(t, func() bool {
		resp, err = hc.Get("https://" + addr + "/healthz")
		return err == nil
	}, 10*time.Second, 50*time.Millisecond)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, uint16(tls.VersionTLS13), resp.TLS.Version)

	// Plain HTTP to the TLS port is not served.
	resp, err = (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/v1/sites")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "Go's TLS server answers plaintext with 400 and nothing else")

	// The CLI: trusting the certificate it works; without, it says why.
	var out, errb bytes.Buffer
	code := cli.Main(context.Background(), []string{"sites"}, strings.NewReader(""), &out, &errb,
		cli.Options{APIURL: "https://" + addr, Token: admin, CAFile: certFile})
	require.Equal(t, cli.ExitOK, code, errb.String())
	require.Contains(t, out.String(), "NAME")
	out.Reset()
	errb.Reset()
	code = cli.Main(context.Background(), []string{"sites"}, strings.NewReader(""), &out, &errb,
		cli.Options{APIURL: "https://" + addr, Token: admin})
	require.Equal(t, cli.ExitError, code)
	require.Contains(t, errb.String(), "certificate")
}

// tlsProxy terminates TLS (requiring a client certificate the CA signed)
// in front of target, as a TLS-enabled Temporal frontend would.
func tlsProxy(t *testing.T, p *pki, target string) string {
	t.Helper()
	certFile, keyFile := p.issue(t, "frontend", "temporal.test", x509.ExtKeyUsageServerAuth)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(p.ca)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert,
		NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS12,
	})
	require.NoError(t, err)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				if err := c.(*tls.Conn).Handshake(); err != nil {
					return
				}
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer up.Close()
				go func() { _, _ = io.Copy(up, c); _ = up.(*net.TCPConn).CloseWrite() }()
				_, _ = io.Copy(c, up)
			}()
		}
	}()
	return ln.Addr().String()
}

// TestTemporalClientMTLS dials a real Temporal dev server through a
// TLS-terminating frontend that requires a client certificate: with
// FERRY_TEMPORAL_TLS_* the client gets in; without a client certificate,
// or trusting another CA, it does not.
func TestTemporalClientMTLS(t *testing.T) {
	dev := devserver.Start(t)
	p := newPKI(t)
	addr := tlsProxy(t, p, dev.HostPort)
	certFile, keyFile := p.issue(t, "ferry-worker", "", x509.ExtKeyUsageClientAuth)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))

	dial := func(env map[string]string) error {
		env["FERRY_TEMPORAL_ADDRESS"] = addr
		cfg, err := config.LoadFrom(env)
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := dialTemporal(ctx, cfg, logger)
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.CheckHealth(ctx, &client.CheckHealthRequest{})
		return err
	}
	require.NoError(t, dial(map[string]string{
		"FERRY_TEMPORAL_TLS_CERT": certFile, "FERRY_TEMPORAL_TLS_KEY": keyFile,
		"FERRY_TEMPORAL_TLS_CA": p.caFile, "FERRY_TEMPORAL_TLS_SERVER_NAME": "temporal.test",
	}))
	// No client certificate: the frontend refuses the handshake.
	err := dial(map[string]string{"FERRY_TEMPORAL_TLS_CA": p.caFile, "FERRY_TEMPORAL_TLS_SERVER_NAME": "temporal.test"})
	require.Error(t, err)
	// The server's certificate is checked against the configured CA.
	other := newPKI(t)
	err = dial(map[string]string{
		"FERRY_TEMPORAL_TLS_CERT": certFile, "FERRY_TEMPORAL_TLS_KEY": keyFile,
		"FERRY_TEMPORAL_TLS_CA": other.caFile, "FERRY_TEMPORAL_TLS_SERVER_NAME": "temporal.test",
	})
	require.Error(t, err)
	require.True(t, errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "certificate"), "%v", err)
}

// systemInfoServer is a Temporal frontend's first call, GetSystemInfo,
// answered only to a caller with the right API key.
type systemInfoServer struct {
	workflowservice.UnimplementedWorkflowServiceServer
	key  string
	mu   sync.Mutex
	seen []string
}

func (s *systemInfoServer) GetSystemInfo(ctx context.Context, _ *workflowservice.GetSystemInfoRequest) (*workflowservice.GetSystemInfoResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	got := strings.Join(md.Get("authorization"), ",")
	s.mu.Lock()
	s.seen = append(s.seen, got)
	s.mu.Unlock()
	if got != "Bearer "+s.key {
		return nil, status.Error(codes.Unauthenticated, "bad API key")
	}
	return &workflowservice.GetSystemInfoResponse{}, nil
}

// TestTemporalClientAPIKey: with FERRY_TEMPORAL_API_KEY the client speaks
// TLS and sends the key as a bearer on its calls, as Temporal Cloud
// expects; a gRPC frontend over TLS checks what arrives.
func TestTemporalClientAPIKey(t *testing.T) {
	p := newPKI(t)
	certFile, keyFile := p.issue(t, "cloud", "temporal.test", x509.ExtKeyUsageServerAuth)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}})))
	fe := &systemInfoServer{key: "k-123"}
	workflowservice.RegisterWorkflowServiceServer(srv, fe)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))

	dial := func(key string) error {
		cfg, err := config.LoadFrom(map[string]string{
			"FERRY_TEMPORAL_ADDRESS": ln.Addr().String(), "FERRY_TEMPORAL_API_KEY": key,
			"FERRY_TEMPORAL_TLS_CA": p.caFile, "FERRY_TEMPORAL_TLS_SERVER_NAME": "temporal.test",
		})
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := dialTemporal(ctx, cfg, logger)
		if err == nil {
			c.Close()
		}
		return err
	}
	require.NoError(t, dial("k-123"))
	require.Error(t, dial("wrong"))
	fe.mu.Lock()
	defer fe.mu.Unlock()
	require.Contains(t, fe.seen, "Bearer k-123")
	require.Contains(t, fe.seen, "Bearer wrong")
}
