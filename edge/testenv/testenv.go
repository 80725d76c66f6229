// Package testenv holds what tests of several packages need: the
// repository root, the shared test data (../shared/data beside the
// checkout), metric values read from a registry, and waiting for a
// condition.
package testenv

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// RepoRoot walks up from the test's directory to the one holding go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	start, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for dir := start; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		if filepath.Dir(dir) == dir {
			t.Fatalf("no go.mod above %s", start)
		}
	}
}

// SharedData returns ../shared/data (relative to the repository root). It
// skips the test, saying what is missing, unless every path in need exists
// under it.
func SharedData(t testing.TB, need ...string) string {
	t.Helper()
	d := filepath.Join(RepoRoot(t), "..", "shared", "data")
	for _, n := range append([]string{""}, need...) {
		if _, err := os.Stat(filepath.Join(d, n)); err != nil {
			t.Skipf("shared test data is absent (%v); it lives in ../shared/data beside the checkout", err)
		}
	}
	return d
}

// Eventually polls cond until it holds and fails t when it still does not
// after within, with what and cond's last message. Tests wait with it
// instead of sleeping, so a slow machine only makes them slower, never
// red. Polls start 10 ms apart and slow to 100 ms, so a long wait on an
// expensive cond (an API query) does not load the machine.
func Eventually(t testing.TB, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	pause := 10 * time.Millisecond
	for {
		ok, msg := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %s: %s", what, within, msg)
		}
		time.Sleep(pause)
		pause = min(2*pause, 100*time.Millisecond)
	}
}

// Until is Eventually for a condition with nothing to say.
func Until(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	Eventually(t, within, what, func() (bool, string) { return cond(), "" })
}
