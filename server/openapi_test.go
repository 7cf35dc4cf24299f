package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/pb33f/libopenapi/datamodel"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"

	"github.com/ferrydr/ferry"
	"github.com/ferrydr/ferry/activities"
	"github.com/ferrydr/ferry/demo"
	"github.com/ferrydr/ferry/drivers/sim"
	"github.com/ferrydr/ferry/metrics"
	"github.com/ferrydr/ferry/server"
	"github.com/ferrydr/ferry/store/storetest"
	"github.com/ferrydr/ferry/worker"
	"github.com/ferrydr/ferry/workflows"
)

// docURL is the base the document's schemas are compiled under; $refs
// inside it ("#/components/schemas/Run") resolve against it.
const docURL = "https://ferry.invalid/openapi.json"

// openAPIDoc is server/openapi.json, parsed, with its schemas compiled on
// demand (JSON Schema 2020-12, formats asserted).
type openAPIDoc struct {
	raw      map[string]any
	compiler *jsonschema.Compiler
	schemas  map[string]*jsonschema.Schema
}

func loadOpenAPI(t *testing.T) *openAPIDoc {
	t.Helper()
	var raw map[string]any
	require.NoError(t, json.Unmarshal(server.OpenAPI(), &raw), "server/openapi.json is not JSON")
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(server.OpenAPI()))
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	require.NoError(t, c.AddResource(docURL, inst))
	return &openAPIDoc{raw: raw, compiler: c, schemas: map[string]*jsonschema.Schema{}}
}

// schema compiles the schema at a JSON pointer of the document.
func (d *openAPIDoc) schema(ptr string) (*jsonschema.Schema, error) {
	if s, ok := d.schemas[ptr]; ok {
		return s, nil
	}
	s, err := d.compiler.Compile(docURL + "#" + ptr)
	if err != nil {
		return nil, err
	}
	d.schemas[ptr] = s
	return s, nil
}

// at returns the value at a JSON pointer ("/paths/~1v1~1runs/get").
func (d *openAPIDoc) at(ptr string) (any, bool) {
	var v any = d.raw
	if ptr == "" {
		return v, true
	}
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[tok]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// deref follows a Reference Object ({"$ref": "#/..."}) to where it points,
// returning the pointer of the object it ends at.
func (d *openAPIDoc) deref(ptr string) (string, map[string]any, error) {
	for range 10 {
		v, ok := d.at(ptr)
		if !ok {
			return "", nil, fmt.Errorf("nothing at %s", ptr)
		}
		m, ok := v.(map[string]any)
		if !ok {
			return "", nil, fmt.Errorf("%s is not an object", ptr)
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return ptr, m, nil
		}
		if !strings.HasPrefix(ref, "#/") {
			return "", nil, fmt.Errorf("%s: $ref %q is not local", ptr, ref)
		}
		ptr = ref[1:]
	}
	return "", nil, fmt.Errorf("%s: $ref loop", ptr)
}

func escapePtr(s string) string { return strings.NewReplacer("~", "~0", "/", "~1").Replace(s) }

func opPtr(docPath, method string) string {
	return "/paths/" + escapePtr(docPath) + "/" + strings.ToLower(method)
}

func (d *openAPIDoc) paths() map[string]any { return d.raw["paths"].(map[string]any) }

var httpMethods = []string{"get", "put", "post", "delete", "patch", "head", "options", "trace"}

// operations lists the document's operations as "METHOD /path".
func (d *openAPIDoc) operations() []string {
	var out []string
	for p, item := range d.paths() {
		for _, m := range httpMethods {
			if _, ok := item.(map[string]any)[m]; ok {
				out = append(out, strings.ToUpper(m)+" "+p)
			}
		}
	}
	sort.Strings(out)
	return out
}

// nonAPIRoutes are the routes the document leaves out on purpose, as it
// lists them itself (x-ferry-non-api-routes).
func (d *openAPIDoc) nonAPIRoutes(t *testing.T) []string {
	t.Helper()
	ext, ok := d.raw["x-ferry-non-api-routes"].(map[string]any)
	require.True(t, ok, "server/openapi.json has no x-ferry-non-api-routes")
	var out []string
	for _, r := range ext["routes"].([]any) {
		out = append(out, r.(string))
	}
	return out
}

// chiParam matches one of chi's path parameters: {name} or {name:regexp}.
var chiParam = regexp.MustCompile(`\{([a-zA-Z_][a-zA-Z0-9_]*)(?::([^}]*))?\}`)

// docPathOf turns a chi pattern into the document's path, and returns the
// alternatives of each parameter chi restricts by a regexp of the form
// a|b|c (an enum in the document).
func docPathOf(pattern string) (string, map[string][]string) {
	enums := map[string][]string{}
	p := chiParam.ReplaceAllStringFunc(pattern, func(m string) string {
		sub := chiParam.FindStringSubmatch(m)
		if sub[2] != "" {
			enums[sub[1]] = strings.Split(sub[2], "|")
		}
		return "{" + sub[1] + "}"
	})
	return p, enums
}

// newRouter is the API's real router, for chi.Walk and for matching
// requests to their routes.
func newRouter(t *testing.T) chi.Routes {
	t.Helper()
	h := server.New(server.Deps{Store: storetest.New(t), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	routes, ok := h.(chi.Routes)
	require.True(t, ok, "server.New returns chi's router")
	return routes
}

// TestOpenAPIDocumentCoversEveryRoute walks chi's routes: each is in the
// document with the role routeRoles gives it (or is listed as a non-API
// route), and each documented operation is a route.
func TestOpenAPIDocumentCoversEveryRoute(t *testing.T) {
	d := loadOpenAPI(t)
	roles := server.RouteRoles()
	nonAPI := d.nonAPIRoutes(t)
	routed := map[string]bool{}
	var walked int
	require.NoError(t, chi.Walk(newRouter(t), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		walked++
		key := method + " " + route
		if slices.Contains(nonAPI, key) {
			routed[key] = true
			return nil
		}
		docPath, enums := docPathOf(route)
		routed[method+" "+docPath] = true
		ptr := opPtr(docPath, method)
		v, ok := d.at(ptr)
		if !ok {
			t.Errorf("route %s is not in server/openapi.json (add %s %s there, or list it in x-ferry-non-api-routes)", key, method, docPath)
			return nil
		}
		op := v.(map[string]any)
		checkOperationRole(t, d, key, op, roles[key])
		checkPathParams(t, d, key, docPath, method, enums)
		return nil
	}))
	require.Greater(t, walked, 25)
	for _, op := range d.operations() {
		if !routed[op] {
			t.Errorf("server/openapi.json documents %s, which is no route of server/routes.go", op)
		}
	}
	for _, r := range nonAPI {
		if !routed[r] {
			t.Errorf("x-ferry-non-api-routes lists %s, which is no route", r)
		}
		method, path, _ := strings.Cut(r, " ")
		if _, ok := d.at(opPtr(path, method)); ok {
			t.Errorf("%s is both documented and listed in x-ferry-non-api-routes", r)
		}
	}
}

// checkOperationRole: x-ferry-role is the route table's role, the security
// requirement matches (none for public routes, the bearer token for the
// rest), and the description says so.
func checkOperationRole(t *testing.T, d *openAPIDoc, key string, op map[string]any, role string) {
	t.Helper()
	if got := op["x-ferry-role"]; got != role {
		t.Errorf("%s: x-ferry-role is %v in server/openapi.json, but routeRoles (server/auth.go) says %q", key, got, role)
	}
	desc, _ := op["description"].(string)
	sec, hasSec := op["security"].([]any)
	if role == "public" {
		if !hasSec || len(sec) != 0 {
			t.Errorf("%s is public: its operation must say security: []", key)
		}
		if !strings.Contains(desc, "Public: no token needed.") {
			t.Errorf("%s is public: its description must say \"Public: no token needed.\"", key)
		}
		return
	}
	if hasSec {
		ok := false
		for _, s := range sec {
			if _, b := s.(map[string]any)["bearer"]; b {
				ok = true
			}
		}
		if !ok {
			t.Errorf("%s needs a token: its security must name the bearer scheme", key)
		}
	} else {
		global, _ := d.raw["security"].([]any)
		require.Len(t, global, 1, "the document's security is the bearer token")
		require.Contains(t, global[0], "bearer")
	}
	if want := "Needs the " + role + " role"; !strings.Contains(desc, want) {
		t.Errorf("%s: the description must say %q; it says %q", key, want, desc)
	}
	responses, _ := op["responses"].(map[string]any)
	if _, ok := responses["401"]; !ok {
		t.Errorf("%s needs a token: its responses must list 401", key)
	}
	if role != ferry.RoleViewer {
		if _, ok := responses["403"]; !ok {
			t.Errorf("%s needs the %s role: its responses must list 403", key, role)
		}
	}
}

// checkPathParams: every parameter of the path is a required path
// parameter of the operation, with chi's alternatives as its enum.
func checkPathParams(t *testing.T, d *openAPIDoc, key, docPath, method string, enums map[string][]string) {
	t.Helper()
	params := map[string]map[string]any{}
	for _, ptr := range []string{"/paths/" + escapePtr(docPath) + "/parameters", opPtr(docPath, method) + "/parameters"} {
		v, ok := d.at(ptr)
		if !ok {
			continue
		}
		for i := range v.([]any) {
			pp, p, err := d.deref(ptr + "/" + strconv.Itoa(i))
			require.NoError(t, err, key)
			if p["in"] == "path" {
				p["$ptr"] = pp
				params[p["name"].(string)] = p
			}
		}
	}
	names := map[string]bool{}
	for _, m := range chiParam.FindAllStringSubmatch(docPath, -1) {
		name := m[1]
		names[name] = true
		p, ok := params[name]
		if !ok {
			t.Errorf("%s: path parameter %q is not documented", key, name)
			continue
		}
		if p["required"] != true {
			t.Errorf("%s: path parameter %q must be required", key, name)
		}
		if alts, ok := enums[name]; ok {
			_, sch, err := d.deref(p["$ptr"].(string) + "/schema")
			require.NoError(t, err, key)
			var got []string
			for _, e := range asSlice(sch["enum"]) {
				got = append(got, fmt.Sprint(e))
			}
			if !slices.Equal(sorted(got), sorted(alts)) {
				t.Errorf("%s: parameter %q has the enum %v in server/openapi.json; chi's route takes %v", key, name, got, alts)
			}
		}
	}
	for name := range params {
		if !names[name] {
			t.Errorf("%s: documents path parameter %q, which the path does not have", key, name)
		}
	}
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

func sorted(s []string) []string {
	out := slices.Clone(s)
	sort.Strings(out)
	return out
}

// TestOpenAPIDocumentIsValidOpenAPI31 validates the document against the
// official OpenAPI 3.1 schema (2022-10-07, as libopenapi's datamodel embeds
// it), which checks its structure but not the schemas in it; then compiles
// every schema in it as JSON Schema 2020-12 (which validates each against
// the 2020-12 meta-schema) and resolves every $ref.
func TestOpenAPIDocumentIsValidOpenAPI31(t *testing.T) {
	oas, err := jsonschema.UnmarshalJSON(strings.NewReader(datamodel.OpenAPI31SchemaData))
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	require.NoError(t, c.AddResource("oas-3.1.json", oas))
	meta, err := c.Compile("oas-3.1.json")
	require.NoError(t, err)
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(server.OpenAPI()))
	require.NoError(t, err)
	if err := meta.Validate(inst); err != nil {
		t.Fatalf("server/openapi.json is not a valid OpenAPI 3.1 document:\n%v", err)
	}

	d := loadOpenAPI(t)
	require.Equal(t, "3.1.0", d.raw["openapi"])
	schemes, _ := d.at("/components/securitySchemes/bearer")
	require.Equal(t, map[string]any{"type": "http", "scheme": "bearer"},
		map[string]any{"type": schemes.(map[string]any)["type"], "scheme": schemes.(map[string]any)["scheme"]})

	// Every schema compiles; every $ref resolves; operation ids are unique.
	refs := map[string]bool{}
	opIDs := map[string]string{}
	var walk func(ptr string, v any)
	walk = func(ptr string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				p := ptr + "/" + escapePtr(k)
				switch {
				case k == "$ref":
					ref, _ := e.(string)
					if _, ok := d.at(strings.TrimPrefix(ref, "#")); !strings.HasPrefix(ref, "#/") || !ok {
						t.Errorf("%s: $ref %q resolves to nothing", ptr, ref)
					}
					refs[ref] = true
				case k == "schema":
					if _, err := d.schema(p); err != nil {
						t.Errorf("the schema at %s does not compile: %v", p, err)
					}
				case k == "operationId":
					if prev, dup := opIDs[e.(string)]; dup {
						t.Errorf("operationId %q is used by %s and %s", e, prev, ptr)
					}
					opIDs[e.(string)] = ptr
				}
				walk(p, e)
			}
		case []any:
			for i, e := range x {
				walk(ptr+"/"+strconv.Itoa(i), e)
			}
		}
	}
	walk("", d.raw)
	for name := range d.raw["components"].(map[string]any)["schemas"].(map[string]any) {
		ptr := "/components/schemas/" + escapePtr(name)
		if _, err := d.schema(ptr); err != nil {
			t.Errorf("components.schemas.%s does not compile as JSON Schema 2020-12: %v", name, err)
		}
		if !refs["#"+ptr] {
			t.Errorf("components.schemas.%s is used nowhere", name)
		}
	}
	for _, op := range d.operations() {
		method, path, _ := strings.Cut(op, " ")
		if v, _ := d.at(opPtr(path, method) + "/operationId"); v == nil {
			t.Errorf("%s has no operationId", op)
		}
	}
}

// TestOpenAPISchemasMatchGoTypes: each schema of a Go type the server
// reads or writes has exactly the type's JSON fields; a schema of an answer
// requires exactly the fields Go always writes.
func TestOpenAPISchemasMatchGoTypes(t *testing.T) {
	d := loadOpenAPI(t)
	cases := []struct {
		Schema   string
		Value    any
		Response bool
	}{
		{"Site", ferry.Site{}, false},
		{"StoredSite", ferry.Site{}, true},
		{"Backend", ferry.Backend{}, false},
		{"StoredBackend", ferry.Backend{}, true},
		{"ReplicationTarget", ferry.ReplicationTarget{}, false},
		{"Group", ferry.Group{}, false},
		{"StoredGroup", ferry.Group{}, true},
		{"Volume", ferry.Volume{}, false},
		{"Share", ferry.Share{}, false},
		{"Tier", ferry.Tier{}, false},
		{"Server", ferry.Server{}, false},
		{"NetworkMapping", ferry.NetworkMapping{}, false},
		{"DNSRecord", ferry.DNSRecord{}, false},
		{"Check", ferry.Check{}, false},
		{"ApprovalPolicy", ferry.ApprovalPolicy{}, false},
		{"Hook", ferry.Hook{}, false},
		{"ReplicationEvent", ferry.ReplicationEvent{}, true},
		{"Run", ferry.Run{}, true},
		{"Step", ferry.Step{}, true},
		{"Approval", ferry.Approval{}, true},
		{"Event", ferry.Event{}, true},
		{"ChildRun", ferry.ChildRun{}, true},
		{"CheckOutcome", ferry.CheckOutcome{}, true},
		{"Precondition", activities.Precondition{}, true},
		{"SteerRequest", workflows.SteerRequest{}, false},
		{"Token", ferry.Token{}, true},
		{"AuditEntry", ferry.AuditEntry{}, true},
		{"Report", server.Report{}, true},
		{"ReportObjectives", server.ReportObjectives{}, true},
		{"ReportObjective", server.ReportObjective{}, true},
		{"TimelineEntry", server.TimelineEntry{}, true},
		{"ReportApproval", server.ReportApproval{}, true},
		{"ReportPause", server.ReportPause{}, true},
		{"ReportEvent", server.ReportEvent{}, true},
		{"ReportCheck", server.ReportCheck{}, true},
	}
	for _, c := range server.OpenAPITypes {
		cases = append(cases, struct {
			Schema   string
			Value    any
			Response bool
		}{c.Schema, c.Value, c.Response})
	}
	for _, c := range cases {
		props, required := schemaFields(t, d, "/components/schemas/"+c.Schema)
		fields, always := jsonFields(reflect.TypeOf(c.Value))
		typ := reflect.TypeOf(c.Value).String()
		for _, f := range fields {
			if !slices.Contains(props, f) {
				t.Errorf("%s has the JSON field %q, which schema %s of server/openapi.json lacks", typ, f, c.Schema)
			}
		}
		for _, p := range props {
			if !slices.Contains(fields, p) {
				t.Errorf("schema %s of server/openapi.json has the property %q, which %s lacks", c.Schema, p, typ)
			}
		}
		if !c.Response {
			continue
		}
		for _, f := range always {
			if !slices.Contains(required, f) {
				t.Errorf("%s always writes %q (no omitempty): schema %s must require it", typ, f, c.Schema)
			}
		}
		for _, r := range required {
			if !slices.Contains(always, r) {
				t.Errorf("schema %s requires %q, which %s leaves out when empty (omitempty)", c.Schema, r, typ)
			}
		}
	}
}

// schemaFields collects a schema's properties and required names, through
// allOf and $ref.
func schemaFields(t *testing.T, d *openAPIDoc, ptr string) (props, required []string) {
	t.Helper()
	_, s, err := d.deref(ptr)
	require.NoError(t, err, ptr)
	ps, _ := s["properties"].(map[string]any)
	for k := range ps {
		props = append(props, k)
	}
	for _, r := range asSlice(s["required"]) {
		required = append(required, r.(string))
	}
	for i := range asSlice(s["allOf"]) {
		p, r := schemaFields(t, d, ptr+"/allOf/"+strconv.Itoa(i))
		props = append(props, p...)
		required = append(required, r...)
	}
	if _, ok := s["properties"]; !ok && len(asSlice(s["allOf"])) == 0 {
		t.Fatalf("%s has no properties", ptr)
	}
	slices.Sort(props)
	slices.Sort(required)
	return slices.Compact(props), slices.Compact(required)
}

// jsonFields lists the JSON names encoding/json writes for a struct type,
// and those it always writes (no omitempty).
func jsonFields(typ reflect.Type) (all, always []string) {
	for i := range typ.NumField() {
		f := typ.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			a, w := jsonFields(f.Type)
			all, always = append(all, a...), append(always, w...)
			continue
		}
		if name == "" {
			name = f.Name
		}
		all = append(all, name)
		if !strings.Contains(","+opts+",", ",omitempty,") {
			always = append(always, name)
		}
	}
	return all, always
}

// apiCheck drives the real API and checks every answer against the
// document: the route the router matches is documented, the status is
// listed for it, the content type is one it lists, and the body validates
// against its schema. A request answered 2xx has its body validated
// against the documented request body too.
type apiCheck struct {
	t      *testing.T
	doc    *openAPIDoc
	router chi.Routes
	// seen holds the statuses seen for each documented operation.
	seen map[string]map[int]bool
}

func newAPICheck(t *testing.T) *apiCheck {
	return &apiCheck{t: t, doc: loadOpenAPI(t), router: newRouter(t), seen: map[string]map[int]bool{}}
}

// call sends a request through e with token ("" for none) and checks the
// answer, which must have status want.
func (c *apiCheck) call(e *env, token, method, target, body string, want int, headers ...string) response {
	c.t.Helper()
	auth := ""
	if token != "" {
		auth = "Bearer " + token
	}
	r := e.do(method, target, body, append([]string{"Authorization", auth}, headers...)...)
	if r.status != want {
		c.t.Errorf("%s %s answered %d, want %d: %s", method, target, r.status, want, r.body)
	}
	c.check(method, target, body, r)
	return r
}

func (c *apiCheck) check(method, target, reqBody string, r response) {
	c.t.Helper()
	path, _, _ := strings.Cut(target, "?")
	rctx := chi.NewRouteContext()
	if !c.router.Match(rctx, method, path) {
		c.t.Errorf("%s %s matches no route", method, path)
		return
	}
	docPath, _ := docPathOf(rctx.RoutePattern())
	op := method + " " + docPath
	ptr := opPtr(docPath, method)
	if _, ok := c.doc.at(ptr); !ok {
		c.t.Errorf("%s %s: route %s is not in server/openapi.json", method, path, op)
		return
	}
	if c.seen[op] == nil {
		c.seen[op] = map[int]bool{}
	}
	c.seen[op][r.status] = true
	respPtr, resp, err := c.doc.deref(ptr + "/responses/" + strconv.Itoa(r.status))
	if err != nil {
		c.t.Errorf("%s answered %d, which server/openapi.json does not list for it (body: %s)", op, r.status, r.body)
		return
	}
	if _, query, ok := strings.Cut(target, "?"); ok {
		documented := c.queryParams(docPath, method)
		for _, kv := range strings.Split(query, "&") {
			name, _, _ := strings.Cut(kv, "=")
			if !slices.Contains(documented, name) {
				c.t.Errorf("%s: query parameter %q is not documented for it (it documents %v)", op, name, documented)
			}
		}
	}
	headers, _ := resp["headers"].(map[string]any)
	for name := range headers {
		v := r.header.Get(name)
		if v == "" {
			c.t.Errorf("%s %d: the document lists the header %s, which the answer lacks", op, r.status, name)
			continue
		}
		c.validate(fmt.Sprintf("%s %d header %s", op, r.status, name), respPtr+"/headers/"+escapePtr(name)+"/schema", "application/json", []byte(strconv.Quote(v)))
	}
	content, _ := resp["content"].(map[string]any)
	if len(content) == 0 {
		if len(r.body) != 0 {
			c.t.Errorf("%s %d: the document lists no body, the server sent %q", op, r.status, r.body)
		}
		return
	}
	mt, _, err := mime.ParseMediaType(r.header.Get("Content-Type"))
	if err != nil {
		c.t.Errorf("%s %d: Content-Type %q: %v", op, r.status, r.header.Get("Content-Type"), err)
		return
	}
	if _, ok := content[mt]; !ok {
		c.t.Errorf("%s %d answered %s, which server/openapi.json does not list (it lists %v)", op, r.status, mt, mapKeys(content))
		return
	}
	c.validate(fmt.Sprintf("%s %d %s", op, r.status, mt), respPtr+"/content/"+escapePtr(mt)+"/schema", mt, r.body)
	if r.status < 300 && reqBody != "" {
		if _, ok := c.doc.at(ptr + "/requestBody"); !ok {
			c.t.Errorf("%s took a body, but server/openapi.json documents none", op)
			return
		}
		rbPtr, _, err := c.doc.deref(ptr + "/requestBody")
		require.NoError(c.t, err)
		c.validate(op+" request body", rbPtr+"/content/application~1json/schema", "application/json", []byte(reqBody))
	}
}

// queryParams lists the query parameters documented for an operation.
func (c *apiCheck) queryParams(docPath, method string) []string {
	var out []string
	for _, ptr := range []string{"/paths/" + escapePtr(docPath) + "/parameters", opPtr(docPath, method) + "/parameters"} {
		v, _ := c.doc.at(ptr)
		for i := range asSlice(v) {
			_, p, err := c.doc.deref(ptr + "/" + strconv.Itoa(i))
			require.NoError(c.t, err)
			if p["in"] == "query" {
				out = append(out, p["name"].(string))
			}
		}
	}
	return out
}

// validate checks a JSON body against the schema at ptr; other bodies
// only need a string schema.
func (c *apiCheck) validate(what, ptr, mediaType string, body []byte) {
	c.t.Helper()
	if mediaType != "application/json" && mediaType != "application/problem+json" {
		_, s, err := c.doc.deref(ptr)
		if err != nil || s["type"] != "string" {
			c.t.Errorf("%s: a %s body needs a string schema at %s", what, mediaType, ptr)
		}
		return
	}
	sch, err := c.doc.schema(ptr)
	if err != nil {
		c.t.Errorf("%s: schema %s: %v", what, ptr, err)
		return
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		c.t.Errorf("%s: the body is not JSON: %v: %s", what, err, body)
		return
	}
	if err := sch.Validate(inst); err != nil {
		c.t.Errorf("%s: the body does not match server/openapi.json:\n%v\nbody: %s", what, err, body)
	}
}

func mapKeys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestOpenAPIIsPublic: the document is served without a token, as JSON,
// and is the embedded document.
func TestOpenAPIIsPublic(t *testing.T) {
	e := newEnv(t, nil)
	r := e.do("GET", "/v1/openapi.json", "", "Authorization", "")
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	require.Equal(t, server.OpenAPI(), r.body)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(r.body, &doc))
	require.Equal(t, "3.1.0", doc["openapi"])

	// A token that is not valid does not matter either.
	r = e.do("GET", "/v1/openapi.json", "", "Authorization", "Bearer fry_nope")
	require.Equal(t, http.StatusOK, r.status)
}

// TestOpenAPIMatchesRealAnswers drives the real API (PostgreSQL, Temporal,
// a worker on a simulated cloud) through every documented operation,
// error answers included, and checks each answer against the document.
func TestOpenAPIMatchesRealAnswers(t *testing.T) {
	tc := temporalClient(t)
	e := newEnv(t, tc)
	ctx := context.Background()
	inv := demo.Inventory()
	sfx := suffix()
	for i := range inv.Groups {
		inv.Groups[i].Name += "-" + sfx
	}
	require.NoError(t, e.store.ApplyInventory(ctx, inv))
	cloud := sim.NewCloud(sim.Options{BootTime: 20 * time.Millisecond})
	require.NoError(t, cloud.LoadInventory(inv))
	w := worker.New(tc, e.queue, &activities.Activities{Drivers: sim.NewInProcess(cloud).Set(), Store: e.store}, worker.Options{})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	crm, shop := "crm-"+sfx, "shop-"+sfx
	t.Cleanup(func() {
		_ = tc.ScheduleClient().GetHandle(ctx, workflows.DrillScheduleID(shop)).Delete(ctx)
	})

	c := newAPICheck(t)
	admin := e.token
	tok := e.roleTokens("")
	scoped := storetest.Token(t, e.store, "scoped-"+sfx, ferry.RoleViewer, "retail")

	// Probes, this document, the caller.
	c.call(e, "", "GET", "/healthz", "", 200)
	c.call(e, "", "GET", "/readyz", "", 200)
	c.call(e, "", "GET", "/v1/openapi.json", "", 200)
	c.call(e, admin, "GET", "/v1/whoami", "", 200)
	c.call(e, scoped, "GET", "/v1/whoami", "", 200)
	c.call(e, "", "GET", "/v1/whoami", "", 401)
	c.call(e, "fry_not-a-token", "GET", "/v1/whoami", "", 401)
	c.call(e, tok.viewer, "GET", "/metrics", "", 404) // this server serves no metrics

	// Sites.
	c.call(e, tok.viewer, "GET", "/v1/sites", "", 200)
	c.call(e, tok.viewer, "GET", "/v1/sites?limit=2", "", 200)
	c.call(e, tok.viewer, "GET", "/v1/sites?limit=0", "", 422)
	c.call(e, admin, "PUT", "/v1/sites/site-z", `{"name":"site-z","description":"third","labels":{"region":"eu"}}`, 201)
	c.call(e, admin, "PUT", "/v1/sites/site-z", `{"description":"third site"}`, 200)
	c.call(e, admin, "PUT", "/v1/sites/site-z", `{"name":"other"}`, 422)
	c.call(e, admin, "PUT", "/v1/sites/site-z", `{"name":`, 400)
	c.call(e, admin, "PUT", "/v1/sites/site-z", `{"description":"`+strings.Repeat("x", 1<<20)+`"}`, 413)
	c.call(e, tok.operator, "PUT", "/v1/sites/site-z", `{}`, 403)
	c.call(e, "", "PUT", "/v1/sites/site-z", `{}`, 401)
	c.call(e, tok.viewer, "GET", "/v1/sites/site-z", "", 200)
	c.call(e, tok.viewer, "GET", "/v1/sites/nope", "", 404)
	c.call(e, admin, "DELETE", "/v1/sites/site-a", "", 409)

	// Backends.
	c.call(e, tok.viewer, "GET", "/v1/backends", "", 200)
	c.call(e, tok.viewer, "GET", "/v1/backends?page_token=bogus", "", 422)
	c.call(e, admin, "PUT", "/v1/backends/z-block", `{"site":"site-z","type":"rbd","members":["h1","h2"]}`, 201)
	c.call(e, admin, "PUT", "/v1/backends/z-block", `{"site":"site-z","type":"rbd","replication_targets":[{"id":"site-a","backend":"a-block"}]}`, 200)
	c.call(e, admin, "PUT", "/v1/backends/z-block", `{"site":"site-z","type":"floppy"}`, 422)
	c.call(e, tok.viewer, "GET", "/v1/backends/a-block", "", 200)
	c.call(e, tok.viewer, "GET", "/v1/backends/nope", "", 404)
	c.call(e, admin, "DELETE", "/v1/backends/a-block", "", 409)
	c.call(e, admin, "DELETE", "/v1/backends/z-block", "", 204)
	c.call(e, admin, "DELETE", "/v1/backends/z-block", "", 404)
	c.call(e, admin, "DELETE", "/v1/sites/site-z", "", 204)
	c.call(e, tok.operator, "DELETE", "/v1/sites/site-z", "", 403)

	// Groups, with every part a group can have.
	full := ferry.Group{
		Name: "full-" + sfx, Project: "retail", PrimarySite: "site-a", DRSite: "site-b", RPOSeconds: 60,
		Consistency: ferry.ConsistencyApplication, QuiescePolicy: ferry.QuiesceContinue, Priority: 2,
		Volumes:         []ferry.Volume{{Name: "v1", Backend: "a-block", SizeGB: 10}},
		Shares:          []ferry.Share{{Name: "s1", Backend: "a-files", SizeGB: 5}},
		Tiers:           []ferry.Tier{{Name: "db", Servers: []ferry.Server{{Name: "db-1", Volumes: []string{"v1"}, Networks: []string{"prod-db"}}}}},
		NetworkMappings: []ferry.NetworkMapping{{Production: "prod-db", DR: "dr-db", Test: "test-db"}},
		DNSRecords:      []ferry.DNSRecord{{Name: "full.example.", Type: "A", TTL: 30, Primary: "10.0.0.1", DR: "10.1.0.1"}},
		Checks:          []ferry.Check{{Name: "home", Type: ferry.CheckHTTP, Target: "http://full.example/", Expect: "200"}},
		Approval:        ferry.ApprovalPolicy{Required: true, Unplanned: true},
		Hooks: []ferry.Hook{
			{Name: "notify", Point: ferry.HookAfterPromote, URL: "https://hooks.example/x", TimeoutSeconds: 10, OnFailure: ferry.HookContinue},
			{Name: "flush", Point: ferry.HookBeforeQuiesce, Command: []string{"/bin/true"}},
		},
	}
	c.call(e, tok.viewer, "GET", "/v1/groups", "", 200)
	c.call(e, tok.viewer, "GET", "/v1/groups?limit=1001", "", 422)
	c.call(e, admin, "PUT", "/v1/groups/"+full.Name, mustJSON(t, full), 201)
	c.call(e, admin, "PUT", "/v1/groups/"+full.Name, mustJSON(t, full), 200)
	c.call(e, admin, "PUT", "/v1/groups/"+full.Name, `{"primary_site":"site-a","dr_site":"site-a","rpo_seconds":60,"tiers":[]}`, 422)
	c.call(e, admin, "PUT", "/v1/groups/"+full.Name, `{"rpo_seconds":"soon"}`, 422)
	c.call(e, scoped, "GET", "/v1/groups", "", 200)
	c.call(e, tok.viewer, "GET", "/v1/groups/"+full.Name, "", 200)
	c.call(e, tok.viewer, "GET", "/v1/groups/nope", "", 404)
	c.call(e, tok.operator, "DELETE", "/v1/groups/"+full.Name, "", 403)
	c.call(e, admin, "DELETE", "/v1/groups/"+full.Name, "", 204)
	c.call(e, admin, "DELETE", "/v1/groups/"+full.Name, "", 404)

	// Replication, with observed replicas and a monitor's event.
	now := time.Now().UTC()
	require.NoError(t, e.store.PutReplicas(ctx, shop, []ferry.Replica{
		{Group: shop, Resource: "shop-db-data", Kind: "volume", Site: "site-b", Backend: "b-block", State: ferry.ReplicaInSync, Seq: 3, LagSecs: 2.5, Observed: now},
	}))
	require.NoError(t, e.store.AddEvents(ctx, []ferry.ReplicationEvent{
		{ID: "ev-" + sfx, Group: shop, Resource: "shop-db-data", Site: "site-b", Backend: "b-block",
			Severity: ferry.SeverityWarning, LagSeconds: 130, RPOSeconds: 60, Message: "lag past twice the RPO", At: now},
	}))
	c.call(e, tok.viewer, "GET", "/v1/groups/"+shop+"/replication", "", 200)
	c.call(e, tok.viewer, "GET", "/v1/groups/nope/replication", "", 404)

	// Drill schedules.
	c.call(e, tok.operator, "PUT", "/v1/groups/"+shop+"/drill-schedule", `{"cron":"0 3 * * 1","hold_seconds":60}`, 201)
	c.call(e, tok.operator, "PUT", "/v1/groups/"+shop+"/drill-schedule", `{"cron":"0 4 * * 1","paused":true}`, 200)
	c.call(e, tok.operator, "PUT", "/v1/groups/"+shop+"/drill-schedule", `{"cron":"every day"}`, 422)
	c.call(e, tok.operator, "PUT", "/v1/groups/nope/drill-schedule", `{"cron":"0 3 * * 1"}`, 404)
	c.call(e, tok.viewer, "PUT", "/v1/groups/"+shop+"/drill-schedule", `{"cron":"0 3 * * 1"}`, 403)
	c.call(e, tok.viewer, "GET", "/v1/schedules", "", 200)
	c.call(e, tok.operator, "DELETE", "/v1/groups/"+shop+"/drill-schedule", "", 204)
	c.call(e, tok.operator, "DELETE", "/v1/groups/nope/drill-schedule", "", 404)
	c.call(e, tok.viewer, "DELETE", "/v1/groups/"+shop+"/drill-schedule", "", 403)

	// Runs: a dry run, a failover that waits for approval, refusals.
	c.call(e, tok.operator, "POST", "/v1/runs", `{"kind":"failover","group":"`+shop+`","dry_run":true}`, 200)
	c.call(e, tok.operator, "POST", "/v1/runs", `{"kind":"evacuate","site":"site-a","dry_run":true}`, 403)
	c.call(e, tok.viewer, "POST", "/v1/runs", `{"kind":"failover","group":"`+crm+`"}`, 403)
	c.call(e, tok.operator, "POST", "/v1/runs", `{"kind":"teleport"}`, 422)
	c.call(e, tok.operator, "POST", "/v1/runs", `{"kind":"failover","group":"`+crm+`","options":{"quiesce_policy":"maybe"}}`, 422)
	c.call(e, tok.operator, "POST", "/v1/runs", `[]`, 400)
	r := c.call(e, tok.operator, "POST", "/v1/runs", `{"kind":"failover","group":"`+crm+`","mode":"planned","requested_by":"alice","options":{"quiesce_policy":"continue"}}`, 201)
	id, _ := r.json(t)["id"].(string)
	require.NotEmpty(t, id, "body: %s", r.body)
	c.call(e, tok.operator, "POST", "/v1/runs", `{"kind":"failover","group":"`+crm+`"}`, 409)
	c.call(e, admin, "DELETE", "/v1/groups/"+crm, "", 409)
	e.waitState(tok.viewer, id, ferry.RunWaitingApproval)
	c.call(e, tok.viewer, "GET", "/v1/runs/"+id, "", 200)
	c.call(e, tok.viewer, "GET", "/v1/runs/nope", "", 404)
	c.call(e, tok.viewer, "GET", "/v1/runs", "", 200)
	c.call(e, tok.viewer, "GET", "/v1/runs?group="+crm+"&kind=failover&state=waiting_approval&limit=5", "", 200)
	c.call(e, tok.viewer, "GET", "/v1/runs?state=sleeping", "", 422)
	c.call(e, tok.operator, "POST", "/v1/runs/"+id+"/pause", "", 409)
	c.call(e, tok.viewer, "POST", "/v1/runs/"+id+"/approve", "", 403)
	c.call(e, tok.operator, "POST", "/v1/runs/"+id+"/approve", `{"by":"bob","extra":1}`, 422)
	c.call(e, tok.operator, "POST", "/v1/runs/nope/approve", "", 404)
	c.call(e, tok.operator, "POST", "/v1/runs/"+id+"/approve", `{"by":"bob","comment":"change 4711"}`, 200)
	e.waitState(tok.viewer, id, ferry.RunCompleted)
	c.call(e, tok.viewer, "GET", "/v1/runs/"+id, "", 200)
	c.call(e, tok.operator, "POST", "/v1/runs/"+id+"/abort", "", 409)
	c.call(e, tok.viewer, "GET", "/v1/runs?group="+crm, "", 200)

	// The report in each format it has, by Accept and by ?format=.
	for _, f := range []struct{ query, accept, want string }{
		{"", "", "application/json"},
		{"", "text/markdown", "text/markdown"},
		{"", "text/html", "text/html"},
		{"?format=json", "text/html", "application/json"},
		{"?format=markdown", "", "text/markdown"},
		{"?format=html", "", "text/html"},
	} {
		r = c.call(e, tok.viewer, "GET", "/v1/runs/"+id+"/report"+f.query, "", 200, "Accept", f.accept)
		require.Contains(t, r.header.Get("Content-Type"), f.want, "report%s, Accept %q", f.query, f.accept)
	}
	c.call(e, tok.viewer, "GET", "/v1/runs/"+id+"/report?format=pdf", "", 400)
	c.call(e, tok.viewer, "GET", "/v1/runs/"+id+"/report", "", 406, "Accept", "image/png")
	c.call(e, tok.viewer, "GET", "/v1/runs/nope/report", "", 404)

	// Tokens and the audit log.
	r = c.call(e, admin, "POST", "/v1/tokens", `{"name":"ci-`+sfx+`","role":"operator","project":"retail","expires_in_seconds":3600}`, 201)
	require.Equal(t, "no-store", r.header.Get("Cache-Control"))
	tokID, _ := r.json(t)["id"].(string)
	c.call(e, admin, "POST", "/v1/tokens", `{"name":"ci-`+sfx+`","role":"operator"}`, 409)
	c.call(e, admin, "POST", "/v1/tokens", `{"name":"x","role":"king"}`, 422)
	c.call(e, tok.operator, "POST", "/v1/tokens", `{"name":"x","role":"viewer"}`, 403)
	c.call(e, admin, "GET", "/v1/tokens", "", 200)
	c.call(e, tok.operator, "GET", "/v1/tokens", "", 403)
	c.call(e, admin, "GET", "/v1/tokens/"+tokID, "", 200)
	c.call(e, admin, "GET", "/v1/tokens/tok_nope", "", 404)
	c.call(e, admin, "DELETE", "/v1/tokens/"+tokID, "", 200)
	c.call(e, admin, "DELETE", "/v1/tokens/tok_nope", "", 404)
	c.call(e, admin, "GET", "/v1/audit", "", 200)
	c.call(e, admin, "GET", "/v1/audit?since="+now.Add(-time.Hour).Format(time.RFC3339)+"&token=test-admin&limit=10", "", 200)
	c.call(e, admin, "GET", "/v1/audit?since=yesterday", "", 422)
	c.call(e, tok.operator, "GET", "/v1/audit", "", 403)

	// The codec: not served without payload keys, then with them.
	c.call(e, tok.viewer, "POST", "/codec/decode", `{"payloads":[]}`, 404)
	k := newEnv(t, nil, func(d *server.Deps) { d.PayloadKeys, d.Metrics = testKeyring(t), metrics.MustNew().Handler() })
	ktok := k.roleTokens("")
	kscoped := storetest.Token(t, k.store, "scoped-"+sfx, ferry.RoleViewer, "retail")
	plain := `{"payloads":[{"metadata":{"encoding":"anNvbi9wbGFpbg=="},"data":"InRlc3Qi"}]}`
	r = c.call(k, ktok.operator, "POST", "/codec/encode", plain, 200)
	c.call(k, ktok.viewer, "POST", "/codec/decode", string(r.body), 200)
	c.call(k, ktok.viewer, "POST", "/codec/encode", plain, 403)
	c.call(k, kscoped, "POST", "/codec/decode", string(r.body), 403)
	c.call(k, ktok.viewer, "POST", "/codec/decode", `not json`, 400)
	c.call(k, "", "POST", "/codec/decode", plain, 401)
	c.call(k, "", "GET", "/readyz", "", 503) // no Temporal here
	r = c.call(k, ktok.viewer, "GET", "/metrics", "", 200)
	require.Contains(t, string(r.body), "# TYPE ")
	c.call(k, "", "GET", "/metrics", "", 401)

	// Every documented operation was driven, and answered 2xx at least
	// once: unless said here, with the reason.
	no2xx := map[string]string{}
	for _, op := range c.doc.operations() {
		statuses := c.seen[op]
		if len(statuses) == 0 {
			t.Errorf("the scenario never called %s: add it to TestOpenAPIMatchesRealAnswers", op)
			continue
		}
		ok := false
		for s := range statuses {
			ok = ok || s < 300
		}
		if !ok && no2xx[op] == "" {
			t.Errorf("the scenario never saw %s succeed (it saw %v)", op, mapKeysInt(statuses))
		}
	}
}

func mapKeysInt(m map[int]bool) []int {
	var out []int
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}
