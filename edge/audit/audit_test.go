package audit

import (
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func TestRecordListAndReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := New(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"valve.open", "gate.open", "alarm.ack"} {
		if _, err := l.Record(Entry{Actor: "guard-desk", Action: a, Target: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	db, err = bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	l, _ = New(db, nil)
	got, err := l.List(0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Action != "valve.open" || got[2].ID != 3 || got[1].Actor != "guard-desk" || got[0].Time.IsZero() {
		t.Fatalf("entries = %+v", got)
	}
	page, _ := l.List(2, 10)
	if len(page) != 1 || page[0].Action != "alarm.ack" {
		t.Fatalf("after 2 = %+v", page)
	}
}
