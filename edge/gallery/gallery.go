// Package gallery keeps the enrolled faces of a site in the gateway's bbolt
// file: persons (resident, staff, watchlist), several templates each, and
// the crops of unknown faces until retention deletes them. Every record is
// sealed with AES-GCM, so the file alone reveals neither names nor
// embeddings. Every change is written to the audit log.
package gallery

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/smartcommunity/warden/edge/audit"
)

var (
	bktPersons   = []byte("gallery.persons")
	bktTemplates = []byte("gallery.templates")
	bktUnknown   = []byte("gallery.unknown")
)

// Group of a person; watchlist matches raise an alarm.
type Group string

const (
	Resident  Group = "resident"
	Staff     Group = "staff"
	Watchlist Group = "watchlist"
)

// ParseGroup accepts resident, staff, watchlist (empty: resident).
func ParseGroup(s string) (Group, error) {
	switch Group(s) {
	case "":
		return Resident, nil
	case Resident, Staff, Watchlist:
		return Group(s), nil
	}
	return "", fmt.Errorf("group %q: want resident, staff or watchlist", s)
}

// ErrNotFound is returned for an unknown person.
var ErrNotFound = errors.New("not found")

// Person is an enrolled person.
type Person struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Group     Group     `json:"group"`
	Created   time.Time `json:"created"`
	Updated   time.Time `json:"updated"`
	Templates int       `json:"templates"`
}

// Template is one enrolled face: an embedding of Model (the model file's
// sha256 prefix, or "lbph" with Grey as the normalised grey crop), and the
// aligned crop as JPEG so an admin can see what was enrolled.
type Template struct {
	Model string    `json:"model"`
	Vec   []float32 `json:"vec,omitempty"`
	Grey  []byte    `json:"grey,omitempty"`
	Crop  []byte    `json:"crop,omitempty"`
	Added time.Time `json:"added"`
	// Source names the image it came from (file name), for the audit trail.
	Source string `json:"source,omitempty"`
}

// Entry is a template with its person, for matching.
type Entry struct {
	Person   Person
	Template Template
}

// Unknown is an unknown-face crop kept for review until retention.
type Unknown struct {
	ID     string    `json:"id"`
	Camera string    `json:"camera"`
	Time   time.Time `json:"time"`
	Score  float64   `json:"score"`
	Scene  bool      `json:"scene,omitempty"` // a sealed scene is kept too
}

// Options are the gallery's dependencies.
type Options struct {
	DB    *bolt.DB
	Dir   string // where unknown-face crops are written (sealed), e.g. data_dir/faces
	Key   []byte // 32 bytes, from LoadKey
	Audit *audit.Log
	Log   *slog.Logger
	Now   func() time.Time
	// EventCrops, when set, holds the face crops attached to events (the
	// event store's "crop" media); RunRetention prunes them too.
	EventCrops MediaPruner
}

// MediaPruner deletes stored media of a kind older than a time;
// *store.Store is one.
type MediaPruner interface {
	PruneMedia(kind string, before time.Time) (int, error)
}

// Gallery is safe for concurrent use.
type Gallery struct {
	db    *bolt.DB
	dir   string
	aead  cipher.AEAD
	audit *audit.Log
	log   *slog.Logger
	now   func() time.Time
	crops MediaPruner
	mu    sync.Mutex // serialises unknown-crop files with their records
	ver   atomic.Uint64
}

// Open creates the buckets and checks the key against existing records.
func Open(o Options) (*Gallery, error) {
	if o.DB == nil {
		return nil, errors.New("gallery: no database")
	}
	if len(o.Key) != 32 {
		return nil, fmt.Errorf("gallery: key is %d bytes, want 32 (AES-256)", len(o.Key))
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	blk, err := aes.NewCipher(o.Key)
	if err != nil {
		return nil, fmt.Errorf("gallery: key: %w", err)
	}
	aead, _ := cipher.NewGCM(blk)
	g := &Gallery{db: o.DB, dir: o.Dir, aead: aead, audit: o.Audit, log: o.Log.With("component", "gallery"), now: o.Now, crops: o.EventCrops}
	if !o.DB.IsReadOnly() {
		if err := o.DB.Update(func(tx *bolt.Tx) error {
			for _, b := range [][]byte{bktPersons, bktTemplates, bktUnknown} {
				if _, err := tx.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return nil, fmt.Errorf("gallery: create buckets: %w", err)
		}
	}
	// A wrong key must fail at start, not silently match nobody.
	err = o.DB.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bktPersons)
		if b == nil {
			return nil
		}
		_, v := b.Cursor().First()
		if v == nil {
			return nil
		}
		var p Person
		return g.open(v, &p)
	})
	if err != nil {
		return nil, fmt.Errorf("gallery: existing records do not decrypt with this key: %w", err)
	}
	if o.Dir != "" && !o.DB.IsReadOnly() {
		if err := os.MkdirAll(filepath.Join(o.Dir, "unknown"), 0o700); err != nil {
			return nil, fmt.Errorf("gallery: %w", err)
		}
	}
	return g, nil
}

// LoadKey reads a 32-byte key from path: raw bytes, or 64 hex or base64
// characters (trailing newline allowed). An empty path means
// $CREDENTIALS_DIRECTORY/face-key (systemd LoadCredential=).
func LoadKey(path string) ([]byte, error) {
	if path == "" {
		cd := os.Getenv("CREDENTIALS_DIRECTORY")
		if cd == "" {
			return nil, errors.New("gallery key: no key_file configured and $CREDENTIALS_DIRECTORY is not set")
		}
		path = filepath.Join(cd, "face-key")
	}
	if strings.HasPrefix(path, "$CREDENTIALS_DIRECTORY/") {
		path = filepath.Join(os.Getenv("CREDENTIALS_DIRECTORY"), strings.TrimPrefix(path, "$CREDENTIALS_DIRECTORY/"))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gallery key: %w", err)
	}
	if len(b) == 32 {
		return b, nil
	}
	s := strings.TrimSpace(string(b))
	if k, err := hex.DecodeString(s); err == nil && len(k) == 32 {
		return k, nil
	}
	if k, err := base64.StdEncoding.DecodeString(s); err == nil && len(k) == 32 {
		return k, nil
	}
	return nil, fmt.Errorf("gallery key %s: want 32 raw bytes, 64 hex or base64 of 32 bytes", path)
}

func (g *Gallery) seal(v any) ([]byte, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return g.sealBytes(plain), nil
}

func (g *Gallery) sealBytes(plain []byte) []byte {
	nonce := make([]byte, g.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return g.aead.Seal(nonce, nonce, plain, nil)
}

func (g *Gallery) openBytes(v []byte) ([]byte, error) {
	ns := g.aead.NonceSize()
	if len(v) < ns {
		return nil, errors.New("sealed record too short")
	}
	return g.aead.Open(nil, v[:ns], v[ns:], nil)
}

func (g *Gallery) open(v []byte, out any) error {
	plain, err := g.openBytes(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(plain, out)
}

var idRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidID reports whether id is usable as a person id.
func ValidID(id string) error {
	if !idRe.MatchString(id) {
		return fmt.Errorf("person id %q: want 1-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit", id)
	}
	return nil
}

func tplKey(person string, n uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(person), 0), n)
}

// Version changes on every gallery change; matchers reload when it moves.
func (g *Gallery) Version() uint64 { return g.ver.Load() }

// Enroll adds templates to a person, creating the person when new. Name
// and group replace the stored ones when given.
func (g *Gallery) Enroll(actor string, p Person, tpls []Template) (Person, error) {
	if err := ValidID(p.ID); err != nil {
		return Person{}, fmt.Errorf("gallery: %w", err)
	}
	if len(tpls) == 0 {
		return Person{}, errors.New("gallery: no templates")
	}
	now := g.now().UTC()
	var out Person
	err := g.db.Update(func(tx *bolt.Tx) error {
		pb, tb := tx.Bucket(bktPersons), tx.Bucket(bktTemplates)
		cur := Person{ID: p.ID, Group: Resident, Created: now}
		if v := pb.Get([]byte(p.ID)); v != nil {
			if err := g.open(v, &cur); err != nil {
				return fmt.Errorf("person %s: %w", p.ID, err)
			}
		}
		if p.Name != "" {
			cur.Name = p.Name
		}
		if p.Group != "" {
			cur.Group = p.Group
		}
		cur.Updated = now
		for _, t := range tpls {
			n, err := tb.NextSequence()
			if err != nil {
				return err
			}
			if t.Added.IsZero() {
				t.Added = now
			}
			v, err := g.seal(t)
			if err != nil {
				return err
			}
			if err := tb.Put(tplKey(p.ID, n), v); err != nil {
				return err
			}
			cur.Templates++
		}
		v, err := g.seal(cur)
		if err != nil {
			return err
		}
		out = cur
		return pb.Put([]byte(p.ID), v)
	})
	if err != nil {
		return Person{}, fmt.Errorf("gallery: enroll %s: %w", p.ID, err)
	}
	g.ver.Add(1)
	srcs := make([]string, 0, len(tpls))
	for _, t := range tpls {
		srcs = append(srcs, t.Source)
	}
	g.record(actor, "gallery.enroll", p.ID, map[string]any{"group": string(out.Group), "templates": len(tpls), "sources": srcs})
	return out, nil
}

func (g *Gallery) record(actor, action, target string, detail map[string]any) {
	if g.audit == nil {
		return
	}
	if _, err := g.audit.Record(audit.Entry{Actor: actor, Action: action, Target: target, Detail: detail}); err != nil {
		g.log.Error("audit", "err", err)
	}
}

// Remove deletes a person, all their templates and enrolment crops.
func (g *Gallery) Remove(actor, id string) error {
	n := 0
	err := g.db.Update(func(tx *bolt.Tx) error {
		pb, tb := tx.Bucket(bktPersons), tx.Bucket(bktTemplates)
		if pb.Get([]byte(id)) == nil {
			return ErrNotFound
		}
		prefix := append([]byte(id), 0)
		var keys [][]byte
		c := tb.Cursor()
		for k, _ := c.Seek(prefix); k != nil && len(k) == len(prefix)+8 && string(k[:len(prefix)]) == string(prefix); k, _ = c.Next() {
			keys = append(keys, append([]byte(nil), k...))
		}
		for _, k := range keys {
			if err := tb.Delete(k); err != nil {
				return err
			}
		}
		n = len(keys)
		return pb.Delete([]byte(id))
	})
	if err != nil {
		return fmt.Errorf("gallery: remove %s: %w", id, err)
	}
	g.ver.Add(1)
	g.record(actor, "gallery.remove", id, map[string]any{"templates": n})
	return nil
}

// List returns every person, sorted by id.
func (g *Gallery) List() ([]Person, error) {
	var out []Person
	err := g.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bktPersons)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var p Person
			if err := g.open(v, &p); err != nil {
				return fmt.Errorf("person %s: %w", k, err)
			}
			out = append(out, p)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("gallery: list: %w", err)
	}
	return out, nil
}

// Get returns one person.
func (g *Gallery) Get(id string) (Person, error) {
	var p Person
	err := g.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bktPersons).Get([]byte(id))
		if v == nil {
			return ErrNotFound
		}
		return g.open(v, &p)
	})
	if err != nil {
		return Person{}, fmt.Errorf("gallery: %s: %w", id, err)
	}
	return p, nil
}

// Entries returns every template with its person.
func (g *Gallery) Entries() ([]Entry, error) {
	persons, err := g.List()
	if err != nil {
		return nil, err
	}
	byID := map[string]Person{}
	for _, p := range persons {
		byID[p.ID] = p
	}
	var out []Entry
	err = g.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bktTemplates)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			if len(k) < 9 {
				return nil
			}
			p, ok := byID[string(k[:len(k)-9])]
			if !ok {
				return nil
			}
			var t Template
			if err := g.open(v, &t); err != nil {
				return fmt.Errorf("template of %s: %w", p.ID, err)
			}
			out = append(out, Entry{Person: p, Template: t})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("gallery: templates: %w", err)
	}
	return out, nil
}
