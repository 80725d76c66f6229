// Package store is the gateway's durable event log: one bbolt file holding
// events in seq order, per-severity indexes for retention, dedup keys, dead
// letters, uplink cursors and media metadata. Writes go through one committer
// goroutine that packs many requests into one fsynced transaction.
package store

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/bbolt"

	"github.com/smartcommunity/warden/edge/event"
	"github.com/smartcommunity/warden/edge/health"
)

// Errors callers can test with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrLocked   = errors.New("store is locked by another process")
	ErrCorrupt  = errors.New("database file is corrupt")
	ErrReadOnly = errors.New("data dir is read-only")
	ErrClosed   = errors.New("store is closed")
)

// Options configure a Store. Only Dir is required.
type Options struct {
	Dir           string        // data dir: db at Dir/warden.db, media under Dir/media/
	OpenTimeout   time.Duration // bounded wait when the db file is locked (default 5s)
	MaxAge        time.Duration // retention by age (0 = keep forever)
	MaxBytes      int64         // byte budget of stored events (0 = unlimited)
	MediaMaxBytes int64         // media quota (0 = unlimited)
	// Protect optionally returns the lowest seq not yet delivered upstream;
	// critical events with seq >= it are never evicted.
	Protect     func() uint64
	DedupWindow time.Duration // how long dedup keys are remembered (default 15m)
	Logger      *slog.Logger
	Registerer  prometheus.Registerer
}

// Bucket names. Other packages keep their own buckets in the same file via DB().
var (
	bktMeta    = []byte("store.meta")
	bktEvents  = []byte("store.events")
	bktDedup   = []byte("store.dedup")
	bktDead    = []byte("store.deadletters")
	bktCursors = []byte("store.cursors")
	bktMedia   = []byte("store.media")
	bktIdx     = map[event.Severity][]byte{
		event.Info:     []byte("store.idx.info"),
		event.Warning:  []byte("store.idx.warning"),
		event.Critical: []byte("store.idx.critical"),
	}
	severities = []event.Severity{event.Info, event.Warning, event.Critical}

	keySeq = []byte("seq") // last assigned seq; never decreases
)

const (
	queueLen        = 4096
	maxBatchReqs    = 1000
	maxBatchBytes   = 4 << 20
	maxDeadLetters  = 10000
	deadPayloadMax  = 4 << 10
	defaultTimeout  = 5 * time.Second
	defaultDedupWin = 15 * time.Minute
	retainEvery     = time.Minute
	retainChunk     = 5000 // evictions per transaction, so the committer is not starved
)

// Store is the event log. All methods are safe for concurrent use.
type Store struct {
	opts    Options
	log     *slog.Logger
	follows followers // running Follow calls, for lag
	dir     string
	path    string
	media   string
	db      *bbolt.DB
	lock    *os.File
	metrics *metrics

	closeMu   sync.RWMutex // Submit holds R while queueing; Close holds W to stop intake
	closed    bool
	queue     chan *Request
	done      chan struct{} // closed when the committer exits
	closeOnce sync.Once
	closeErr  error

	lastSeq atomic.Uint64
	commits atomic.Uint64
	health  health.Commits

	changedMu sync.Mutex
	changed   chan struct{}

	statsMu  sync.Mutex
	count    map[event.Severity]int64
	bytes    map[event.Severity]int64
	deadN    int
	mediaMu  sync.Mutex // serialises media puts/deletes with the quota
	mediaN   int64
	mediaSum int64

	scanChunk   int // records per read transaction
	retainChunk int // evictions per write transaction

	retainMu   sync.Mutex    // one retention pass at a time
	overQuota  chan struct{} // nudges Run when the byte budget is exceeded
	overBudget atomic.Bool   // the last retention pass ended above MaxBytes
}

// Healthy is nil unless commits are failing (a full disk, I/O errors):
// then it says since when and why. It clears once commits succeed for
// health.Hold.
func (s *Store) Healthy() error { return s.health.Err("event store") }

// Stats is a snapshot of the store's size.
type Stats struct {
	Events      int64
	Bytes       int64
	BySeverity  map[event.Severity]int64
	OldestTime  time.Time // when the oldest kept event was committed (zero when empty)
	LastSeq     uint64
	MediaBytes  int64
	MediaFiles  int64
	DeadLetters int
	Commits     uint64 // number of group commits since Open
}

// Open opens (creating when needed) the store in opts.Dir.
func Open(opts Options) (*Store, error) {
	if opts.Dir == "" {
		return nil, errors.New("store: data dir is empty")
	}
	if opts.OpenTimeout <= 0 {
		opts.OpenTimeout = defaultTimeout
	}
	if opts.DedupWindow <= 0 {
		opts.DedupWindow = defaultDedupWin
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{
		opts:      opts,
		log:       opts.Logger.With("component", "store"),
		dir:       opts.Dir,
		path:      filepath.Join(opts.Dir, "warden.db"),
		media:     filepath.Join(opts.Dir, "media"),
		queue:     make(chan *Request, queueLen),
		done:      make(chan struct{}),
		changed:   make(chan struct{}),
		count:     map[event.Severity]int64{},
		bytes:     map[event.Severity]int64{},
		overQuota: make(chan struct{}, 1),

		scanChunk:   scanChunk,
		retainChunk: retainChunk,
	}
	if err := s.open(); err != nil {
		return nil, err
	}
	s.metrics = newMetrics(s, opts.Registerer)
	go s.committer()
	s.log.Info("store opened", "path", s.path, "last_seq", s.lastSeq.Load(), "events", s.Stats().Events)
	return s, nil
}

// Close commits everything already submitted, then closes. It is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closeMu.Lock()
		s.closed = true
		close(s.queue)
		s.closeMu.Unlock()
		<-s.done
		// Wake Changed() waiters for good: nothing will be committed any more.
		s.changedMu.Lock()
		close(s.changed)
		s.changedMu.Unlock()
		s.retainMu.Lock() // wait for a running retention pass
		s.closeErr = s.db.Close()
		s.retainMu.Unlock()
		if s.closeErr == nil {
			s.markClean()
		}
		s.metrics.unregister()
		s.unlock()
		if s.closeErr != nil {
			s.closeErr = fmt.Errorf("store: close %s: %w", s.path, s.closeErr)
		}
	})
	return s.closeErr
}

func (s *Store) isClosed() bool {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	return s.closed
}

// DB exposes the bbolt handle for packages that keep their own buckets in
// the same file. Bucket names starting with "store." belong to this package.
func (s *Store) DB() *bbolt.DB { return s.db }

// LastSeq is the highest seq ever committed (also after eviction).
func (s *Store) LastSeq() uint64 { return s.lastSeq.Load() }

// Changed returns a channel that is closed after the next commit that adds events.
func (s *Store) Changed() <-chan struct{} {
	s.changedMu.Lock()
	defer s.changedMu.Unlock()
	return s.changed
}

func (s *Store) broadcast() {
	s.changedMu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.changedMu.Unlock()
}

// Stats returns current counters.
func (s *Store) Stats() Stats {
	st := Stats{BySeverity: map[event.Severity]int64{}, LastSeq: s.lastSeq.Load(), Commits: s.commits.Load()}
	s.statsMu.Lock()
	for _, sev := range severities {
		st.BySeverity[sev] = s.count[sev]
		st.Events += s.count[sev]
		st.Bytes += s.bytes[sev]
	}
	st.DeadLetters = s.deadN
	s.statsMu.Unlock()
	s.mediaMu.Lock()
	st.MediaBytes, st.MediaFiles = s.mediaSum, s.mediaN
	s.mediaMu.Unlock()
	if st.Events > 0 && !s.isClosed() {
		_ = s.view(func(tx *bbolt.Tx) error {
			var oldest int64
			for _, sev := range severities {
				if k, v := tx.Bucket(bktIdx[sev]).Cursor().First(); k != nil {
					if t, _ := decodeIdx(v); oldest == 0 || t < oldest {
						oldest = t
					}
				}
			}
			if oldest != 0 {
				st.OldestTime = time.Unix(0, oldest)
			}
			return nil
		})
	}
	return st
}

// addStats applies committed deltas to the in-memory counters.
func (s *Store) addStats(dc, db map[event.Severity]int64, dead int) {
	s.statsMu.Lock()
	for sev, n := range dc {
		s.count[sev] += n
	}
	for sev, n := range db {
		s.bytes[sev] += n
	}
	s.deadN += dead
	s.statsMu.Unlock()
}

func (s *Store) totalBytes() int64 {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	var n int64
	for _, b := range s.bytes {
		n += b
	}
	return n
}

func (s *Store) totalEvents() int64 {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	var n int64
	for _, c := range s.count {
		n += c
	}
	return n
}
