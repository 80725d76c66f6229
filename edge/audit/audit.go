// Package audit keeps an append-only record of what people and the gateway
// did: valve reopened, gate opened, alarm acknowledged, gallery changed. It
// lives in its own bucket of the gateway's bbolt file.
package audit

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	bolt "go.etcd.io/bbolt"
)

var bucket = []byte("audit")

// Entry is one audited action.
type Entry struct {
	ID     uint64         `json:"id"`
	Time   time.Time      `json:"time"`
	Actor  string         `json:"actor"`  // token or user name, or "gateway"
	Action string         `json:"action"` // e.g. valve.open, gate.open, alarm.ack
	Target string         `json:"target"` // device, alarm or person id
	Detail map[string]any `json:"detail,omitempty"`
	Error  string         `json:"error,omitempty"`
}

// Log writes entries to bbolt and mirrors them to slog.
type Log struct {
	db  *bolt.DB
	log *slog.Logger
	now func() time.Time
}

// New creates the bucket if needed.
func New(db *bolt.DB, log *slog.Logger) (*Log, error) {
	if log == nil {
		log = slog.Default()
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	}); err != nil {
		return nil, fmt.Errorf("audit: create bucket: %w", err)
	}
	return &Log{db: db, log: log.With("component", "audit"), now: time.Now}, nil
}

// Record appends an entry durably. The slog line is written even when the
// database write fails, so the action is never unrecorded.
func (l *Log) Record(e Entry) (Entry, error) {
	if e.Time.IsZero() {
		e.Time = l.now().UTC()
	}
	err := l.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		id, err := b.NextSequence()
		if err != nil {
			return err
		}
		e.ID = id
		v, err := json.Marshal(e)
		if err != nil {
			return err
		}
		return b.Put(binary.BigEndian.AppendUint64(nil, id), v)
	})
	l.log.Info("audit", "actor", e.Actor, "action", e.Action, "target", e.Target, "id", e.ID, "error", e.Error)
	if err != nil {
		return e, fmt.Errorf("audit: record %s %s: %w", e.Action, e.Target, err)
	}
	return e, nil
}

// List returns up to limit entries after id, oldest first.
func (l *Log) List(after uint64, limit int) ([]Entry, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	var out []Entry
	err := l.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucket).Cursor()
		for k, v := c.Seek(binary.BigEndian.AppendUint64(nil, after+1)); k != nil && len(out) < limit; k, v = c.Next() {
			var e Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("entry %x: %w", k, err)
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}
