// Package testenv holds what tests of several packages need: the
// repository root, the shared test data (../shared/data beside the
// checkout) and metric values read from a registry.
package testenv

import (
	"os"
	"path/filepath"
	"testing"
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
