package store

import (
	"os"
	"testing"
	"time"
)

func TestPruneMediaDeletesOnlyOldMediaOfThatKind(t *testing.T) {
	s, err := Open(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	oldCrop, _ := s.PutMedia("crop", "image/jpeg", []byte("old face"))
	oldSnap, _ := s.PutMedia("snapshot", "image/jpeg", []byte("old scene"))
	time.Sleep(5 * time.Millisecond)
	cut := time.Now()
	time.Sleep(5 * time.Millisecond)
	newCrop, _ := s.PutMedia("crop", "image/jpeg", []byte("new face"))

	n, err := s.PruneMedia("crop", cut)
	if err != nil || n != 1 {
		t.Fatalf("pruned %d (err %v), want 1", n, err)
	}
	if _, _, err := s.OpenMedia(oldCrop.ID); err == nil {
		t.Error("the old crop can still be opened")
	}
	if _, err := os.Stat(s.mediaPath(oldCrop.ID)); !os.IsNotExist(err) {
		t.Errorf("the old crop's file is still on disk: %v", err)
	}
	for _, keep := range []MediaInfo{oldSnap, newCrop} {
		f, _, err := s.OpenMedia(keep.ID)
		if err != nil {
			t.Errorf("%s %s was deleted: %v", keep.Kind, keep.ID, err)
			continue
		}
		f.Close()
	}
}
