package store

import (
	"bytes"
	"time"

	"github.com/smartcommunity/warden/edge/event"
)

// rawLite reads type, severity and time for ReadRaw straight from JSON in
// the layout event.Event.MarshalJSON writes:
//
//	{"id":"…","seq":N,"gateway":"…","site":"…","type":"…","severity":"…",…,"time":"…"}
//
// without decoding the rest (a full decode was most of the uplink's read
// cost: 0.3 µs instead of 4 µs an event). ok is false for any other
// layout or an escaped string, and the caller decodes normally. The rest
// is not validated: the store wrote these bytes itself, and a platform
// refuses a damaged event, which the uplink then dead-letters.
func rawLite(v []byte) (l lite, ok bool) {
	p := v
	if p, ok = cutPrefix(p, `{"id":"`); !ok {
		return l, false
	}
	if _, p, ok = plainString(p); !ok {
		return l, false
	}
	if p, ok = cutPrefix(p, `,"seq":`); !ok {
		return l, false
	}
	i := 0
	for i < len(p) && p[i] >= '0' && p[i] <= '9' {
		i++
	}
	if i == 0 {
		return l, false
	}
	p = p[i:]
	var typ, sev []byte
	for _, f := range []struct {
		key string
		val *[]byte
	}{{`,"gateway":"`, nil}, {`,"site":"`, nil}, {`,"type":"`, &typ}, {`,"severity":"`, &sev}} {
		if p, ok = cutPrefix(p, f.key); !ok {
			return l, false
		}
		var s []byte
		if s, p, ok = plainString(p); !ok {
			return l, false
		}
		if f.val != nil {
			*f.val = s
		}
	}
	// time is the last member: ,"time":"2006-01-02T15:04:05.000Z"}
	const tail = len(`,"time":"2006-01-02T15:04:05.000Z"}`)
	if len(p) < tail || !bytes.HasPrefix(p[len(p)-tail:], []byte(`,"time":"`)) || !bytes.HasSuffix(p, []byte(`"}`)) {
		return l, false
	}
	ts := p[len(p)-tail+len(`,"time":"`) : len(p)-2]
	if bytes.IndexByte(ts, '"') >= 0 || bytes.IndexByte(ts, '\\') >= 0 {
		return l, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return l, false
	}
	return lite{Type: string(typ), Severity: event.Severity(sev), Time: t}, true
}

func cutPrefix(p []byte, s string) ([]byte, bool) {
	if len(p) < len(s) || string(p[:len(s)]) != s {
		return p, false
	}
	return p[len(s):], true
}

// plainString returns the JSON string body up to its closing quote and the
// rest after it; ok is false if the string has escapes.
func plainString(p []byte) (s, rest []byte, ok bool) {
	for i, c := range p {
		switch c {
		case '"':
			return p[:i], p[i+1:], true
		case '\\':
			return nil, p, false
		}
	}
	return nil, p, false
}
