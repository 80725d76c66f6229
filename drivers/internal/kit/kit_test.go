package kit

import (
	"errors"
	"github.com/smartcommunity/warden/edge/config"
	"testing"

	"github.com/smartcommunity/warden/drivers"
	"github.com/smartcommunity/warden/edge/event"
)

func TestFlag(t *testing.T) {
	for raw, want := range map[string]struct{ v, ok, wrong bool }{
		`{"f":true}`: {true, true, false}, `{"f":"True"}`: {true, true, false}, `{"f":" false "}`: {false, true, false},
		`{"f":1}`: {true, true, false}, `{"f":0}`: {false, true, false}, `{"f":null}`: {false, false, false},
		`{}`: {false, false, false}, `{"f":"maybe"}`: {false, false, true}, `{"f":2}`: {false, false, true},
		`{"f":[true]}`: {false, false, true},
	} {
		obj, err := Object([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		v, ok, err := Flag(obj, "f")
		if v != want.v || ok != want.ok || errors.Is(err, drivers.ErrWrongType) != want.wrong {
			t.Errorf("%s: %v %v %v", raw, v, ok, err)
		}
	}
}

func TestNumberAndGet(t *testing.T) {
	obj, _ := Object([]byte(`{"a":{"b":{"c":"12.5"}},"x":"1e999","y":"NaN"}`))
	if v, ok, err := Number(obj, "a.b.c"); v != 12.5 || !ok || err != nil {
		t.Errorf("a.b.c: %v %v %v", v, ok, err)
	}
	for _, f := range []string{"x", "y", "a.b"} {
		if _, _, err := Number(obj, f); !errors.Is(err, drivers.ErrWrongType) {
			t.Errorf("%s: %v", f, err)
		}
	}
	if _, ok := Get(obj, "a.b.c.d"); ok {
		t.Error("path through a string found")
	}
}

func TestObject(t *testing.T) {
	for _, raw := range []string{"", " ", "null", "[]", "1", `"x"`, "{", `{"a":1}{}`, "\xff"} {
		if _, err := Object([]byte(raw)); !errors.Is(err, drivers.ErrBadPayload) {
			t.Errorf("%q: %v", raw, err)
		}
	}
}

func TestAvailability(t *testing.T) {
	var a Availability
	var o event.Origin
	o.Source = event.Source{Kind: "k", ID: "i"}
	seq := []struct {
		payload string
		want    string
	}{
		{"online", ""}, {`"online"`, ""}, {`{"state":"offline"}`, event.DeviceOffline}, {"offline", ""},
		{" online\n", event.DeviceOnline}, {"online", ""},
	}
	for _, s := range seq {
		evs, err := a.Handle([]byte(s.payload), o)
		if err != nil {
			t.Fatalf("%q: %v", s.payload, err)
		}
		got := ""
		if len(evs) == 1 {
			got = evs[0].Type
		}
		if got != s.want || len(evs) > 1 {
			t.Errorf("%q: %v, want %q", s.payload, evs, s.want)
		}
	}
	for _, bad := range []string{"", "ONLINE", `{"status":"online"}`, `{"state":true}`, `"unterminated`} {
		if evs, err := a.Handle([]byte(bad), o); err == nil || len(evs) > 0 {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestEdge(t *testing.T) {
	var e Edge
	steps := []struct{ v, rose, fell bool }{{true, true, false}, {true, false, false}, {false, false, true}, {false, false, false}, {true, true, false}}
	for i, s := range steps {
		if r, f := e.Set(s.v); r != s.rose || f != s.fell {
			t.Errorf("step %d: %v %v", i, r, f)
		}
	}
	var e2 Edge
	if r, f := e2.Set(false); r || f {
		t.Error("first false is neither")
	}
}

// Decode is strict: an unknown key or a wrong type names the key, a list
// element by its index; Strings takes one string or a list.
func TestDecode(t *testing.T) {
	type opts struct {
		S Strings `yaml:"s"`
		N float64 `yaml:"n"`
	}
	var o opts
	if ps := Decode(config.Device{Extra: map[string]any{"s": []any{"a", "a", "b"}, "n": 3}}, &o); len(ps) > 0 || len(o.S) != 2 || o.N != 3 {
		t.Errorf("decoded %+v, problems %v", o, ps)
	}
	if ps := Decode(config.Device{Extra: map[string]any{"s": "a"}}, &o); len(ps) > 0 || len(o.S) != 1 || o.S[0] != "a" {
		t.Errorf("one string: %+v, problems %v", o, ps)
	}
	for key, extra := range map[string]map[string]any{
		"s":    {"s": 3},
		"s[1]": {"s": []any{"a", 2}},
		"n":    {"n": "three"},
		"u":    {"u": 1},
	} {
		ps := Decode(config.Device{Extra: extra}, &opts{})
		if len(ps) != 1 || ps[0].Key != key || ps[0].Msg == "" {
			t.Errorf("%v: problems %v, want one for %s", extra, ps, key)
		}
	}
}
