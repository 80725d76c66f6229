package store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/oklog/ulid/v2"
	"go.etcd.io/bbolt"

	"github.com/smartcommunity/warden/edge/event"
)

// MediaInfo describes a stored snapshot or clip. ID is a ULID, so media
// sort by creation.
type MediaInfo struct {
	ID          string    `json:"id"`
	Kind        string    `json:"kind"`
	ContentType string    `json:"content_type"`
	SHA256      string    `json:"sha256"`
	Size        int64     `json:"size"`
	Created     time.Time `json:"created"`
}

func decodeMedia(v []byte) (MediaInfo, error) {
	var mi MediaInfo
	err := json.Unmarshal(v, &mi)
	return mi, err
}

const tmpPrefix = ".tmp-"

// PutMedia stores data as an fsynced file under Dir/media with its metadata
// in bbolt. When over MediaMaxBytes the oldest media are evicted.
func (s *Store) PutMedia(kind, contentType string, data []byte) (MediaInfo, error) {
	if s.isClosed() {
		return MediaInfo{}, ErrClosed
	}
	now := time.Now()
	sum := sha256.Sum256(data)
	mi := MediaInfo{ID: event.NewID(now), Kind: kind, ContentType: contentType,
		SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data)), Created: now.UTC()}
	tmp := filepath.Join(s.media, tmpPrefix+mi.ID)
	err := writeFileSync(tmp, data)
	if err == nil {
		err = os.Rename(tmp, s.mediaPath(mi.ID))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return MediaInfo{}, s.mediaErr("put", err)
	}
	return s.addMedia(mi)
}

// PutMediaFile moves the file at path (on the same filesystem as Dir) into
// the media store.
func (s *Store) PutMediaFile(kind, contentType, path string) (MediaInfo, error) {
	if s.isClosed() {
		return MediaInfo{}, ErrClosed
	}
	f, err := os.Open(path)
	if err != nil {
		return MediaInfo{}, s.mediaErr("put "+path, err)
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err == nil {
		err = f.Sync()
	}
	_ = f.Close()
	if err != nil {
		return MediaInfo{}, s.mediaErr("put "+path, err)
	}
	now := time.Now()
	mi := MediaInfo{ID: event.NewID(now), Kind: kind, ContentType: contentType,
		SHA256: hex.EncodeToString(h.Sum(nil)), Size: n, Created: now.UTC()}
	if err := os.Rename(path, s.mediaPath(mi.ID)); err != nil {
		if errors.Is(err, syscall.EXDEV) {
			return MediaInfo{}, s.mediaErr("put "+path, fmt.Errorf("not on the same filesystem as %s: %w", s.media, err))
		}
		return MediaInfo{}, s.mediaErr("put "+path, err)
	}
	return s.addMedia(mi)
}

// addMedia records mi (whose file is in place) and enforces the quota.
func (s *Store) addMedia(mi MediaInfo) (MediaInfo, error) {
	if err := syncDir(s.media); err != nil {
		_ = os.Remove(s.mediaPath(mi.ID))
		return MediaInfo{}, s.mediaErr("put", err)
	}
	s.mediaMu.Lock()
	defer s.mediaMu.Unlock()
	quota := s.opts.MediaMaxBytes
	if quota > 0 && mi.Size > quota {
		_ = os.Remove(s.mediaPath(mi.ID))
		return MediaInfo{}, s.mediaErr("put", fmt.Errorf("%s of %d bytes is larger than the whole media quota (%d bytes)", mi.Kind, mi.Size, quota))
	}
	var evicted []MediaInfo
	err := s.update(func(tx *bbolt.Tx) error {
		evicted = nil
		b := tx.Bucket(bktMedia)
		v, err := json.Marshal(mi)
		if err != nil {
			return err
		}
		if err := b.Put([]byte(mi.ID), v); err != nil {
			return err
		}
		total := s.mediaSum + mi.Size
		c := b.Cursor()
		for k, v := c.First(); k != nil && quota > 0 && total > quota; k, v = c.First() {
			if string(k) == mi.ID {
				break
			}
			old, _ := decodeMedia(v)
			if err := c.Delete(); err != nil {
				return err
			}
			old.ID = string(k)
			total -= old.Size
			evicted = append(evicted, old)
		}
		return nil
	})
	if err != nil {
		_ = os.Remove(s.mediaPath(mi.ID))
		return MediaInfo{}, s.mediaErr("put", err)
	}
	s.mediaN++
	s.mediaSum += mi.Size
	for _, old := range evicted {
		_ = os.Remove(s.mediaPath(old.ID))
		s.mediaN--
		s.mediaSum -= old.Size
		s.metrics.mediaEvicted.Inc()
	}
	if len(evicted) > 0 {
		s.log.Info("media quota evicted oldest media", "evicted", len(evicted), "media_bytes", s.mediaSum, "quota", quota)
	}
	return mi, nil
}

// OpenMedia opens a stored media file for reading.
func (s *Store) OpenMedia(id string) (*os.File, MediaInfo, error) {
	mi, err := s.mediaInfo(id)
	if err != nil {
		return nil, MediaInfo{}, err
	}
	f, err := os.Open(s.mediaPath(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, MediaInfo{}, fmt.Errorf("store: media %s: file missing: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, MediaInfo{}, s.mediaErr("open "+id, err)
	}
	return f, mi, nil
}

// DeleteMedia removes a media file and its metadata.
func (s *Store) DeleteMedia(id string) error {
	if _, err := s.mediaInfo(id); err != nil {
		return err
	}
	s.mediaMu.Lock()
	defer s.mediaMu.Unlock()
	var mi MediaInfo
	err := s.update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bktMedia)
		v := b.Get([]byte(id))
		if v == nil {
			return fmt.Errorf("store: media %s: %w", id, ErrNotFound)
		}
		mi, _ = decodeMedia(v)
		return b.Delete([]byte(id))
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return err
		}
		return s.mediaErr("delete "+id, err)
	}
	s.mediaN--
	s.mediaSum -= mi.Size
	if err := os.Remove(s.mediaPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return s.mediaErr("delete "+id, err)
	}
	return nil
}

func (s *Store) mediaInfo(id string) (MediaInfo, error) {
	if _, err := ulid.ParseStrict(id); err != nil {
		return MediaInfo{}, fmt.Errorf("store: media %q: %w", id, ErrNotFound)
	}
	var mi MediaInfo
	err := s.view(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bktMedia).Get([]byte(id))
		if v == nil {
			return fmt.Errorf("store: media %s: %w", id, ErrNotFound)
		}
		var err error
		if mi, err = decodeMedia(v); err != nil {
			return fmt.Errorf("store: media %s: decode: %v: %w", id, err, ErrCorrupt)
		}
		return nil
	})
	return mi, err
}

func (s *Store) mediaPath(id string) string { return filepath.Join(s.media, id) }

func (s *Store) mediaErr(what string, err error) error {
	if s.metrics != nil {
		s.metrics.errors.WithLabelValues("media").Inc()
	}
	return fmt.Errorf("store: media %s: %w", what, err)
}

// cleanMediaDir removes files left by a crash between writing a file and
// committing its metadata.
func (s *Store) cleanMediaDir() {
	ents, err := os.ReadDir(s.media)
	if err != nil {
		return
	}
	known := map[string]bool{}
	_ = s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bktMedia).ForEach(func(k, _ []byte) error {
			known[string(k)] = true
			return nil
		})
	})
	for _, e := range ents {
		name := e.Name()
		if e.Type().IsRegular() && (strings.HasPrefix(name, tmpPrefix) || !known[name]) {
			if os.Remove(filepath.Join(s.media, name)) == nil {
				s.log.Info("removed orphaned media file", "file", name)
			}
		}
	}
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// PruneMedia deletes the media of one kind created before a time, files
// first, and returns how many went. Face crops use it: personal data is kept
// for its own retention period, not until the quota pushes it out.
func (s *Store) PruneMedia(kind string, before time.Time) (int, error) {
	var ids []string
	err := s.view(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bktMedia).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			mi, err := decodeMedia(v)
			if err != nil {
				continue
			}
			if !mi.Created.Before(before) {
				break // ULID keys sort by creation time
			}
			if mi.Kind == kind {
				ids = append(ids, string(k))
			}
		}
		return nil
	})
	if err != nil {
		return 0, s.mediaErr("prune", err)
	}
	n := 0
	for _, id := range ids {
		if err := s.DeleteMedia(id); err != nil && !errors.Is(err, ErrNotFound) {
			return n, err
		}
		n++
	}
	return n, nil
}
