// Package storetest opens real event stores for other packages' tests.
package storetest

import (
	"testing"

	"github.com/smartcommunity/warden/edge/store"
)

// Open opens a store with o (in a fresh temp dir when o.Dir is empty) and
// closes it when the test ends.
func Open(t testing.TB, o store.Options) *store.Store {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	st, err := store.Open(o)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}
