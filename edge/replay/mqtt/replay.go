// Package mqtt reads sensor fixtures (JSONL) and publishes them with
// their original timing, so testers can replay recorded devices instead of
// real hardware.
package mqtt

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"time"
)

// Line is one fixture line of INTERFACES.md:
// {"at_ms": 1200, "topic": "...", "payload": <JSON value or string>, "qos": 1, "retain": false}
type Line struct {
	AtMs    int64           `json:"at_ms"`
	Topic   string          `json:"topic"`
	Payload json.RawMessage `json:"payload"`
	QoS     *byte           `json:"qos"`
	Retain  bool            `json:"retain"`

	File   string `json:"-"`
	LineNo int    `json:"-"`
}

// Bytes is what goes on the wire: a JSON string payload is sent as its raw
// text (so `"True"` fixtures and non-JSON payloads can be replayed), any
// other JSON value compact.
func (l Line) Bytes() []byte {
	p := bytes.TrimSpace(l.Payload)
	if len(p) > 0 && p[0] == '"' {
		var s string
		if json.Unmarshal(p, &s) == nil {
			return []byte(s)
		}
	}
	var buf bytes.Buffer
	if json.Compact(&buf, p) == nil {
		return buf.Bytes()
	}
	return p
}

// Qos defaults to 1: fixtures stand for devices whose messages matter.
func (l Line) Qos() byte {
	if l.QoS == nil {
		return 1
	}
	return *l.QoS
}

// Read parses one fixture stream; errors name the file and line.
func Read(name string, r io.Reader) ([]Line, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var out []Line
	n := 0
	for sc.Scan() {
		n++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 || b[0] == '#' {
			continue
		}
		var l Line
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, n, err)
		}
		switch {
		case l.Topic == "":
			return nil, fmt.Errorf("%s:%d: topic is required", name, n)
		case l.AtMs < 0:
			return nil, fmt.Errorf("%s:%d: at_ms must be ≥ 0", name, n)
		case len(l.Payload) == 0:
			return nil, fmt.Errorf("%s:%d: payload is required", name, n)
		case l.QoS != nil && *l.QoS > 2:
			return nil, fmt.Errorf("%s:%d: qos must be 0, 1 or 2", name, n)
		}
		l.File, l.LineNo = name, n
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

// ReadFiles reads several fixtures and merges them on one timeline.
func ReadFiles(paths ...string) ([]Line, error) {
	var all []Line
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		ls, err := Read(p, f)
		f.Close()
		if err != nil {
			return nil, err
		}
		all = append(all, ls...)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].AtMs < all[j].AtMs })
	return all, nil
}

// Publisher sends one message; QoS 1 and 2 wait for the broker's ack.
type Publisher interface {
	Publish(ctx context.Context, topic string, qos byte, retain bool, payload []byte) error
}

// Play publishes lines at their offsets divided by speed; speed ≤ 0 plays as
// fast as the broker acks. progress, when set, is called after each line.
func Play(ctx context.Context, p Publisher, lines []Line, speed float64, progress func(i int, l Line)) error {
	start := time.Now()
	for i, l := range lines {
		if speed > 0 {
			due := start.Add(time.Duration(float64(l.AtMs) / speed * float64(time.Millisecond)))
			if d := time.Until(due); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-ctx.Done():
					t.Stop()
					return ctx.Err()
				case <-t.C:
				}
			}
		}
		if err := p.Publish(ctx, l.Topic, l.Qos(), l.Retain, l.Bytes()); err != nil {
			return fmt.Errorf("%s:%d: publish %s: %w", l.File, l.LineNo, l.Topic, err)
		}
		if progress != nil {
			progress(i, l)
		}
	}
	return nil
}
