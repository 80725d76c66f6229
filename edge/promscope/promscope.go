// Package promscope lends a component a Prometheus registerer that it hands
// back in one call when it closes, so a store or uplink reopened in the same
// process (a gateway restarted in place, a test) registers its metrics again
// with promauto instead of keeping a list of collectors by hand.
package promscope

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Scope registers on a parent registerer and remembers what it registered.
// A nil parent makes every registration a no-op, as promauto.With(nil) does.
type Scope struct {
	parent prometheus.Registerer
	mu     sync.Mutex
	done   []prometheus.Collector
}

// New returns a scope on parent (which may be nil).
func New(parent prometheus.Registerer) *Scope { return &Scope{parent: parent} }

// Register registers c on the parent and remembers it.
func (s *Scope) Register(c prometheus.Collector) error {
	if s.parent == nil {
		return nil
	}
	if err := s.parent.Register(c); err != nil {
		return err
	}
	s.mu.Lock()
	s.done = append(s.done, c)
	s.mu.Unlock()
	return nil
}

// MustRegister registers every collector and panics on the first error, as
// prometheus.Registry does; promauto calls it.
func (s *Scope) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := s.Register(c); err != nil {
			panic(err)
		}
	}
}

// Unregister removes one collector from the parent.
func (s *Scope) Unregister(c prometheus.Collector) bool {
	if s.parent == nil {
		return false
	}
	s.mu.Lock()
	for i, d := range s.done {
		if d == c {
			s.done = append(s.done[:i], s.done[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	return s.parent.Unregister(c)
}

// Close unregisters everything the scope registered. It is idempotent.
func (s *Scope) Close() {
	s.mu.Lock()
	done := s.done
	s.done = nil
	s.mu.Unlock()
	for _, c := range done {
		s.parent.Unregister(c)
	}
}
