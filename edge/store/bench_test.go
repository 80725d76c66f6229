package store

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/smartcommunity/warden/edge/event"
)

// benchEvent is about 230 bytes of JSON, like a sensor event.
func benchEvent(b *testing.B) *event.Event {
	return mkEvent(b, event.WristbandHR, "", "3")
}

// BenchmarkAppendGroupCommit: many goroutines each Append one event and
// wait for its fsynced commit; the committer packs them into shared commits.
func BenchmarkAppendGroupCommit(b *testing.B) {
	s := openStore(b, Options{Dir: b.TempDir()})
	b.SetParallelism(64) // 64 × GOMAXPROCS writers
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Append(context.Background(), benchEvent(b)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	st := s.Stats()
	b.ReportMetric(float64(b.N)/float64(st.Commits), "events/commit")
}

// BenchmarkAppendOneTxPerEvent is the naive baseline: one fsynced bbolt
// Update per event, same key and value layout.
func BenchmarkAppendOneTxPerEvent(b *testing.B) {
	db, err := bbolt.Open(filepath.Join(b.TempDir(), "bench.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucket(bktEvents); return err }); err != nil {
		b.Fatal(err)
	}
	var seq uint64
	b.ResetTimer()
	for range b.N {
		ev := benchEvent(b)
		err := db.Update(func(tx *bbolt.Tx) error {
			seq++
			ev.Seq = seq
			js, err := json.Marshal(ev)
			if err != nil {
				return err
			}
			return tx.Bucket(bktEvents).Put(u64(seq), js)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
