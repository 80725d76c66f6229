package mqtt

import (
	"strings"
	"testing"
)

func TestReadAndBytes(t *testing.T) {
	in := `# a comment
{"at_ms": 0, "topic": "zigbee2mqtt/gas-1", "payload": {"gas": "True", "battery": 90}}
{"at_ms": 1200, "topic": "a/b", "payload": "not json at all", "qos": 0, "retain": true}

{"at_ms": 500, "topic": "x", "payload": null}
`
	ls, err := Read("f.jsonl", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 3 {
		t.Fatalf("got %d lines, want 3", len(ls))
	}
	if got := string(ls[0].Bytes()); got != `{"gas":"True","battery":90}` {
		t.Errorf("object payload = %s", got)
	}
	if ls[0].Qos() != 1 {
		t.Errorf("default qos = %d, want 1", ls[0].Qos())
	}
	if got := string(ls[1].Bytes()); got != "not json at all" || ls[1].Qos() != 0 || !ls[1].Retain {
		t.Errorf("string payload = %q qos %d retain %v", got, ls[1].Qos(), ls[1].Retain)
	}
	if got := string(ls[2].Bytes()); got != "null" {
		t.Errorf("null payload = %q", got)
	}
	if ls[1].LineNo != 3 || ls[1].File != "f.jsonl" {
		t.Errorf("position = %s:%d", ls[1].File, ls[1].LineNo)
	}
}

func TestReadErrorsNameLine(t *testing.T) {
	for name, in := range map[string]string{
		"syntax":        "{\"at_ms\": 0, \"topic\": \"a\", \"payload\": 1}\n{oops}\n",
		"unknown field": "{\"at_ms\": 0, \"topic\": \"a\", \"payload\": 1}\n{\"at_ms\": 0, \"topic\": \"a\", \"payload\": 1, \"qso\": 1}\n",
		"no topic":      "{\"at_ms\": 0, \"topic\": \"a\", \"payload\": 1}\n{\"at_ms\": 0, \"payload\": 1}\n",
		"bad qos":       "{\"at_ms\": 0, \"topic\": \"a\", \"payload\": 1}\n{\"at_ms\": 0, \"topic\": \"a\", \"payload\": 1, \"qos\": 3}\n",
		"negative time": "{\"at_ms\": 0, \"topic\": \"a\", \"payload\": 1}\n{\"at_ms\": -5, \"topic\": \"a\", \"payload\": 1}\n",
		"no payload":    "{\"at_ms\": 0, \"topic\": \"a\", \"payload\": 1}\n{\"at_ms\": 5, \"topic\": \"a\"}\n",
	} {
		_, err := Read("s.jsonl", strings.NewReader(in))
		if err == nil || !strings.Contains(err.Error(), "s.jsonl:2:") {
			t.Errorf("%s: err = %v, want one naming s.jsonl:2", name, err)
		}
	}
}
