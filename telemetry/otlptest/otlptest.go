// Package otlptest is an OTLP trace receiver for tests: a real HTTP
// (/v1/traces, protobuf) or gRPC endpoint, in process, that keeps the spans
// exporters send it, so tests point the standard OTEL_ variables at it and
// read back what a real collector would get.
package otlptest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// Span is one received span, flattened.
type Span struct {
	TraceID, SpanID, ParentSpanID string
	Name                          string
	// Service is the resource's service.name.
	Service string
	// Attributes are the span's own, values as text; Resource the
	// resource's.
	Attributes map[string]string
	Resource   map[string]string
}

// Receiver keeps what exporters sent.
type Receiver struct {
	// Endpoint is what OTEL_EXPORTER_OTLP_ENDPOINT should say: the HTTP
	// receiver's base URL, or the gRPC receiver's http://host:port.
	Endpoint string

	mu       sync.Mutex
	spans    []Span
	requests int
	raw      bytes.Buffer
}

// NewHTTP starts an OTLP/HTTP receiver, closed at the test's end.
func NewHTTP(tb testing.TB) *Receiver {
	rc := &Receiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
			http.Error(w, "only POST /v1/traces", http.StatusNotFound)
			return
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			gz, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = gz
		}
		b, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			http.Error(w, "not an ExportTraceServiceRequest: "+err.Error(), http.StatusBadRequest)
			return
		}
		rc.add(&req, b)
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	tb.Cleanup(srv.Close)
	rc.Endpoint = srv.URL
	return rc
}

// NewGRPC starts an OTLP/gRPC receiver (plain text), stopped at the test's
// end.
func NewGRPC(tb testing.TB) *Receiver {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("otlptest: listen: %v", err)
	}
	rc := &Receiver{Endpoint: "http://" + ln.Addr().String()}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, grpcService{rc: rc})
	go func() { _ = srv.Serve(ln) }()
	tb.Cleanup(srv.Stop)
	return rc
}

type grpcService struct {
	coltracepb.UnimplementedTraceServiceServer
	rc *Receiver
}

func (g grpcService) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	b, _ := proto.Marshal(req)
	g.rc.add(req, b)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func (rc *Receiver) add(req *coltracepb.ExportTraceServiceRequest, raw []byte) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.requests++
	rc.raw.Write(raw)
	for _, rs := range req.GetResourceSpans() {
		res := attrs(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				rc.spans = append(rc.spans, Span{
					TraceID:      hex.EncodeToString(s.GetTraceId()),
					SpanID:       hex.EncodeToString(s.GetSpanId()),
					ParentSpanID: hex.EncodeToString(s.GetParentSpanId()),
					Name:         s.GetName(),
					Service:      res["service.name"],
					Attributes:   attrs(s.GetAttributes()),
					Resource:     res,
				})
			}
		}
	}
}

func attrs(kvs []*commonpb.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		v := kv.GetValue()
		switch v.GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.GetKey()] = v.GetStringValue()
		case *commonpb.AnyValue_IntValue:
			m[kv.GetKey()] = fmt.Sprint(v.GetIntValue())
		case *commonpb.AnyValue_BoolValue:
			m[kv.GetKey()] = fmt.Sprint(v.GetBoolValue())
		case *commonpb.AnyValue_DoubleValue:
			m[kv.GetKey()] = fmt.Sprint(v.GetDoubleValue())
		default:
			m[kv.GetKey()] = v.String()
		}
	}
	return m
}

// Spans are the spans received so far.
func (rc *Receiver) Spans() []Span {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]Span(nil), rc.spans...)
}

// Requests counts the export requests received.
func (rc *Receiver) Requests() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.requests
}

// Raw is every request's protobuf bytes, one after another: for tests that
// look for a string (a secret) anywhere in what was exported.
func (rc *Receiver) Raw() []byte {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return bytes.Clone(rc.raw.Bytes())
}
