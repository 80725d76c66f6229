package atomicfile_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/smartcommunity/warden/edge/atomicfile"
)

func TestWriteReplacesAndLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "calibration.yaml")
	for _, body := range []string{"old\n", "new\n"} {
		if err := atomicfile.Write(p, []byte(body)); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(p); string(got) != body {
			t.Fatalf("content %q, want %q", got, body)
		}
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if es, _ := os.ReadDir(dir); len(es) != 1 {
		t.Errorf("%d files in the directory, want only the target", len(es))
	}
	// a directory that cannot take the temporary file: the old content stays
	if err := atomicfile.Write(filepath.Join(dir, "missing", "x"), []byte("y")); err == nil {
		t.Error("write into a missing directory succeeded")
	}
}
