package notify

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sync/atomic"

	"go.etcd.io/bbolt"
)

var bktQueue = []byte("notify.queue") // id → message JSON, until sent or given up

// queue keeps messages in the gateway's bbolt file from before their first
// try until they are sent or given up. Without a DB it only numbers them.
type queue struct {
	db  *bbolt.DB
	ids atomic.Uint64 // ids of messages that could not be stored
}

func openQueue(db *bbolt.DB) (*queue, error) {
	q := &queue{db: db}
	if db == nil {
		return q, nil
	}
	err := db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bktQueue)
		if err != nil {
			return err
		}
		q.ids.Store(b.Sequence() + 1<<40) // memory-only ids never meet stored ones
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("notify: open queue: %w", err)
	}
	return q, nil
}

// load returns the stored messages in id order (so in change order).
func (q *queue) load() ([]*Message, error) {
	if q.db == nil {
		return nil, nil
	}
	var out []*Message
	err := q.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bktQueue).ForEach(func(k, v []byte) error {
			var m Message
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("message %x: %w", k, err)
			}
			m.stored = true
			out = append(out, &m)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("notify: load queue: %w", err)
	}
	return out, nil
}

// store gives ms their ids and writes them in one transaction. On error
// they keep memory-only ids and are sent anyway.
func (q *queue) store(ms []*Message) error {
	if q.db == nil {
		for _, m := range ms {
			m.ID = q.ids.Add(1)
		}
		return nil
	}
	err := q.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bktQueue)
		for _, m := range ms {
			id, err := b.NextSequence()
			if err != nil {
				return err
			}
			m.ID = id
			js, err := json.Marshal(m)
			if err != nil {
				return err
			}
			if err := b.Put(key(id), js); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		for _, m := range ms {
			m.ID = q.ids.Add(1)
		}
		return fmt.Errorf("notify: store %d message(s): %w", len(ms), err)
	}
	for _, m := range ms {
		m.stored = true
	}
	return nil
}

func (q *queue) remove(id uint64) error {
	if q.db == nil {
		return nil
	}
	return q.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bktQueue).Delete(key(id)) })
}

func key(id uint64) []byte { return binary.BigEndian.AppendUint64(nil, id) }
