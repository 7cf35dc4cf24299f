package sim

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	ferry "github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/drivers"
)

// request is the body of every API call: one flat shape for all operations
// keeps the handler and the client to one generic path each.
type request struct {
	Key             string                   `json:"key,omitempty"`
	Backend         string                   `json:"backend,omitempty"`
	Resources       []string                 `json:"resources,omitempty"`
	Force           bool                     `json:"force,omitempty"`
	Member          string                   `json:"member,omitempty"`
	Status          string                   `json:"status,omitempty"`
	ActiveBackendID string                   `json:"active_backend_id,omitempty"`
	Epoch           int64                    `json:"epoch,omitempty"`
	Clones          []string                 `json:"clones,omitempty"`
	Site            string                   `json:"site,omitempty"`
	Servers         []string                 `json:"servers,omitempty"`
	Specs           []drivers.BootSpec       `json:"specs,omitempty"`
	Mappings        []drivers.NetworkMapping `json:"mappings,omitempty"`
	Name            string                   `json:"name,omitempty"`
	Type            string                   `json:"type,omitempty"`
	ID              string                   `json:"id,omitempty"`
	Record          drivers.Record           `json:"record,omitzero"`
	Network         string                   `json:"network,omitempty"`
	Check           drivers.CheckSpec        `json:"check,omitzero"`
	// Target is a second backend (replication lifecycle) or a replication
	// target id (host failover).
	Target string `json:"target,omitempty"`

	// Control calls.
	Resource    string           `json:"resource,omitempty"`
	N           int              `json:"n,omitempty"`
	Down        bool             `json:"down,omitempty"`
	SiteA       string           `json:"site_a,omitempty"`
	SiteB       string           `json:"site_b,omitempty"`
	Partitioned bool             `json:"partitioned,omitempty"`
	Lag         time.Duration    `json:"lag,omitempty"`
	Fault       Fault            `json:"fault,omitzero"`
	Inventory   *ferry.Inventory `json:"inventory,omitempty"`
}

type handlerFunc func(ctx context.Context, c *Cloud, q *request) (any, error)

func none(err error) (any, error) { return nil, err }

// ops maps each operation to the Cloud. Its name gives its route: the port
// operation "storage.promote" is POST /v1/storage/promote, the control call
// "sim.write" is POST /sim/write.
var ops = map[string]handlerFunc{
	"storage.capabilities": func(ctx context.Context, c *Cloud, q *request) (any, error) {
		return c.Capabilities(ctx, q.Backend)
	},
	"storage.backend_status": func(ctx context.Context, c *Cloud, q *request) (any, error) {
		return c.BackendStatus(ctx, q.Backend)
	},
	"storage.replication_status": func(ctx context.Context, c *Cloud, q *request) (any, error) {
		return c.ReplicationStatus(ctx, q.Resources)
	},
	"storage.snapshot_group": func(ctx context.Context, c *Cloud, q *request) (any, error) {
		return c.SnapshotGroup(ctx, q.Key, q.Backend, q.Resources)
	},
	"storage.sync": func(ctx context.Context, c *Cloud, q *request) (any, error) {
		return c.Sync(ctx, q.Key, q.Backend, q.Resources)
	},
	"storage.demote": func(ctx context.Context, c *Cloud, q *request) (any, error) {
		return none(c.Demote(ctx, q.Key, q.Backend, q.Resources))
	},
	"storage.promote": func(ctx context.Context, c *Cloud, q *request) (any, error) {
		return c.Promote(ctx, q.Key, q.Backend, q.Resources, q.Force)
	},
	"storage.failover_completed": func(ctx context.Context, c *Cloud, q *request) (any, error) {
		return none(c.FailoverCompleted(ctx, q.Key, q.Backend, q.Member, q.ActiveBackendID))
	},
	"storage.set_replication_status": func(ctx context.Context, c *Cloud, q *request) (any, error) {
		return none(c.SetReplicationStatus(ctx, q.Key, q.Backend, q.Status, q.ActiveBackendID))
	},
	"storage.freeze": func(ctx context.Context, c *Cloud, q *request) (any, error) {
		return none(c.Freeze(ctx, q.Key, q.Backend))
	},
	"storage.thaw": func(ctx context.Context, c *Cloud, q *request) (any, error) {
		return none(c.Thaw(ctx, q.Key, q.Backend))
	},
	"storage.fence": func(ctx context.Context, c *Cloud, q *request) (any, error) {
		return none(c.Fence(ctx, q.Key, q.Backend, q.Epoch))
	},
	"storage.unfence": func(ctx context.Context, c *Cloud, q *request) (any, error) {
		return none(c.Unfence(ctx, q.Key, q.Backend, q.Epoch))
	},
	"storage.resync": func(ctx context.Context, c *Cloud, q *request) (any, error) {
		return c.Resync(ctx, q.Key, q.Backend, q.Resources)
	},
	"storage.test_failover_start": func(ctx context.Context, c *Cloud, q *request) (any, error) {
		return c.TestFailoverStart(ctx, q.Key, q.Backend, q.Resources)
	},
	"storage.test_failover_stop": func(ctx context.Context, c *Cloud, q *request) (any, error) {
		return none(c.TestFailoverStop(ctx, q.Key, q.Backend, q.Clones))
	},
	"compute.quiesce": func(ctx context.Context, c *Cloud, q *request) (any, error) {
		return none(c.Quiesce(ctx, q.Key, q.Site, q.Servers))
	},
	"compute.unquiesce": func(ctx context.Context, c *Cloud, q *request) (any, error) {
		return none(c.Unquiesce(ctx, q.Key, q.Site, q.Servers))
	},
	"compute.stop": func(ctx context.Context, c *Cloud, q *request) (any, error) {
		return none(c.Stop(ctx, q.Key, q.Site, q.Servers))
	},
	"compute.start": func(ctx context.Context, c *Cloud, q *request) (any, error) {
		return none(c.Start(ctx, q.Key, q.Site, q.Servers))
	},
	"compute.boot": func(ctx context.Context, c *Cloud, q *request) (any, error) {
		return none(c.Boot(ctx, q.Key, q.Site, q.Specs))
	},
	"compute.health": func(ctx context.Context, c *Cloud, q *request) (any, error) {
		return c.Health(ctx, q.Site, q.Servers)
	},
	"network.map_networks": func(ctx context.Context, c *Cloud, q *request) (any, error) {
		return none(c.MapNetworks(ctx, q.Key, q.Site, q.Mappings))
	},
	"network.create_bubble": func(ctx context.Context, c *Cloud, q *request) (any, error) {
		return c.CreateBubble(ctx, q.Key, q.Site, q.Name)
	},
	"network.destroy_bubble": func(ctx context.Context, c *Cloud, q *request) (any, error) {
		return none(c.DestroyBubble(ctx, q.Key, q.Site, q.ID))
	},
	"dns.get": func(ctx context.Context, c *Cloud, q *request) (any, error) {
		return c.Get(ctx, q.Name, q.Type)
	},
	"dns.replace": func(ctx context.Context, c *Cloud, q *request) (any, error) {
		return none(c.Replace(ctx, q.Key, q.Record))
	},
	"verify.check": func(ctx context.Context, c *Cloud, q *request) (any, error) {
		return c.Check(ctx, q.Site, q.Network, q.Check)
	},

	"sim.write": func(_ context.Context, c *Cloud, q *request) (any, error) {
		return c.WriteAt(q.Resource, q.Site, q.N)
	},
	"sim.set_site_down": func(_ context.Context, c *Cloud, q *request) (any, error) {
		return none(c.SetSiteDown(q.Site, q.Down))
	},
	"sim.set_partition": func(_ context.Context, c *Cloud, q *request) (any, error) {
		return none(c.SetPartition(q.SiteA, q.SiteB, q.Partitioned))
	},
	"sim.set_lag": func(_ context.Context, c *Cloud, q *request) (any, error) {
		return none(c.SetLag(q.Backend, q.Lag))
	},
	"sim.inject_fault": func(_ context.Context, c *Cloud, q *request) (any, error) {
		return c.InjectFault(q.Fault), nil
	},
	"sim.clear_faults": func(_ context.Context, c *Cloud, _ *request) (any, error) {
		c.ClearFaults()
		return nil, nil
	},
	"sim.ledger": func(_ context.Context, c *Cloud, _ *request) (any, error) {
		return c.Ledger(), nil
	},
	"sim.state": func(_ context.Context, c *Cloud, _ *request) (any, error) {
		return c.State(), nil
	},
	"sim.resource_info": func(_ context.Context, c *Cloud, q *request) (any, error) {
		return c.ResourceInfo(q.Resource)
	},
	"sim.load_inventory": func(_ context.Context, c *Cloud, q *request) (any, error) {
		if q.Inventory == nil {
			return nil, perm("sim.load_inventory", "inventory is required")
		}
		return none(c.LoadInventory(*q.Inventory))
	},
}

func routePath(op string) string {
	port, name, _ := strings.Cut(op, ".")
	if port == "sim" {
		return "/sim/" + name
	}
	return "/v1/" + port + "/" + name
}

// errorBody is how the API carries a *drivers.Error across the wire.
type errorBody struct {
	Kind    string `json:"kind"`
	Op      string `json:"op"`
	Message string `json:"message"`
}

// SimulatorHeader marks every response, so nobody mistakes the simulator for
// a cloud.
const SimulatorHeader = "X-Ferry-Simulator"

const banner = `Ferry simulator: a SIMULATED multi-site cloud for demos and tests.
Nothing here is real: no volume, server, network or DNS record exists outside
this process. Driver ports are under /v1/{storage,compute,network,dns,verify}/,
control calls under /sim/ (GET /sim/state, GET /sim/ledger).
`

// NewHandler serves the Cloud as a JSON HTTP API: every operation is a POST
// of a JSON body to its route; errors are {"kind","op","message"} with 503
// (unreachable, retryable) or 409 (permanent; 422 for a body that is not
// JSON).
func NewHandler(c *Cloud) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, banner)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	for op, fn := range ops {
		mux.HandleFunc("POST "+routePath(op), func(w http.ResponseWriter, r *http.Request) {
			var q request
			if err := json.NewDecoder(r.Body).Decode(&q); err != nil && !errors.Is(err, io.EOF) {
				writeJSON(w, http.StatusUnprocessableEntity, errorBody{Kind: drivers.Permanent, Op: op, Message: "body: " + err.Error()})
				return
			}
			v, err := fn(r.Context(), c, &q)
			if err != nil {
				writeError(w, op, err)
				return
			}
			writeJSON(w, http.StatusOK, v)
		})
	}
	for _, op := range []string{"sim.state", "sim.ledger"} {
		fn := ops[op]
		mux.HandleFunc("GET "+routePath(op), func(w http.ResponseWriter, r *http.Request) {
			v, _ := fn(r.Context(), c, &request{})
			writeJSON(w, http.StatusOK, v)
		})
	}
	// The OpenStack-API facade (Nova, Neutron, Designate) per site, under
	// /openstack/<site>/ (facade.go).
	mountCloudFacade(mux, c)
	// Cinder's and Manila's facades per site, under the same prefix
	// (facade_storage.go).
	mountStorageFacades(mux, c)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(SimulatorHeader, "true")
		mux.ServeHTTP(w, r)
	})
}

func writeError(w http.ResponseWriter, op string, err error) {
	var de *drivers.Error
	body := errorBody{Kind: drivers.Retryable, Op: op, Message: err.Error()}
	if errors.As(err, &de) {
		body.Kind, body.Op = de.Kind, de.Op
		if de.Err != nil {
			body.Message = de.Err.Error()
		}
	}
	status := http.StatusServiceUnavailable
	if body.Kind == drivers.Permanent {
		status = http.StatusConflict
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
