package testsuite

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/ferrydr/ferry/codec"
)

// needles are the byte strings that betray a secret: the secret itself
// and its base64 forms (standard and URL-safe) at each of the three byte
// alignments it may sit at inside something encoded (a []byte field in
// JSON is base64). Each secret is long enough that no needle is found by
// chance.
func needles(secret []byte) [][]byte {
	out := [][]byte{secret}
	for i := 0; i < 3 && len(secret)-i >= 18; i++ {
		whole := (len(secret) - i) / 3 * 4 // the characters that depend on the secret alone
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			out = append(out, []byte(enc.EncodeToString(secret[i:])[:whole]))
		}
	}
	return out
}

// leaks returns the names of the secrets blob holds, in any of their forms.
func leaks(secrets map[string][]byte, blob []byte) []string {
	var found []string
	for name, s := range secrets {
		for _, n := range needles(s) {
			if bytes.Contains(blob, n) {
				found = append(found, name)
				break
			}
		}
	}
	sort.Strings(found)
	return found
}

// lister lists a namespace's workflow executions and reads their
// histories: a Temporal client.
type lister interface {
	ListWorkflow(context.Context, *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error)
	WorkflowService() workflowservice.WorkflowServiceClient
}

// waitListed waits until the namespace's listing holds every run id of
// want: visibility is written after a run closes.
func waitListed(t *testing.T, ctx context.Context, tc lister, namespace string, want []string) {
	t.Helper()
	var missing []string
	require.Eventually(t, func() bool {
		seen := map[string]bool{}
		var token []byte
		for {
			page, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: namespace, PageSize: 500, NextPageToken: token})
			if err != nil {
				return false
			}
			for _, ex := range page.GetExecutions() {
				seen[ex.GetExecution().GetRunId()] = true
			}
			if token = page.GetNextPageToken(); len(token) == 0 {
				break
			}
		}
		missing = missing[:0]
		for _, id := range want {
			if !seen[id] {
				missing = append(missing, id)
			}
		}
		return len(missing) == 0
	}, 30*time.Second, 250*time.Millisecond, "runs not listed by Temporal: %v", missing)
}

// historyScan is what scanning every workflow history of a namespace saw.
type historyScan struct {
	executions, events int
	// payloads counts every payload in events, sealed those the codec
	// sealed; exempt are search attributes, which Temporal indexes and so
	// must read (no codec touches them), and the two headers Ferry's
	// interceptors write, which the SDK never passes by the codec: the
	// group's name (ferry-group) and the trace context (_tracer-data).
	payloads, sealed, exempt int
	// plain lists, by field path, payloads in the clear outside search
	// attributes.
	plain map[string]int
	// failures counts failures in events; encoded those whose message and
	// stack trace the failure converter moved into a sealed payload.
	failures, encoded int
	// canary counts events whose raw bytes hold the canary: a value that
	// only payloads carry.
	canary int
}

// scanHistories reads every workflow execution of the namespace (open and
// closed, children and monitors included) through tc, a client without
// the codec, so it sees the bytes Temporal stores: every event of every
// history and each execution's description. It fails the test for each
// secret found, naming the secret, the workflow and the event.
func scanHistories(t *testing.T, ctx context.Context, tc lister, namespace string, secrets map[string][]byte, canary []byte) historyScan {
	t.Helper()
	scan := historyScan{plain: map[string]int{}}
	var token []byte
	for {
		page, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: namespace, PageSize: 500, NextPageToken: token})
		require.NoError(t, err)
		for _, ex := range page.GetExecutions() {
			scan.executions++
			wf := ex.GetExecution()
			where := wf.GetWorkflowId() + "/" + wf.GetRunId()
			blob, err := proto.Marshal(ex)
			require.NoError(t, err)
			requireNoLeak(t, secrets, blob, "listing of "+where)
			desc, err := tc.WorkflowService().DescribeWorkflowExecution(ctx, &workflowservice.DescribeWorkflowExecutionRequest{Namespace: namespace, Execution: wf})
			require.NoError(t, err)
			blob, err = proto.Marshal(desc)
			require.NoError(t, err)
			requireNoLeak(t, secrets, blob, "description of "+where)

			var next []byte
			for {
				h, err := tc.WorkflowService().GetWorkflowExecutionHistory(ctx, &workflowservice.GetWorkflowExecutionHistoryRequest{
					Namespace: namespace, Execution: wf, NextPageToken: next, HistoryEventFilterType: enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT,
				})
				require.NoError(t, err)
				for _, ev := range h.GetHistory().GetEvents() {
					scan.events++
					blob, err := proto.Marshal(ev)
					require.NoError(t, err)
					requireNoLeak(t, secrets, blob, fmt.Sprintf("history of %s, event %d (%s)", where, ev.GetEventId(), ev.GetEventType()))
					if len(canary) > 0 && bytes.Contains(blob, canary) {
						scan.canary++
					}
					walk(ev.ProtoReflect(), "", func(path string, m protoreflect.Message) {
						switch m.Descriptor().FullName() {
						case "temporal.api.common.v1.Payload":
							scan.payloads++
							md := m.Get(m.Descriptor().Fields().ByName("metadata")).Map()
							enc := md.Get(protoreflect.ValueOfString("encoding").MapKey())
							switch {
							case enc.IsValid() && string(enc.Bytes()) == codec.Encoding:
								scan.sealed++
							case strings.Contains(path, "search_attributes"),
								// The group's name (as in FerryGroup) for the
								// activities' log lines, and trace ids: headers,
								// which the SDK does not run through the codec.
								strings.HasSuffix(path, "header.fields[ferry-group]"),
								strings.HasSuffix(path, "header.fields[_tracer-data]"):
								scan.exempt++
							default:
								scan.plain[ev.GetEventType().String()+path]++
							}
						case "temporal.api.failure.v1.Failure":
							scan.failures++
							if m.Get(m.Descriptor().Fields().ByName("message")).String() == "Encoded failure" {
								scan.encoded++
							}
						}
					})
				}
				if next = h.GetNextPageToken(); len(next) == 0 {
					break
				}
			}
		}
		if token = page.GetNextPageToken(); len(token) == 0 {
			return scan
		}
	}
}

func requireNoLeak(t *testing.T, secrets map[string][]byte, blob []byte, where string) {
	t.Helper()
	if found := leaks(secrets, blob); len(found) > 0 {
		t.Errorf("%s holds %s", where, strings.Join(found, ", "))
	}
}

// walk calls fn for m and every message inside it, with its field path.
func walk(m protoreflect.Message, path string, fn func(string, protoreflect.Message)) {
	fn(path, m)
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		p := path + "." + string(fd.Name())
		switch {
		case fd.IsMap():
			if fd.MapValue().Message() != nil {
				v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
					walk(mv.Message(), p+"["+k.String()+"]", fn)
					return true
				})
			}
		case fd.IsList():
			if fd.Message() != nil {
				for i := 0; i < v.List().Len(); i++ {
					walk(v.List().Get(i).Message(), p, fn)
				}
			}
		case fd.Message() != nil:
			walk(v.Message(), p, fn)
		}
		return true
	})
}

// scanLogs fails the test for each secret in a *.log file of dir, naming
// the file; it returns each file's size.
func scanLogs(t *testing.T, dir string, secrets map[string][]byte) map[string]int {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.log"))
	require.NoError(t, err)
	sizes := map[string]int{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		sizes[filepath.Base(p)] = len(b)
		requireNoLeak(t, secrets, b, "log "+filepath.Base(p))
	}
	return sizes
}

// scanDatabase fails the test for each secret in a row of the Ferry
// database, but for the inventory's groups: their hooks hold their URLs
// and commands by design (a hook's target is read from there when it
// runs), and there the scan must find them, which shows it reads what is
// stored. It returns the tables it read.
func scanDatabase(t *testing.T, ctx context.Context, dbURL string, secrets map[string][]byte, inGroups []string) []string {
	t.Helper()
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1`)
	require.NoError(t, err)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	for _, table := range tables {
		rows, err := conn.Query(ctx, "SELECT t::text FROM "+pgx.Identifier{table}.Sanitize()+" t")
		require.NoError(t, err)
		texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		all := []byte(strings.Join(texts, "\n"))
		if table == "protection_groups" {
			require.Equal(t, inGroups, leaks(secrets, all), "the groups' hooks hold their targets")
			continue
		}
		requireNoLeak(t, secrets, all, "table "+table)
	}
	return tables
}

// The scan's needles find a secret as it is and inside base64 at every
// alignment, and nothing else.
func TestNeedlesFindEncodedSecrets(t *testing.T) {
	secret := []byte("hookpathS3CRET0123456789abcdef")
	secrets := map[string][]byte{"s": secret}
	for pad := 0; pad < 3; pad++ {
		blob := append([]byte(strings.Repeat("x", pad)), secret...)
		blob = append(blob, "tail"...)
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			require.Equal(t, []string{"s"}, leaks(secrets, []byte(`{"data":"`+enc.EncodeToString(blob)+`"}`)), "pad %d", pad)
		}
		require.Equal(t, []string{"s"}, leaks(secrets, blob))
	}
	require.Empty(t, leaks(secrets, []byte(base64.StdEncoding.EncodeToString([]byte("hookpathS3CRET0123456789abcdeX")))))
	require.Empty(t, leaks(secrets, []byte("hookpathS3CRET0123456789abcde")))
}
