package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/smartcommunity/warden/edge/event"
)

const (
	streamRoute = "GET /api/v1/events/stream"
	streamBatch = 500
)

// liveMsg is a non-event message (an alarm change) for SSE clients. stamp is
// the store's LastSeq when it was published: a stream sends it right after
// the events up to stamp, so events and live messages form one order that a
// resume by event seq can reproduce from the ring.
type liveMsg struct {
	idx   uint64
	kind  string
	id    uint64
	stamp uint64
	data  []byte
}

// liveHub keeps the last n live messages in a ring and wakes streams on publish.
type liveHub struct {
	events Events
	mu     sync.Mutex
	ring   []liveMsg
	next   uint64 // index the next message gets
	notify chan struct{}
}

func newLiveHub(n int, ev Events) *liveHub {
	return &liveHub{events: ev, ring: make([]liveMsg, n), notify: make(chan struct{})}
}

func (h *liveHub) publish(kind string, id uint64, data []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var stamp uint64
	if h.events != nil {
		stamp = h.events.LastSeq()
	}
	h.ring[h.next%uint64(len(h.ring))] = liveMsg{idx: h.next, kind: kind, id: id, stamp: stamp, data: data}
	h.next++
	close(h.notify)
	h.notify = make(chan struct{})
}

// oldest is the lowest index still in the ring.
func (h *liveHub) oldest() uint64 {
	if n := uint64(len(h.ring)); h.next > n {
		return h.next - n
	}
	return 0
}

// startAt is the index of the first kept message stamped at or after seq.
func (h *liveHub) startAt(seq uint64) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := h.oldest(); i < h.next; i++ {
		if h.ring[i%uint64(len(h.ring))].stamp >= seq {
			return i
		}
	}
	return h.next
}

func (h *liveHub) head() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.next
}

// take returns the messages from index from on whose stamp is at most pos,
// the index to continue from, how many were lost to the ring wrapping, and
// the channel closed on the next publish.
func (h *liveHub) take(from, pos uint64) (msgs []liveMsg, next, lost uint64, notify <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if o := h.oldest(); from < o {
		lost, from = o-from, o
	}
	for ; from < h.next; from++ {
		m := h.ring[from%uint64(len(h.ring))]
		if m.stamp > pos {
			break
		}
		msgs = append(msgs, m)
	}
	return msgs, from, lost, h.notify
}

// PublishLive sends a non-event message (e.g. an alarm state change) to every
// SSE client as "event: <kind>" with data as given (JSON). id is the
// publisher's own number for the message; it is not the SSE id, which is
// always an event seq so that Last-Event-ID stays a seq. The last LiveRing
// messages are kept in memory so a client that resumes gets the ones after
// its Last-Event-ID; older ones are gone (read the alarm list instead).
func (s *Server) PublishLive(kind string, id uint64, data []byte) {
	if kind == "" || strings.ContainsAny(kind, "\r\n:") {
		s.log.Error("api: live message with a bad kind dropped", "kind", kind, "id", id)
		return
	}
	s.live.publish(kind, id, bytes.Clone(data))
}

// startStream registers a stream unless the server is shutting down.
func (s *Server) startStream() bool {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	select {
	case <-s.closing:
		return false
	default:
	}
	s.streams.Add(1)
	return true
}

func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	ev := s.opts.Events
	if ev == nil {
		WriteError(w, Errorf(http.StatusServiceUnavailable, CodeUnavailable, "event store not configured"))
		return
	}
	q, err := newQuery(r, append([]string{"after"}, filterParams...)...)
	if err != nil {
		WriteError(w, err)
		return
	}
	f, err := q.filter()
	if err != nil {
		WriteError(w, err)
		return
	}
	// Last-Event-ID wins over ?after=: a reconnecting EventSource keeps the URL.
	var cursor uint64
	resume := false
	if h := r.Header.Get("Last-Event-ID"); h != "" {
		n, err := strconv.ParseUint(strings.TrimSpace(h), 10, 64)
		if err != nil {
			WriteError(w, Errorf(http.StatusBadRequest, CodeBadRequest, "header \"Last-Event-ID\": %q is not an event seq", h))
			return
		}
		cursor, resume = n, true
	} else if q.str("after") != "" {
		if cursor, err = q.uint("after", 0); err != nil {
			WriteError(w, err)
			return
		}
		resume = true
	}
	if !s.startStream() {
		WriteError(w, Errorf(http.StatusServiceUnavailable, CodeUnavailable, "server is shutting down"))
		return
	}
	defer s.streams.Done()
	s.met.sseClients.Inc()
	defer s.met.sseClients.Dec()

	var liveIdx uint64
	if resume {
		liveIdx = s.live.startAt(cursor)
	} else {
		liveIdx = s.live.head()
		cursor = ev.LastSeq()
	}

	rc := http.NewResponseController(w)
	// The server's WriteTimeout is for ordinary requests; a stream lives
	// long and gets a deadline per write instead (extend). net/http already
	// clears the read deadline once the handler runs.
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 32<<10)
	extend := func() {
		if err := rc.SetWriteDeadline(time.Now().Add(s.opts.SSEWriteTimeout)); err != nil {
			s.log.Debug("api: stream write deadline", "err", err)
		}
	}
	flush := func() bool {
		extend()
		if err := bw.Flush(); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	bw.WriteString("retry: 3000\n\n")
	if !flush() {
		return
	}
	p, _ := PrincipalFrom(r.Context())
	s.log.Info("api: stream opened", "principal", p.Name, "after", cursor, "resume", resume, "type", f.TypePrefix)
	defer s.log.Info("api: stream closed", "principal", p.Name, "cursor", cursor)

	hb := time.NewTicker(s.opts.Heartbeat)
	defer hb.Stop()
	ctx := r.Context()
	tail := ev.Tail("sse "+p.Name, cursor)
	defer tail.Close()
	for {
		extend()
		last := ev.LastSeq()
		evs, err := tail.Read(streamBatch, f)
		if err != nil {
			s.log.Error("api: stream read events", "after", cursor, "err", err)
			return
		}
		for i := range evs {
			if !writeEvent(bw, &evs[i]) {
				return
			}
		}
		cursor = tail.After()
		caughtUp := len(evs) < streamBatch
		if caughtUp {
			// Every matching event up to last has been sent (the store
			// publishes LastSeq after its commit): skip the rest next time.
			cursor = max(cursor, last)
			tail.Seek(cursor)
		}
		msgs, nextIdx, lost, notify := s.live.take(liveIdx, cursor)
		if lost > 0 {
			s.met.liveDropped.Add(float64(lost))
			s.log.Warn("api: stream fell behind the live ring", "principal", p.Name, "lost", lost)
		}
		liveIdx = nextIdx
		for _, m := range msgs {
			writeMessage(bw, m.kind, "", m.data)
		}
		if !flush() {
			return
		}
		tail.Handled(cursor)
		if !caughtUp {
			select {
			case <-ctx.Done():
				return
			case <-s.closing:
				return
			default:
				continue
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-s.closing:
			return
		case <-tail.Changed():
		case <-notify:
		case <-hb.C:
			bw.WriteString(": heartbeat\n\n")
			if !flush() {
				return
			}
		}
	}
}

func writeEvent(bw *bufio.Writer, e *event.Event) bool {
	b, err := json.Marshal(e)
	if err != nil {
		return false
	}
	writeMessage(bw, "event", strconv.FormatUint(e.Seq, 10), b)
	return true
}

// writeMessage writes one SSE message; data may span lines.
func writeMessage(bw *bufio.Writer, kind, id string, data []byte) {
	if id != "" {
		bw.WriteString("id: " + id + "\n")
	}
	bw.WriteString("event: " + kind + "\n")
	for _, line := range bytes.Split(bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n")), []byte("\n")) {
		bw.WriteString("data: ")
		bw.Write(bytes.ReplaceAll(line, []byte("\r"), nil))
		bw.WriteString("\n")
	}
	bw.WriteString("\n")
}
