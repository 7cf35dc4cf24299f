package sim

// Designate's DNS API v2 on the simulator's model: zones and recordsets.
//
// Records are the Cloud's (one value per name and type, changed through
// Cloud.Replace). The model has no zones: the facade keeps them, one set
// for all sites (the simulator's DNS is one), and gives every record that
// no zone holds its parent domain as a zone ("shop.example.com" ->
// "example.com."), so the inventory's records are reachable at once. A
// recordset belongs to the zone with the longest matching name. Ids:
// FacadeID("zone", "example.com.") and FacadeID("recordset",
// "shop.example.com./A"). The facade completes every change at once:
// zones and recordsets are ACTIVE when the answer comes (Designate says
// PENDING first). SOA and NS recordsets are not shown.

import (
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/ferrydr/ferry/drivers"
)

type designateZone struct {
	id, name, email, description string
	ttl                          int
	created                      time.Time
}

const designateZoneTTL = 3600

// designateName is a record or zone name as Designate writes it: lower case, with
// the root's dot.
func designateName(n string) string { return normName(n) + "." }

func designateZoneID(name string) string { return FacadeID("zone", designateName(name)) }

func designateRecordsetID(name, typ string) string {
	return FacadeID("recordset", designateName(name)+"/"+strings.ToUpper(typ))
}

// designateStamp is Designate's time format.
func designateStamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000") }

func designateInZone(name, zone string) bool {
	return name == zone || strings.HasSuffix(name, "."+zone)
}

// zoneOf is the zone holding a name: the longest that matches.
func (f *cloudFacade) zoneOf(name string) *designateZone {
	var best *designateZone
	n := designateName(name)
	for _, z := range f.zones {
		if designateInZone(n, z.name) && (best == nil || len(z.name) > len(best.name)) {
			best = z
		}
	}
	return best
}

// readRecords reads the model's records as a GET does (faults of dns.get
// apply) and gives every record outside all zones its parent's zone.
func (f *cloudFacade) readRecords(x *cfReq) (map[recordKey]drivers.Record, bool) {
	recs, err := query(x.ctx(), f.c, call{op: "dns.get", targets: []string{x.site}}, func(time.Time) (map[recordKey]drivers.Record, error) {
		out := make(map[recordKey]drivers.Record, len(f.c.records))
		for k, r := range f.c.records {
			out[k] = r
		}
		return out, nil
	})
	if err != nil {
		x.fail(err)
		return nil, false
	}
	f.seedZones(recs)
	return recs, true
}

func (f *cloudFacade) seedZones(recs map[recordKey]drivers.Record) {
	keys := make([]recordKey, 0, len(recs))
	for k := range recs {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].name < keys[j].name })
	for _, k := range keys {
		if f.zoneOf(k.name) != nil {
			continue
		}
		parent := k.name
		if _, rest, ok := strings.Cut(k.name, "."); ok {
			parent = rest
		}
		z := &designateZone{id: designateZoneID(parent), name: designateName(parent), email: "hostmaster@" + normName(parent), ttl: designateZoneTTL, created: f.c.opts.Now().UTC()}
		f.zones[z.id] = z
	}
}

func (f *cloudFacade) routeDNS(mux *http.ServeMux) {
	const p = "/openstack/{site}/dns/v2"
	f.serviceRoot(mux, cfDesignate, "dns", func(x *cfReq) map[string]any {
		return cfVersions(map[string]any{"id": "v2.0", "status": "CURRENT", "links": cfLink(x.base() + "/v2/")})
	})
	f.handle(mux, cfDesignate, "GET "+p+"/zones", f.listZones)
	f.handle(mux, cfDesignate, "POST "+p+"/zones", f.createZone)
	f.handle(mux, cfDesignate, "GET "+p+"/zones/{zone}", f.showZone)
	f.handle(mux, cfDesignate, "DELETE "+p+"/zones/{zone}", f.deleteZone)
	f.handle(mux, cfDesignate, "GET "+p+"/zones/{zone}/recordsets", f.listRecordsets)
	f.handle(mux, cfDesignate, "POST "+p+"/zones/{zone}/recordsets", f.createRecordset)
	f.handle(mux, cfDesignate, "GET "+p+"/zones/{zone}/recordsets/{rs}", f.showRecordset)
	f.handle(mux, cfDesignate, "PUT "+p+"/zones/{zone}/recordsets/{rs}", f.updateRecordset)
	f.handle(mux, cfDesignate, "DELETE "+p+"/zones/{zone}/recordsets/{rs}", f.deleteRecordset)
	f.handle(mux, cfDesignate, "GET "+p+"/recordsets", f.listRecordsets)
}

func designateZoneView(x *cfReq, z *designateZone, status, action string) map[string]any {
	return map[string]any{
		"id": z.id, "name": z.name, "email": z.email, "ttl": z.ttl, "description": z.description,
		"serial": z.created.Unix(), "status": status, "action": action, "version": 1, "type": "PRIMARY",
		"masters": []string{}, "attributes": map[string]string{}, "pool_id": FacadeID("pool", "default"),
		"project_id": x.project, "created_at": designateStamp(z.created), "updated_at": nil, "transferred_at": nil,
		"links": map[string]string{"self": x.base() + "/v2/zones/" + z.id},
	}
}

func (f *cloudFacade) listZones(x *cfReq) {
	if _, ok := f.readRecords(x); !ok {
		return
	}
	want := x.r.URL.Query().Get("name")
	var zs []*designateZone
	for _, z := range f.zones {
		if want == "" || designateName(want) == z.name {
			zs = append(zs, z)
		}
	}
	sort.Slice(zs, func(i, j int) bool { return zs[i].name < zs[j].name })
	out := []map[string]any{}
	for _, z := range zs {
		out = append(out, designateZoneView(x, z, "ACTIVE", "NONE"))
	}
	x.json(http.StatusOK, map[string]any{"zones": out, "links": map[string]string{"self": x.base() + "/v2/zones"}, "metadata": map[string]int{"total_count": len(out)}})
}

func (f *cloudFacade) findZone(x *cfReq) (*designateZone, bool) {
	z, ok := f.zones[x.r.PathValue("zone")]
	if !ok {
		x.fault(http.StatusNotFound, "zone_not_found", "Could not find Zone")
		return nil, false
	}
	return z, true
}

func (f *cloudFacade) showZone(x *cfReq) {
	if _, ok := f.readRecords(x); !ok {
		return
	}
	if z, ok := f.findZone(x); ok {
		x.json(http.StatusOK, designateZoneView(x, z, "ACTIVE", "NONE"))
	}
}

func (f *cloudFacade) createZone(x *cfReq) {
	var body struct {
		Name        string `json:"name"`
		Email       string `json:"email"`
		TTL         int    `json:"ttl"`
		Description string `json:"description"`
	}
	if !x.decode(&body) {
		return
	}
	if _, ok := f.readRecords(x); !ok {
		return
	}
	if !strings.HasSuffix(body.Name, ".") || strings.Trim(body.Name, ".") == "" {
		x.fault(http.StatusBadRequest, "invalid_object", "Provided object does not match schema 'zone': '%s' is not a 'domainname'", body.Name)
		return
	}
	if body.Email == "" {
		x.fault(http.StatusBadRequest, "invalid_object", "Provided object does not match schema 'zone': 'email' is a required property")
		return
	}
	if _, exists := f.zones[designateZoneID(body.Name)]; exists {
		x.fault(http.StatusConflict, "duplicate_zone", "Duplicate Zone")
		return
	}
	ttl := body.TTL
	if ttl == 0 {
		ttl = designateZoneTTL
	}
	z := &designateZone{id: designateZoneID(body.Name), name: designateName(body.Name), email: body.Email, ttl: ttl, description: body.Description, created: x.now()}
	f.zones[z.id] = z
	x.json(http.StatusAccepted, designateZoneView(x, z, "ACTIVE", "NONE"))
}

// deleteZone deletes a zone and, as Designate, its recordsets: the
// model's records the zone holds.
func (f *cloudFacade) deleteZone(x *cfReq) {
	if _, ok := f.readRecords(x); !ok {
		return
	}
	z, ok := f.findZone(x)
	if !ok {
		return
	}
	const op = "dns.delete_zone"
	_, err := mutate(x.ctx(), f.c, call{op: op, target: z.name, targets: []string{z.name, x.site}}, func(time.Time) (struct{}, error) {
		for k := range f.c.records {
			if f.zoneOf(k.name) == z {
				delete(f.c.records, k)
			}
		}
		return struct{}{}, nil
	})
	if err != nil {
		x.fail(err)
		return
	}
	delete(f.zones, z.id)
	x.json(http.StatusAccepted, designateZoneView(x, z, "PENDING", "DELETE"))
}

func (f *cloudFacade) recordsetView(x *cfReq, r drivers.Record, status, action string) map[string]any {
	z := f.zoneOf(r.Name)
	id := designateRecordsetID(r.Name, r.Type)
	created, ok := f.rsCreated[id]
	if !ok {
		created = x.now()
		f.rsCreated[id] = created
	}
	return map[string]any{
		"id": id, "zone_id": z.id, "zone_name": z.name, "project_id": x.project,
		"name": designateName(r.Name), "type": strings.ToUpper(r.Type), "ttl": r.TTL, "records": []string{r.Value},
		"status": status, "action": action, "version": 1, "description": nil,
		"created_at": designateStamp(created), "updated_at": nil,
		"links": map[string]string{"self": x.base() + "/v2/zones/" + z.id + "/recordsets/" + id},
	}
}

// listRecordsets lists a zone's recordsets, or (GET /v2/recordsets) all
// of them; name, type and zone_id filter.
func (f *cloudFacade) listRecordsets(x *cfReq) {
	recs, ok := f.readRecords(x)
	if !ok {
		return
	}
	var zone *designateZone
	if x.r.PathValue("zone") != "" {
		if zone, ok = f.findZone(x); !ok {
			return
		}
	}
	q := x.r.URL.Query()
	var list []drivers.Record
	for k, r := range recs {
		z := f.zoneOf(k.name)
		if zone != nil && z != zone {
			continue
		}
		if v := q.Get("zone_id"); v != "" && z.id != v {
			continue
		}
		if v := q.Get("name"); v != "" && designateName(v) != designateName(k.name) {
			continue
		}
		if v := q.Get("type"); v != "" && !strings.EqualFold(v, k.typ) {
			continue
		}
		list = append(list, r)
	}
	sort.Slice(list, func(i, j int) bool {
		if normName(list[i].Name) != normName(list[j].Name) {
			return normName(list[i].Name) < normName(list[j].Name)
		}
		return list[i].Type < list[j].Type
	})
	out := []map[string]any{}
	for _, r := range list {
		out = append(out, f.recordsetView(x, r, "ACTIVE", "NONE"))
	}
	x.json(http.StatusOK, map[string]any{"recordsets": out, "links": map[string]string{"self": x.base() + x.r.URL.Path}, "metadata": map[string]int{"total_count": len(out)}})
}

// findRecordset finds a recordset of the zone in the URL; misses are 404.
func (f *cloudFacade) findRecordset(x *cfReq, recs map[recordKey]drivers.Record) (*designateZone, drivers.Record, bool) {
	z, ok := f.findZone(x)
	if !ok {
		return nil, drivers.Record{}, false
	}
	id := x.r.PathValue("rs")
	for k, r := range recs {
		if designateRecordsetID(k.name, k.typ) == id && f.zoneOf(k.name) == z {
			return z, r, true
		}
	}
	x.fault(http.StatusNotFound, "recordset_not_found", "Could not find RecordSet")
	return nil, drivers.Record{}, false
}

func (f *cloudFacade) showRecordset(x *cfReq) {
	recs, ok := f.readRecords(x)
	if !ok {
		return
	}
	if _, r, ok := f.findRecordset(x, recs); ok {
		x.json(http.StatusOK, f.recordsetView(x, r, "ACTIVE", "NONE"))
	}
}

// designateOneValue holds the model to its shape: one value per name and type.
func designateOneValue(x *cfReq, records []string) bool {
	if len(records) != 1 || records[0] == "" {
		x.fault(http.StatusBadRequest, "invalid_object", "the simulator holds exactly one value per record (got %d): a limit of the simulator's facade; Designate allows several", len(records))
		return false
	}
	return true
}

func (f *cloudFacade) createRecordset(x *cfReq) {
	var body struct {
		Name    string   `json:"name"`
		Type    string   `json:"type"`
		TTL     *int     `json:"ttl"`
		Records []string `json:"records"`
	}
	if !x.decode(&body) {
		return
	}
	recs, ok := f.readRecords(x)
	if !ok {
		return
	}
	z, ok := f.findZone(x)
	if !ok {
		return
	}
	if body.Name == "" || body.Type == "" {
		x.fault(http.StatusBadRequest, "invalid_object", "Provided object does not match schema 'recordset': 'name' and 'type' are required properties")
		return
	}
	if !designateInZone(designateName(body.Name), z.name) {
		x.fault(http.StatusBadRequest, "invalid_object", "RecordSet is not contained within its parent zone")
		return
	}
	if !designateOneValue(x, body.Records) {
		return
	}
	if _, exists := recs[recordKey{normName(body.Name), strings.ToUpper(body.Type)}]; exists {
		x.fault(http.StatusConflict, "duplicate_recordset", "Duplicate RecordSet")
		return
	}
	ttl := z.ttl
	if body.TTL != nil {
		ttl = *body.TTL
	}
	r := drivers.Record{Name: strings.TrimSuffix(body.Name, "."), Type: strings.ToUpper(body.Type), TTL: ttl, Value: body.Records[0]}
	if err := f.c.Replace(x.ctx(), "", r); err != nil {
		x.fail(err)
		return
	}
	f.rsCreated[designateRecordsetID(r.Name, r.Type)] = x.now()
	x.json(http.StatusAccepted, f.recordsetView(x, r, "ACTIVE", "NONE"))
}

// updateRecordset changes a recordset's records and TTL through
// Cloud.Replace; the record keeps the name the model gave it.
func (f *cloudFacade) updateRecordset(x *cfReq) {
	var body struct {
		TTL     *int      `json:"ttl"`
		Records *[]string `json:"records"`
	}
	if !x.decode(&body) {
		return
	}
	recs, ok := f.readRecords(x)
	if !ok {
		return
	}
	_, r, ok := f.findRecordset(x, recs)
	if !ok {
		return
	}
	if body.Records != nil {
		if !designateOneValue(x, *body.Records) {
			return
		}
		r.Value = (*body.Records)[0]
	}
	if body.TTL != nil {
		r.TTL = *body.TTL
	}
	if err := f.c.Replace(x.ctx(), "", r); err != nil {
		x.fail(err)
		return
	}
	x.json(http.StatusAccepted, f.recordsetView(x, r, "ACTIVE", "NONE"))
}

func (f *cloudFacade) deleteRecordset(x *cfReq) {
	recs, ok := f.readRecords(x)
	if !ok {
		return
	}
	_, r, ok := f.findRecordset(x, recs)
	if !ok {
		return
	}
	const op = "dns.delete"
	_, err := mutate(x.ctx(), f.c, call{op: op, target: r.Name, targets: []string{r.Name, x.site}}, func(time.Time) (struct{}, error) {
		delete(f.c.records, recordKey{normName(r.Name), strings.ToUpper(r.Type)})
		return struct{}{}, nil
	})
	if err != nil {
		x.fail(err)
		return
	}
	view := f.recordsetView(x, r, "PENDING", "DELETE")
	delete(f.rsCreated, designateRecordsetID(r.Name, r.Type))
	x.json(http.StatusAccepted, view)
}
