package gallery

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/oklog/ulid/v2"
	bolt "go.etcd.io/bbolt"
)

func unknownKey(t time.Time, id string) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(t.UnixNano())), id...)
}

func (g *Gallery) cropPath(id string) string { return filepath.Join(g.dir, "unknown", id+".sealed") }

// scenePath is where the frame a crop was taken from is kept: it shows the
// stranger's face as well, so it is sealed the same way.
func (g *Gallery) scenePath(id string) string {
	return filepath.Join(g.dir, "unknown", id+".scene.sealed")
}

// AddUnknown keeps the JPEG crop of an unknown face and, when not nil, the
// JPEG of its scene, sealed, until PruneUnknown removes them.
func (g *Gallery) AddUnknown(camera string, t time.Time, score float64, crop, scene []byte) (Unknown, error) {
	if g.dir == "" {
		return Unknown{}, errors.New("gallery: no crop directory configured")
	}
	u := Unknown{ID: ulid.Make().String(), Camera: camera, Time: t.UTC(), Score: score, Scene: scene != nil}
	g.mu.Lock()
	defer g.mu.Unlock()
	files := map[string][]byte{g.cropPath(u.ID): crop}
	if scene != nil {
		files[g.scenePath(u.ID)] = scene
	}
	undo := func() {
		for path := range files {
			_ = os.Remove(path)
		}
	}
	for path, b := range files {
		if err := os.WriteFile(path, g.sealBytes(b), 0o600); err != nil {
			undo()
			return Unknown{}, fmt.Errorf("gallery: unknown crop: %w", err)
		}
	}
	meta, _ := json.Marshal(u)
	err := g.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bktUnknown).Put(unknownKey(u.Time, u.ID), meta)
	})
	if err != nil {
		undo()
		return Unknown{}, fmt.Errorf("gallery: unknown crop: %w", err)
	}
	return u, nil
}

// Unknowns lists kept unknown crops, oldest first.
func (g *Gallery) Unknowns() ([]Unknown, error) {
	var out []Unknown
	err := g.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bktUnknown).ForEach(func(k, v []byte) error {
			var u Unknown
			if err := json.Unmarshal(v, &u); err != nil {
				return err
			}
			out = append(out, u)
			return nil
		})
	})
	return out, err
}

// UnknownCrop returns the decrypted JPEG of an unknown crop.
func (g *Gallery) UnknownCrop(id string) ([]byte, error) {
	b, err := os.ReadFile(g.cropPath(filepath.Base(id)))
	if err != nil {
		return nil, fmt.Errorf("gallery: unknown crop %s: %w", id, err)
	}
	return g.openBytes(b)
}

// UnknownScene returns the decrypted JPEG of an unknown crop's scene.
func (g *Gallery) UnknownScene(id string) ([]byte, error) {
	b, err := os.ReadFile(g.scenePath(filepath.Base(id)))
	if err != nil {
		return nil, fmt.Errorf("gallery: unknown scene %s: %w", id, err)
	}
	return g.openBytes(b)
}

// PruneUnknown deletes the crops (files and records) taken before cutoff and
// returns how many went. Files go first, then the records, so a crash in
// between leaves records whose files are gone, removed on the next pass.
func (g *Gallery) PruneUnknown(cutoff time.Time) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var keys [][]byte
	var ids []string
	err := g.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bktUnknown).Cursor()
		end := uint64(cutoff.UnixNano())
		for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k[:8]) < end; k, _ = c.Next() {
			keys = append(keys, append([]byte(nil), k...))
			ids = append(ids, string(k[8:]))
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("gallery: prune: %w", err)
	}
	for _, id := range ids {
		for _, path := range []string{g.cropPath(id), g.scenePath(id)} {
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return 0, fmt.Errorf("gallery: prune %s: %w", id, err)
			}
		}
	}
	if len(keys) == 0 {
		return 0, nil
	}
	err = g.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bktUnknown)
		for _, k := range keys {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("gallery: prune: %w", err)
	}
	g.log.Info("unknown face crops deleted", "count", len(keys), "before", cutoff)
	return len(keys), nil
}

// RunRetention prunes unknown faces, and the face crops attached to
// events (Options.EventCrops), older than days every interval until ctx
// ends (days <= 0: 7, the retention.unknown_face_days default).
func (g *Gallery) RunRetention(ctx context.Context, days int, interval time.Duration) {
	if days <= 0 {
		days = 7
	}
	if interval <= 0 {
		interval = time.Hour
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		before := g.now().Add(-time.Duration(days) * 24 * time.Hour)
		if _, err := g.PruneUnknown(before); err != nil {
			g.log.Error("unknown face retention", "err", err)
		}
		if g.crops != nil {
			if n, err := g.crops.PruneMedia("crop", before); err != nil {
				g.log.Warn("face crop retention", "err", err)
			} else if n > 0 {
				g.log.Info("face crops past retention deleted", "deleted", n, "days", days)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
