package event_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/smartcommunity/warden/edge/event"
)

const schemaPath = "testdata/event.schema.json"

func loadSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	s, err := c.Compile(schemaPath)
	if err != nil {
		t.Fatalf("compile %s: %v", schemaPath, err)
	}
	return s
}

// validateJSON checks raw JSON against the schema.
func validateJSON(s *jsonschema.Schema, raw []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	return s.Validate(inst)
}

func origin() event.Origin {
	return event.Origin{
		Gateway: "gw-east", Site: "xinjinglou",
		Source:   event.Source{Kind: "gas_detector", ID: "gas-3-2-201"},
		Location: event.Location{Building: "3", Unit: "2", Room: "201"},
		Time:     time.Date(2026, 11, 25, 18, 0, 0, 123456789, time.FixedZone("CST", 8*3600)),
	}
}

func marshal(t *testing.T, e *event.Event) []byte {
	t.Helper()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// constructed returns one event from every typed constructor, and one from
// New for every type that carries no required data.
func constructed() map[string]*event.Event {
	o := origin()
	lel := 12.5
	traj := []event.TrackPoint{{TMs: 0, X: 612, Y: 140}, {TMs: 40, X: 613, Y: 151.5}, {TMs: 80, X: 613, Y: 170}}
	out := map[string]*event.Event{
		"NewGasLeak(lel)":      event.NewGasLeak(o, &lel, ""),
		"NewGasLeak(nil)":      event.NewGasLeak(o, nil, event.Warning),
		"NewValveFault":        event.NewValveFault(o, "no position report after close"),
		"NewHeartRate":         event.NewHeartRate(o, 142, event.Critical),
		"NewGateVehicle":       event.NewGateVehicle(o, "京A12345", "in", "allowed"),
		"NewFace(recognized)":  event.NewFace(o, event.FaceRecognized, "p-0042", "Li Wei", 0.71, event.BBox{X: 10, Y: 20, W: 96, H: 112}),
		"NewFace(unknown)":     event.NewFace(o, event.FaceUnknown, "", "", 0.18, event.BBox{X: 0, Y: 0, W: 40, H: 48}),
		"NewFace(watchlist)":   event.NewFace(o, event.FaceWatchlist, "w-7", "Suspect", 0.83, event.BBox{X: 300, Y: 90, W: 80, H: 90}),
		"NewThrow":             event.NewThrow(o, 14, 612.5, traj, event.BBox{X: 600, Y: 130, W: 30, H: 50}),
		"NewThrow(empty traj)": event.NewThrow(o, 1, 0, nil, event.BBox{}),
	}
	// alarm.* as edge/alarm builds them.
	for _, typ := range []string{event.AlarmOpened, event.AlarmAcked, event.AlarmResolved, event.AlarmEscalated} {
		out["Make("+typ+")"], _ = event.Make(o, typ, "", map[string]any{
			"alarm_id": "01JD0Z3K9Q4N2T8V5W6X7Y8Z9A", "rev": 2, "key": "gas.leak/gas-3-2-201", "alarm_type": event.GasLeak,
			"state": "acknowledged", "severity": "critical", "title": "Gas leak 3-2-201", "count": 1,
			"escalation_level": 0, "first_event_id": "01JD0Z3K9Q4N2T8V5W6X7Y8Z9B", "opened_at": "2026-11-25T10:00:00.123Z",
			"actor": "guard-desk", "note": "checked, window open",
		})
	}
	needsData := map[string]bool{event.ValveFault: true, event.WristbandHR: true, event.GateVehicle: true,
		event.FaceRecognized: true, event.FaceUnknown: true, event.FaceWatchlist: true, event.ThrowDetected: true,
		event.AlarmOpened: true, event.AlarmAcked: true, event.AlarmResolved: true, event.AlarmEscalated: true}
	for _, typ := range event.Types() {
		if !needsData[typ] {
			out["New("+typ+")"] = event.New(o, typ, nil)
		}
	}
	return out
}

func TestConstructorsValidate(t *testing.T) {
	s := loadSchema(t)
	for name, e := range constructed() {
		t.Run(name, func(t *testing.T) {
			if err := e.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
			if e.Severity != event.DefaultSeverity(e.Type) && !strings.HasPrefix(name, "NewGasLeak(nil)") && name != "NewHeartRate" {
				t.Errorf("severity %s, want the default %s", e.Severity, event.DefaultSeverity(e.Type))
			}
			e.Seq = 1042
			e.Media = []event.Media{{Kind: "snapshot", URL: "/api/v1/media/01JD0Z3K9Q4N2T8V5W6X7Y8Z9A", SHA256: strings.Repeat("ab", 32)}}
			raw := marshal(t, e)
			if err := validateJSON(s, raw); err != nil {
				t.Errorf("schema rejects %s:\n%v", raw, err)
			}
		})
	}
}

func TestSchemaTypesMatchTypes(t *testing.T) {
	raw, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Properties struct {
			Type struct {
				Enum []string `json:"enum"`
			} `json:"type"`
			Severity struct {
				Enum []string `json:"enum"`
			} `json:"severity"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	got := slices.Clone(doc.Properties.Type.Enum)
	sort.Strings(got)
	if want := event.Types(); !slices.Equal(got, want) {
		t.Errorf("schema type enum drifted from event.Types():\nschema: %v\ncode:   %v", got, want)
	}
	for _, typ := range event.Types() {
		if !event.DefaultSeverity(typ).Valid() {
			t.Errorf("type %s has no valid default severity", typ)
		}
	}
	sev := doc.Properties.Severity.Enum
	if !slices.Equal(sev, []string{string(event.Info), string(event.Warning), string(event.Critical)}) {
		t.Errorf("schema severity enum = %v", sev)
	}
}

func TestDocsListEveryType(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "events.md")
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("%s: %v", path, err)
	}
	for _, typ := range event.Types() {
		re := regexp.MustCompile("`" + regexp.QuoteMeta(typ) + "`[^\n]*\\| `?" + string(event.DefaultSeverity(typ)))
		if !re.Match(doc) {
			t.Errorf("docs/events.md has no table row for `%s` with severity %s", typ, event.DefaultSeverity(typ))
		}
	}
}

// TestSchemaRejects shows the schema can fail: each mutation of a valid
// event must be rejected.
func TestSchemaRejects(t *testing.T) {
	s := loadSchema(t)
	lel := 3.0
	base := marshal(t, event.NewGasLeak(origin(), &lel, ""))
	var good map[string]any
	if err := json.Unmarshal(base, &good); err != nil {
		t.Fatal(err)
	}
	if err := validateJSON(s, base); err != nil {
		t.Fatalf("base event rejected: %v", err)
	}
	cases := map[string]func(m map[string]any){
		"unknown type":        func(m map[string]any) { m["type"] = "gas.smell" },
		"bad severity":        func(m map[string]any) { m["severity"] = "panic" },
		"id not a ULID":       func(m map[string]any) { m["id"] = "not-a-ulid" },
		"negative seq":        func(m map[string]any) { m["seq"] = -1 },
		"fractional seq":      func(m map[string]any) { m["seq"] = 1.5 },
		"time without ms":     func(m map[string]any) { m["time"] = "2026-11-25T10:00:00Z" },
		"time with offset":    func(m map[string]any) { m["time"] = "2026-11-25T18:00:00.123+08:00" },
		"impossible time":     func(m map[string]any) { m["time"] = "2026-13-45T10:00:00.000Z" },
		"data null":           func(m map[string]any) { m["data"] = nil },
		"media null":          func(m map[string]any) { m["media"] = nil },
		"missing location":    func(m map[string]any) { delete(m, "location") },
		"extra top-level key": func(m map[string]any) { m["colour"] = "red" },
		"empty source id":     func(m map[string]any) { m["source"] = map[string]any{"kind": "gas_detector", "id": ""} },
		"lel_percent string":  func(m map[string]any) { m["data"] = map[string]any{"lel_percent": "high"} },
		"bad media kind": func(m map[string]any) {
			m["media"] = []any{map[string]any{"kind": "gif", "url": "/x", "sha256": ""}}
		},
		"valve.fault without reason": func(m map[string]any) { m["type"] = "valve.fault"; m["data"] = map[string]any{} },
		"heart_rate without bpm":     func(m map[string]any) { m["type"] = "wristband.heart_rate"; m["data"] = map[string]any{} },
		"gate.vehicle without plate": func(m map[string]any) {
			m["type"] = "gate.vehicle"
			m["data"] = map[string]any{"direction": "in", "decision": "allowed"}
		},
		"face bbox of 3": func(m map[string]any) {
			m["type"] = "face.recognized"
			m["data"] = map[string]any{"person_id": "p", "name": "n", "score": 0.5, "bbox": []any{1, 2, 3}}
		},
		"alarm without alarm_id": func(m map[string]any) {
			m["type"] = "alarm.opened"
			m["data"] = map[string]any{"state": "open", "alarm_type": "gas.leak"}
		},
		"alarm with a bad state": func(m map[string]any) {
			m["type"] = "alarm.resolved"
			m["data"] = map[string]any{"alarm_id": "a1", "state": "closed", "alarm_type": "gas.leak"}
		},
		"throw without origin": func(m map[string]any) {
			m["type"] = "throw.detected"
			m["data"] = map[string]any{"trajectory": []any{}, "bbox": []any{1, 2, 3, 4}}
		},
		"throw floor not integer": func(m map[string]any) {
			m["type"] = "throw.detected"
			m["data"] = map[string]any{"origin": map[string]any{"floor": 2.5, "x": 1}, "trajectory": []any{}, "bbox": []any{1, 2, 3, 4}}
		},
		"throw trajectory point of 2": func(m map[string]any) {
			m["type"] = "throw.detected"
			m["data"] = map[string]any{"origin": map[string]any{"floor": 2, "x": 1}, "trajectory": []any{[]any{0, 1}}, "bbox": []any{1, 2, 3, 4}}
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			var m map[string]any
			_ = json.Unmarshal(base, &m)
			mutate(m)
			raw, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			if err := validateJSON(s, raw); err == nil {
				t.Errorf("schema accepts %s", raw)
			}
		})
	}
}

func TestValidateCatchesBadEvents(t *testing.T) {
	good := func() *event.Event { return event.New(origin(), event.WristbandSOS, nil) }
	if err := good().Validate(); err != nil {
		t.Fatalf("good event: %v", err)
	}
	cases := map[string]struct {
		mutate func(e *event.Event)
		want   string
	}{
		"bad id":         {func(e *event.Event) { e.ID = "01JD0Z3K9Q4N2T8V5W6X7Y8Z9" }, "ULID"},
		"empty id":       {func(e *event.Event) { e.ID = "" }, "ULID"},
		"zero time":      {func(e *event.Event) { e.Time = time.Time{} }, "time"},
		"unknown type":   {func(e *event.Event) { e.Type = "wristband.dance" }, "unknown type"},
		"bad severity":   {func(e *event.Event) { e.Severity = "urgent" }, "severity"},
		"no severity":    {func(e *event.Event) { e.Severity = "" }, "severity"},
		"no source id":   {func(e *event.Event) { e.Source.ID = "" }, "source"},
		"no source kind": {func(e *event.Event) { e.Source.Kind = "" }, "source"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			e := good()
			c.mutate(e)
			err := e.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Validate() = %v, want an error mentioning %q", err, c.want)
			}
		})
	}
	// Several problems are reported together.
	e := good()
	e.ID, e.Severity = "x", "y"
	if err := e.Validate(); err == nil || !strings.Contains(err.Error(), "ULID") || !strings.Contains(err.Error(), "severity") {
		t.Errorf("Validate() = %v, want both problems", err)
	}
}

func TestMakeAndNew(t *testing.T) {
	if _, err := event.Make(origin(), "gas.smell", "", nil); err == nil {
		t.Error("Make accepted an unknown type")
	}
	if _, err := event.Make(origin(), event.GasLeak, "loud", nil); err == nil {
		t.Error("Make accepted a bad severity")
	}
	e, err := event.Make(origin(), event.GasLeak, event.Warning, nil)
	if err != nil || e.Severity != event.Warning {
		t.Errorf("Make with severity: %v %v", e, err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("New did not panic on an unknown type")
			}
		}()
		event.New(origin(), "nope", nil)
	}()
	// A zero origin time means now.
	o := origin()
	o.Time = time.Time{}
	before := time.Now()
	e = event.New(o, event.GasCleared, nil)
	if e.Time.Before(before.Add(-time.Second)) || e.Time.After(time.Now().Add(time.Second)) || e.Time.Location() != time.UTC {
		t.Errorf("time %v is not now in UTC", e.Time)
	}
	if e.Group() != "gas" {
		t.Errorf("Group() = %q", e.Group())
	}
}

func TestJSONRoundTrip(t *testing.T) {
	for name, e := range constructed() {
		t.Run(name, func(t *testing.T) {
			e.Seq = 7
			e.Media = []event.Media{{Kind: "clip", URL: "/api/v1/media/x", SHA256: ""}}
			raw := marshal(t, e)
			var back event.Event
			if err := json.Unmarshal(raw, &back); err != nil {
				t.Fatalf("unmarshal %s: %v", raw, err)
			}
			if back.ID != e.ID || back.Seq != e.Seq || back.Type != e.Type || back.Severity != e.Severity ||
				back.Gateway != e.Gateway || back.Site != e.Site || back.Source != e.Source || back.Location != e.Location ||
				!slices.Equal(back.Media, e.Media) {
				t.Errorf("round trip changed the event:\n got %+v\nwant %+v", back, *e)
			}
			if !back.Time.Equal(e.Time.Truncate(time.Millisecond)) {
				t.Errorf("time %v, want %v to the millisecond", back.Time, e.Time)
			}
			// A second trip is byte-identical.
			if again := marshal(t, &back); !bytes.Equal(again, raw) {
				t.Errorf("second marshal differs:\n%s\n%s", raw, again)
			}
		})
	}
}

func TestTimeFormat(t *testing.T) {
	re := regexp.MustCompile(`"time":"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)"`)
	cases := map[time.Time]string{
		time.Date(2026, 11, 25, 18, 0, 0, 123456789, time.FixedZone("CST", 8*3600)): "2026-11-25T10:00:00.123Z",
		time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC):                                 "2026-01-02T03:04:05.000Z",
		time.Date(1970, 1, 1, 0, 0, 0, 999999, time.UTC):                            "1970-01-01T00:00:00.000Z",
		time.Date(2026, 12, 31, 23, 59, 59, 999999999, time.UTC):                    "2026-12-31T23:59:59.999Z",
	}
	for in, want := range cases {
		e := event.Event{Time: in}
		m := re.FindSubmatch(marshal(t, &e))
		if m == nil || string(m[1]) != want {
			t.Errorf("time %v marshals as %q, want %q", in, m, want)
		}
	}
}

func TestDataAndMediaNeverNull(t *testing.T) {
	for name, raw := range map[string][]byte{
		"zero Event":     marshal(t, &event.Event{}),
		"Make nil data":  marshal(t, event.New(origin(), event.CameraOffline, nil)),
		"value receiver": func() []byte { b, _ := json.Marshal(event.Event{}); return b }(),
	} {
		if !bytes.Contains(raw, []byte(`"data":{}`)) || !bytes.Contains(raw, []byte(`"media":[]`)) || bytes.Contains(raw, []byte("null")) {
			t.Errorf("%s: %s, want data {} and media [] and no null", name, raw)
		}
	}
}

func TestNewIDMonotonicWithinMillisecond(t *testing.T) {
	at := time.Date(2026, 11, 25, 10, 0, 0, 123000000, time.UTC)
	const n = 5000
	prev := ""
	for i := range n {
		id := event.NewID(at)
		if len(id) != 26 {
			t.Fatalf("id %q is not 26 characters", id)
		}
		if prev != "" && id <= prev {
			t.Fatalf("id %d %s is not after %s", i, id, prev)
		}
		if prev != "" && id[:10] != prev[:10] {
			t.Fatalf("timestamp part changed within one millisecond: %s %s", prev, id)
		}
		prev = id
	}
	// Later milliseconds sort after earlier ones.
	if later := event.NewID(at.Add(time.Millisecond)); later <= prev {
		t.Errorf("id of a later millisecond %s sorts before %s", later, prev)
	}
}

func TestNewIDUniqueAcrossGoroutines(t *testing.T) {
	at := time.Now()
	const workers, each = 8, 500
	ids := make(chan string, workers*each)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				ids <- event.NewID(at)
			}
		}()
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		if seen[id] {
			t.Fatalf("duplicate id %s", id)
		}
		seen[id] = true
	}
}

func TestSeverityAndLocation(t *testing.T) {
	if !(event.Info.Rank() < event.Warning.Rank() && event.Warning.Rank() < event.Critical.Rank()) {
		t.Error("severity ranks out of order")
	}
	if event.Severity("x").Valid() || event.Severity("x").Rank() != 0 {
		t.Error("unknown severity is valid")
	}
	for loc, want := range map[event.Location]string{
		{Building: "3", Unit: "2", Room: "201"}: "3-2-201",
		{Zone: "north-fence"}:                   "zone north-fence",
		{Building: "5", Zone: "stairwell"}:      "5 zone stairwell",
		{}:                                      "",
	} {
		if got := loc.String(); got != want {
			t.Errorf("%+v.String() = %q, want %q", loc, got, want)
		}
	}
}
