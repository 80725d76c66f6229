package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"go.yaml.in/yaml/v3"

	"github.com/smartcommunity/warden/edge/bus/bustest"
	"github.com/smartcommunity/warden/edge/config"
	mqttreplay "github.com/smartcommunity/warden/edge/replay/mqtt"

	"github.com/smartcommunity/warden/edge/testenv"
)

type expectation struct {
	Events []struct {
		Type     string         `json:"type"`
		Source   string         `json:"source"`
		Severity string         `json:"severity"`
		Data     map[string]any `json:"data"`
	} `json:"events"`
	Commands []struct {
		Topic   string         `json:"topic"`
		Payload map[string]any `json:"payload"`
	} `json:"commands"`
	NoCommands  []string `json:"no_commands"`
	Deadletters int      `json:"deadletters"`
	Ignore      []string `json:"ignore"`
}

// TestScenarios replays every testdata/scenarios folder through the real
// gateway and both brokers and compares events, commands and dead letters.
func TestScenarios(t *testing.T) {
	dirs, _ := filepath.Glob("../../testdata/scenarios/*/input.jsonl")
	if len(dirs) == 0 {
		t.Fatal("no scenarios found in testdata/scenarios")
	}
	for _, in := range dirs {
		dir := filepath.Dir(in)
		name := filepath.Base(dir)
		for _, broker := range []string{"embedded", "mosquitto"} {
			t.Run(name+"/"+broker, func(t *testing.T) {
				runScenario(t, dir, broker)
			})
		}
	}
}

func scenarioDevices(t *testing.T, dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "devices.yaml"))
	if os.IsNotExist(err) { // the demo scenario runs on configs/demo.yaml's devices
		cfg, err := config.Load("../../configs/demo.yaml")
		if err != nil {
			t.Fatal(err)
		}
		b, err = yaml.Marshal(cfg.Devices)
		if err != nil {
			t.Fatal(err)
		}
	} else if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		out.WriteString("  " + l + "\n")
	}
	// config.yaml adds other top-level sections (gate lists, rules, …).
	if extra, err := os.ReadFile(filepath.Join(dir, "config.yaml")); err == nil {
		out.WriteString(string(extra))
	}
	return out.String()
}

func runScenario(t *testing.T, dir, broker string) {
	var exp expectation
	raw, err := os.ReadFile(filepath.Join(dir, "expect.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &exp); err != nil {
		t.Fatalf("expect.json: %v", err)
	}
	if exp.Ignore == nil {
		exp.Ignore = []string{"alarm.", "device.online"}
	}
	url := ""
	if broker == "mosquitto" {
		url = bustest.Mosquitto(t).URL()
	}
	s := newSite(t, url, scenarioDevices(t, dir))
	s.start()

	c := publisher(t, s.mqttURL)
	var mu sync.Mutex
	var cmds []paho.Message
	tok := c.Subscribe("#", 1, func(_ paho.Client, m paho.Message) {
		if strings.HasSuffix(m.Topic(), "/set") {
			mu.Lock()
			cmds = append(cmds, m)
			mu.Unlock()
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	lines, err := mqttreplay.ReadFiles(filepath.Join(dir, "input.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := mqttreplay.Play(ctx, pahoPub{c}, lines, 10, nil); err != nil {
		t.Fatal(err)
	}

	var got []apiEvent
	testenv.Eventually(t, 30*time.Second, "expected events committed", func() (bool, string) {
		all, err := s.allEvents("")
		if err != nil {
			return false, err.Error()
		}
		got = got[:0]
		for _, e := range all {
			if !ignored(e.Type, exp.Ignore) {
				got = append(got, e)
			}
		}
		return len(got) >= len(exp.Events), fmt.Sprintf("%d of %d events: %s", len(got), len(exp.Events), eventTypes(got))
	})
	time.Sleep(time.Second) // anything extra would show up now
	all, _ := s.allEvents("")
	got = got[:0]
	for _, e := range all {
		if !ignored(e.Type, exp.Ignore) {
			got = append(got, e)
		}
	}
	if len(got) != len(exp.Events) {
		t.Fatalf("events %s, want %d", eventTypes(got), len(exp.Events))
	}
	for i, w := range exp.Events {
		e := got[i]
		if e.Type != w.Type || fmt.Sprint(e.Source["id"]) != w.Source || (w.Severity != "" && e.Severity != w.Severity) || !subset(w.Data, e.Data) {
			t.Errorf("event %d = %s %v %s data %v; want %s %s %s data ⊇ %v", i, e.Type, e.Source["id"], e.Severity, e.Data, w.Type, w.Source, w.Severity, w.Data)
		}
	}

	testenv.Eventually(t, 20*time.Second, "expected commands sent", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		// Every expected command must be sent; commands go out on two
		// connections (actuators, rules), so their order is not fixed.
		i := 0
		for _, want := range exp.Commands {
			for _, m := range cmds {
				var p map[string]any
				if m.Topic() == want.Topic && json.Unmarshal(m.Payload(), &p) == nil && subset(want.Payload, p) {
					i++
					break
				}
			}
		}
		var seen []string
		for _, m := range cmds {
			seen = append(seen, m.Topic()+" "+string(m.Payload()))
		}
		return i == len(exp.Commands), fmt.Sprintf("matched %d of %d commands; saw %q", i, len(exp.Commands), seen)
	})
	mu.Lock()
	for _, m := range cmds {
		for _, forbidden := range exp.NoCommands {
			if m.Topic() == forbidden {
				t.Errorf("unexpected command on %s: %s", m.Topic(), m.Payload())
			}
		}
	}
	mu.Unlock()

	var dl []json.RawMessage
	if err := s.apiGet("/api/v1/deadletters?limit=1000", &dl); err != nil {
		var wrapped struct {
			DeadLetters []json.RawMessage `json:"deadletters"`
		}
		if err := s.apiGet("/api/v1/deadletters?limit=1000", &wrapped); err != nil {
			t.Fatal(err)
		}
		dl = wrapped.DeadLetters
	}
	if len(dl) != exp.Deadletters {
		t.Errorf("%d dead letters, want %d", len(dl), exp.Deadletters)
	}
}

type pahoPub struct{ c paho.Client }

func (p pahoPub) Publish(ctx context.Context, topic string, qos byte, retain bool, payload []byte) error {
	t := p.c.Publish(topic, qos, retain, payload)
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func ignored(typ string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(typ, p) {
			return true
		}
	}
	return false
}

func eventTypes(evs []apiEvent) string {
	var s []string
	for _, e := range evs {
		s = append(s, fmt.Sprintf("%s(%v)", e.Type, e.Source["id"]))
	}
	return "[" + strings.Join(s, " ") + "]"
}

// subset reports whether every key of want is in got with an equal value,
// recursing into objects; numbers compare as JSON numbers.
func subset(want, got map[string]any) bool {
	for k, wv := range want {
		gv, ok := got[k]
		if !ok {
			return false
		}
		wm, wIsMap := wv.(map[string]any)
		gm, gIsMap := gv.(map[string]any)
		if wIsMap && gIsMap {
			if !subset(wm, gm) {
				return false
			}
			continue
		}
		if !reflect.DeepEqual(norm(wv), norm(gv)) {
			return false
		}
	}
	return true
}

func norm(v any) any {
	b, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}
