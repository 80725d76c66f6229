// Package kittest runs driver fixtures and fuzz targets the same way for
// every driver folder.
//
// A fixture file is JSONL. A line with "device" builds a fresh device from
// that config entry (later lines go to it, so state carries across lines and
// transitions can be tested); every other line is one message:
//
//	{"device": {"id":"gas-1","kind":"gas_detector","driver":"zigbee2mqtt","topic":"zigbee2mqtt/gas-1","valve":"valve-1"}}
//	{"name":"leak","source":"https://…","topic":"zigbee2mqtt/gas-1","payload":{"gas":true},
//	 "want":[{"type":"gas.leak","severity":"critical","data":{"valves":["valve-1"],"sirens":[]}}]}
//	{"name":"junk","payload":"not json","err":"bad payload"}
//
// "topic" defaults to the device's first topic. A string payload is sent as
// raw bytes; any other JSON value is sent marshalled. "want" lists the events
// in order (type, severity, and data compared exactly after a JSON round
// trip); "err" is "bad payload" or "wrong type" and then no events may come.
package kittest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/smartcommunity/warden/drivers"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/event"
)

// Want is one expected event.
type Want struct {
	Type     string         `json:"type"`
	Severity event.Severity `json:"severity"`
	Data     map[string]any `json:"data"`
}

// Line is one fixture line.
type Line struct {
	Device  map[string]any  `json:"device"`
	Name    string          `json:"name"`
	Source  string          `json:"source"`
	Topic   string          `json:"topic"`
	Payload json.RawMessage `json:"payload"`
	Want    []Want          `json:"want"`
	Err     string          `json:"err"`
	Comment string          `json:"comment"`

	// N is the line number in the file.
	N int `json:"-"`
}

// Bytes is the payload as sent on the wire.
func (l Line) Bytes() []byte {
	var s string
	if json.Unmarshal(l.Payload, &s) == nil {
		return []byte(s)
	}
	return l.Payload
}

// DeviceConfig turns a fixture "device" object into a config entry: the
// named fields, and every other key into Extra.
func DeviceConfig(m map[string]any) (config.Device, error) {
	var d config.Device
	d.Extra = map[string]any{}
	for k, v := range m {
		switch k {
		case "id", "kind", "driver", "topic":
			s, ok := v.(string)
			if !ok {
				return d, fmt.Errorf("device.%s: want a string", k)
			}
			switch k {
			case "id":
				d.ID = s
			case "kind":
				d.Kind = s
			case "driver":
				d.Driver = s
			case "topic":
				d.Topic = s
			}
		case "location":
			b, _ := json.Marshal(v)
			if err := json.Unmarshal(b, &d.Location); err != nil {
				return d, fmt.Errorf("device.location: %w", err)
			}
		default:
			d.Extra[k] = v
		}
	}
	return d, nil
}

// Origin is the origin tests hand to Handle.
func Origin(d config.Device) event.Origin {
	return event.Origin{
		Gateway: "gw-test", Site: "site-test",
		Source:   event.Source{Kind: d.Kind, ID: d.ID},
		Location: d.Location,
		Time:     time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC),
	}
}

// ReadLines parses a fixture file strictly.
func ReadLines(t testing.TB, path string) []Line {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	defer f.Close()
	var out []Line
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 || raw[0] == '#' {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		var l Line
		if err := dec.Decode(&l); err != nil {
			t.Fatalf("%s:%d: %v", path, n, err)
		}
		if dec.More() {
			t.Fatalf("%s:%d: trailing data after the JSON object", path, n)
		}
		l.N = n
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return out
}

// Run plays every fixture file matching glob against the registry.
func Run(t *testing.T, glob string) {
	t.Helper()
	files, err := filepath.Glob(glob)
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures match %s", glob)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) { runFile(t, path) })
	}
}

func runFile(t *testing.T, path string) {
	var (
		dev  drivers.Device
		dcfg config.Device
	)
	for _, l := range ReadLines(t, path) {
		where := fmt.Sprintf("%s:%d (%s)", filepath.Base(path), l.N, l.Name)
		if l.Device != nil {
			var err error
			if dcfg, err = DeviceConfig(l.Device); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			var probs []config.Problem
			dev, probs = drivers.Default.New(dcfg)
			if len(probs) > 0 || dev == nil {
				t.Fatalf("%s: device: %v", where, probs)
			}
			continue
		}
		if dev == nil {
			t.Fatalf("%s: message before any device line", where)
		}
		topic := l.Topic
		if topic == "" {
			topic = dev.Topics()[0]
		}
		evs, err := dev.Handle(drivers.Message{Topic: topic, Payload: l.Bytes(), Time: time.Now()}, Origin(dcfg))
		Check(t, where, evs, err)
		switch l.Err {
		case "":
			if err != nil {
				t.Errorf("%s: unexpected error %v", where, err)
				continue
			}
		case "bad payload", "wrong type":
			want := drivers.ErrBadPayload
			if l.Err == "wrong type" {
				want = drivers.ErrWrongType
			}
			if !errors.Is(err, want) {
				t.Errorf("%s: error %v, want one wrapping %v", where, err, want)
			}
			continue
		default:
			t.Fatalf("%s: err %q is not \"bad payload\" or \"wrong type\"", where, l.Err)
		}
		got := make([]Want, len(evs))
		for j, e := range evs {
			got[j] = Want{Type: e.Type, Severity: e.Severity, Data: roundTrip(e.Data)}
		}
		want := make([]Want, len(l.Want))
		for j, w := range l.Want {
			if w.Severity == "" {
				w.Severity = event.DefaultSeverity(w.Type)
			}
			w.Data = roundTrip(w.Data)
			want[j] = w
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got  %s\n want %s", where, js(got), js(want))
		}
	}
}

// Check asserts the contract of Handle: an error comes alone and wraps one
// of the driver errors; every event validates and marshals.
func Check(t testing.TB, where string, evs []*event.Event, err error) {
	t.Helper()
	if err != nil {
		if len(evs) > 0 {
			t.Fatalf("%s: %d events together with error %v", where, len(evs), err)
		}
		if !errors.Is(err, drivers.ErrBadPayload) && !errors.Is(err, drivers.ErrWrongType) {
			t.Fatalf("%s: error %v wraps neither ErrBadPayload nor ErrWrongType", where, err)
		}
		return
	}
	for _, e := range evs {
		if e == nil {
			t.Fatalf("%s: nil event", where)
		}
		if verr := e.Validate(); verr != nil {
			t.Fatalf("%s: %v", where, verr)
		}
		if _, merr := json.Marshal(e); merr != nil {
			t.Fatalf("%s: marshal: %v", where, merr)
		}
	}
}

func roundTrip(m map[string]any) map[string]any {
	if m == nil {
		m = map[string]any{}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return map[string]any{"!marshal": err.Error()}
	}
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// Fuzz seeds f with every fixture payload and checks that Handle never
// panics and keeps the contract of Check. The fuzz input picks a device
// config (sel) and is split on newlines into a sequence of messages to one
// fresh device; a line starting with '!' goes to the device's second topic
// (availability) when it has one.
func Fuzz(f *testing.F, glob string) {
	var devs []config.Device
	files, _ := filepath.Glob(glob)
	for _, path := range files {
		for _, l := range ReadLines(f, path) {
			if l.Device != nil {
				d, err := DeviceConfig(l.Device)
				if err != nil {
					f.Fatal(err)
				}
				devs = append(devs, d)
				continue
			}
			if len(devs) > 0 {
				f.Add(uint8(len(devs)-1), l.Bytes())
			}
		}
	}
	if len(devs) == 0 {
		f.Fatalf("no device lines in %s", glob)
	}
	f.Fuzz(func(t *testing.T, sel uint8, data []byte) {
		d := devs[int(sel)%len(devs)]
		dev, probs := drivers.Default.New(d)
		if len(probs) > 0 {
			t.Fatalf("device %s: %v", d.ID, probs)
		}
		topics := dev.Topics()
		for i, msg := range bytes.SplitN(data, []byte("\n"), 16) {
			topic := topics[0]
			if len(msg) > 0 && msg[0] == '!' {
				msg = msg[1:]
				topic = topics[len(topics)-1]
			}
			evs, err := dev.Handle(drivers.Message{Topic: topic, Payload: msg, Time: time.Now()}, Origin(d))
			Check(t, fmt.Sprintf("message %d", i), evs, err)
		}
	})
}

// Real is one line of shared/data/mqtt/real-payloads.jsonl.
type Real struct {
	Kind          string          `json:"kind"`
	Device        string          `json:"device"`
	Source        string          `json:"source"`
	Topic         string          `json:"topic"`
	Payload       json.RawMessage `json:"payload"`
	PayloadPrefix string          `json:"payload_prefix_only"`
}

// RealPayloads reads the shared real payloads, skipping the test when the
// shared data is absent.
func RealPayloads(t testing.TB) []Real {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("go.mod not found above the test directory")
		}
		dir = parent
	}
	path := filepath.Join(dir, "..", "shared", "data", "mqtt", "real-payloads.jsonl")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("shared real payloads absent (%v); they live in ../shared/data next to the repo", err)
	}
	var out []Real
	for n, line := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var r Real
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("%s:%d: %v", path, n+1, err)
		}
		out = append(out, r)
	}
	return out
}

// RequireRealCovered fails unless every real payload of the given kinds
// appears in some fixture message (same source, same JSON payload; for a
// payload given only as a prefix, a raw payload that starts with it).
func RequireRealCovered(t *testing.T, glob string, kinds ...string) {
	t.Helper()
	reals := RealPayloads(t)
	files, _ := filepath.Glob(glob)
	var lines []Line
	for _, p := range files {
		lines = append(lines, ReadLines(t, p)...)
	}
	n := 0
	for _, r := range reals {
		if !contains(kinds, r.Kind) {
			continue
		}
		n++
		found := false
		for _, l := range lines {
			if l.Device != nil || l.Source != r.Source {
				continue
			}
			if r.PayloadPrefix != "" {
				if bytes.HasPrefix(l.Bytes(), []byte(strings.TrimSuffix(r.PayloadPrefix, "..."))) {
					found = true
				}
			} else if jsonEqual(l.Bytes(), r.Payload) {
				found = true
			}
		}
		if !found {
			t.Errorf("real payload not covered by any fixture: %s (%s)", r.Device, r.Source)
		}
	}
	if n == 0 {
		t.Errorf("no real payloads of kinds %v", kinds)
	}
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}
