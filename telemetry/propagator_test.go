package telemetry

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/propagation"
)

// A caller's baggage is not carried on: it would be written into every
// workflow's and activity's headers in the history. Trace context is.
func TestPropagatorCarriesTraceContextOnly(t *testing.T) {
	require.ElementsMatch(t, []string{"traceparent", "tracestate"}, propagator.Fields())

	in := http.Header{}
	in.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	in.Set("baggage", "secret=hunter2")
	ctx := propagator.Extract(context.Background(), propagation.HeaderCarrier(in))
	out := propagation.MapCarrier{}
	propagator.Inject(ctx, out)
	require.Equal(t, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", out["traceparent"])
	require.NotContains(t, out, "baggage")
}
