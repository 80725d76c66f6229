// Package event defines the one record that flows through Warden: from a
// device message or a detection, into the store, to guards, the platform and
// the uplink. Its JSON is the external contract of INTERFACES.md.
package event

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// Severity of an event.
type Severity string

const (
	Info     Severity = "info"
	Warning  Severity = "warning"
	Critical Severity = "critical"
)

// Rank orders severities: info < warning < critical. Unknown ranks lowest.
func (s Severity) Rank() int {
	switch s {
	case Info:
		return 1
	case Warning:
		return 2
	case Critical:
		return 3
	}
	return 0
}

// Valid reports whether s is one of the three severities.
func (s Severity) Valid() bool { return s.Rank() > 0 }

// Source names what produced an event.
type Source struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
}

// Location is where something happened inside the compound.
type Location struct {
	Building string `json:"building" yaml:"building"`
	Unit     string `json:"unit" yaml:"unit"`
	Room     string `json:"room" yaml:"room"`
	Zone     string `json:"zone" yaml:"zone"`
}

// String renders a location for logs and alarm titles, e.g. "3-2-201".
func (l Location) String() string {
	var parts []string
	for _, p := range []string{l.Building, l.Unit, l.Room} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	s := strings.Join(parts, "-")
	if l.Zone != "" {
		if s != "" {
			s += " "
		}
		s += "zone " + l.Zone
	}
	return s
}

// Media references a snapshot or clip kept in the media store.
type Media struct {
	Kind   string `json:"kind"` // snapshot, clip, trajectory, crop
	URL    string `json:"url"`
	SHA256 string `json:"sha256"`
}

// Event is the record of INTERFACES.md. ID is a ULID and the idempotency key
// everywhere; Seq is assigned by the store at commit and increases per gateway.
type Event struct {
	ID       string         `json:"id"`
	Seq      uint64         `json:"seq"`
	Time     time.Time      `json:"time"`
	Gateway  string         `json:"gateway"`
	Site     string         `json:"site"`
	Type     string         `json:"type"`
	Severity Severity       `json:"severity"`
	Source   Source         `json:"source"`
	Location Location       `json:"location"`
	Data     map[string]any `json:"data"`
	Media    []Media        `json:"media"`
	// Attachments are pictures a device sent with its message (a plate
	// camera's scene and plate). Ingest stores them as media before the
	// commit and names them in Media; they are never serialised.
	Attachments []Attachment `json:"-"`
}

// Attachment is a picture carried by a device message.
type Attachment struct {
	Kind        string // snapshot (scene) or crop (the plate)
	ContentType string
	Data        []byte
}

// MarshalJSON keeps data and media as {} and [] rather than null, and writes
// time in UTC with millisecond precision as in the contract.
func (e Event) MarshalJSON() ([]byte, error) {
	type plain Event
	p := plain(e)
	if p.Data == nil {
		p.Data = map[string]any{}
	}
	if p.Media == nil {
		p.Media = []Media{}
	}
	return json.Marshal(struct {
		plain
		Time string `json:"time"`
	}{p, e.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00")})
}

// Group is the type's prefix, e.g. "gas" for "gas.leak".
func (e *Event) Group() string {
	g, _, _ := strings.Cut(e.Type, ".")
	return g
}

// Validate checks the fields every event must have.
func (e *Event) Validate() error {
	var errs []string
	if _, err := ulid.ParseStrict(e.ID); err != nil {
		errs = append(errs, fmt.Sprintf("id %q is not a ULID", e.ID))
	}
	if e.Time.IsZero() {
		errs = append(errs, "time is zero")
	}
	if _, ok := types[e.Type]; !ok {
		errs = append(errs, fmt.Sprintf("unknown type %q", e.Type))
	}
	if !e.Severity.Valid() {
		errs = append(errs, fmt.Sprintf("severity %q is not info, warning or critical", e.Severity))
	}
	if e.Source.Kind == "" || e.Source.ID == "" {
		errs = append(errs, "source kind and id are required")
	}
	if len(errs) > 0 {
		return fmt.Errorf("event %s: %s", e.Type, strings.Join(errs, "; "))
	}
	return nil
}

var (
	entropyMu sync.Mutex
	entropy   = ulid.Monotonic(rand.Reader, 0)
)

// NewID returns a ULID for t. IDs made in the same millisecond still sort in
// creation order.
func NewID(t time.Time) string {
	entropyMu.Lock()
	defer entropyMu.Unlock()
	return ulid.MustNew(ulid.Timestamp(t), entropy).String()
}
