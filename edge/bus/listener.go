package bus

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// maxHandshakes bounds connections that have not sent their CONNECT yet.
// With the packet limit it bounds the memory strangers can make the broker
// hold: at most maxHandshakes × max_packet_bytes (16 MiB at 256 KiB).
const maxHandshakes = 64

// guardedTCP is mochi's TCP listener with what mochi lacks before a client
// is known: a deadline for the CONNECT, and a cap on connections waiting to
// send one. Beyond the cap a new connection is closed at once.
type guardedTCP struct {
	*listeners.TCP
	timeout time.Duration
	slots   chan struct{}
	refused *prometheus.CounterVec
	log     *slog.Logger
	limit   *rate.Limiter
}

func newGuardedTCP(addr string, timeout time.Duration, refused *prometheus.CounterVec, log *slog.Logger) *guardedTCP {
	return &guardedTCP{
		TCP:     listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr}),
		timeout: timeout, slots: make(chan struct{}, maxHandshakes),
		refused: refused, log: log, limit: rate.NewLimiter(rate.Every(10*time.Second), 3),
	}
}

// Serve wraps each accepted connection before mochi sees it.
func (l *guardedTCP) Serve(establish listeners.EstablishFn) {
	l.TCP.Serve(func(id string, c net.Conn) error {
		select {
		case l.slots <- struct{}{}:
		default:
			l.refused.WithLabelValues("handshakes").Inc()
			if l.limit.Allow() {
				l.log.Warn("mqtt: too many connections waiting to send CONNECT; closing new ones", "max", maxHandshakes, "remote", c.RemoteAddr().String())
			}
			_ = c.Close()
			return nil
		}
		g := &guardedConn{Conn: c, release: func() { <-l.slots }}
		_ = c.SetDeadline(time.Now().Add(l.timeout))
		err := establish(id, g)
		g.done()
		switch {
		case err == nil, errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		case errors.Is(err, packets.ErrPacketTooLarge):
			l.refused.WithLabelValues("packet_too_large").Inc()
			l.log.Warn("mqtt: packet over max_packet_bytes; connection closed", "remote", c.RemoteAddr().String())
		case isTimeout(err):
			l.refused.WithLabelValues("timeout").Inc()
			if l.limit.Allow() {
				l.log.Warn("mqtt: connection timed out", "remote", c.RemoteAddr().String(), "error", err)
			}
		default:
			l.log.Debug("mqtt: connection ended", "remote", c.RemoteAddr().String(), "error", err)
		}
		return nil // logged here: mochi would warn on every ordinary disconnect
	})
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// guardedConn gives back its handshake slot when mochi has read the CONNECT
// (it then sets the keep-alive deadline) or when the connection ends.
type guardedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *guardedConn) done() { c.once.Do(c.release) }

// SetDeadline is mochi's keep-alive deadline, set after it read CONNECT.
func (c *guardedConn) SetDeadline(t time.Time) error {
	c.done()
	return c.Conn.SetDeadline(t)
}
