package mqtt

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/store"
	"github.com/smartcommunity/warden/edge/uplink"
)

const (
	defaultTopic = "warden/{gateway}/uplink/{type}"
	ackTimeout   = 30 * time.Second
)

// mqttTarget publishes each event with QoS 1, pipelined: up to Batch
// messages in flight, and the cursor is the highest seq whose PUBACK came
// back with every earlier one acked too. Any trouble drops the session and
// resends from the cursor, in seq order.
type mqttTarget struct {
	t     *uplink.Target
	cfg   *config.UplinkMQTT
	opts  *paho.ClientOptions
	topic string
}

//go:embed sample.yaml
var sample []byte

func init() {
	uplink.Register(uplink.Kind{Name: "mqtt", Order: 2, New: New, Options: config.UplinkMQTT{}, Sample: sample})
}

// New builds the MQTT target when the uplink config has mqtt.
func New(e *uplink.Env) ([]uplink.Runner, error) {
	if e.Config.MQTT == nil {
		return nil, nil
	}
	t, err := newMQTTTarget(e, e.Config.MQTT)
	if err != nil {
		return nil, err
	}
	return []uplink.Runner{t}, nil
}

func newMQTTTarget(e *uplink.Env, c *config.UplinkMQTT) (*mqttTarget, error) {
	if c.Broker == "" {
		return nil, errors.New("uplink mqtt: broker is empty")
	}
	tc, err := uplink.TLSConfig(c.TLS)
	if err != nil {
		return nil, fmt.Errorf("uplink mqtt: %w", err)
	}
	id := c.ClientID
	if id == "" {
		id = "warden-" + e.Gateway + "-uplink"
	}
	o := paho.NewClientOptions().AddBroker(c.Broker).SetClientID(id).
		SetUsername(c.Username).SetPassword(c.Password).
		SetCleanSession(true). // we resend from the cursor ourselves
		SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectTimeout(10 * time.Second).SetKeepAlive(30 * time.Second).
		SetWriteTimeout(ackTimeout)
	if tc != nil {
		o.SetTLSConfig(tc)
	}
	topic := c.Topic
	if topic == "" {
		topic = defaultTopic
	}
	topic = strings.NewReplacer("{gateway}", e.Gateway, "{site}", e.Site).Replace(topic)
	t, err := e.NewTarget("mqtt", "mqtt")
	if err != nil {
		return nil, err
	}
	return &mqttTarget{t: t, cfg: c, opts: o, topic: topic}, nil
}

func (m *mqttTarget) topicFor(r store.Raw) string {
	if !strings.Contains(m.topic, "{") {
		return m.topic
	}
	return strings.NewReplacer("{type}", r.Type, "{severity}", string(r.Severity)).Replace(m.topic)
}

func (m *mqttTarget) Run(ctx context.Context) error { return m.t.Sessions(ctx, m.session) }

type inflight struct {
	seq uint64
	tok paho.Token
	t   time.Time // event time, for the oldest-age gauge
}

// session connects and streams until something fails; it reports whether
// any event was acked.
func (m *mqttTarget) session(ctx context.Context) (progressed bool, err error) {
	lost := make(chan error, 1)
	opts := *m.opts
	opts.SetConnectionLostHandler(func(_ paho.Client, err error) {
		select {
		case lost <- err:
		default:
		}
	})
	c := paho.NewClient(&opts)
	tok := c.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		return false, ctx.Err()
	}
	if err := tok.Error(); err != nil {
		return false, fmt.Errorf("connect %s: %w", m.cfg.Broker, err)
	}
	defer c.Disconnect(250)
	defer func() {
		if perr := m.t.Persist(context.WithoutCancel(ctx)); perr != nil && err == nil {
			err = perr
		}
	}()
	m.t.Log().Info("uplink mqtt connected", "broker", m.cfg.Broker, "cursor", m.t.Cursor())

	window := m.t.Config().Batch
	var q []inflight
	m.t.Tail().Seek(m.t.Cursor())
	ackTimer := time.NewTimer(ackTimeout)
	defer ackTimer.Stop()
	for {
		if len(q) < window {
			batch, skipped, err := m.t.Tail().ReadRaw(window - len(q))
			if err != nil {
				return progressed, fmt.Errorf("read backlog: %w", err)
			}
			m.t.Skipped(int(skipped))
			for _, r := range batch {
				q = append(q, inflight{seq: r.Seq, tok: c.Publish(m.topicFor(r), 1, false, r.JSON), t: r.Time})
			}
			if len(q) > 0 && m.t.Oldest().IsZero() {
				m.t.SetOldest(q[0].t)
			}
			if len(batch) > 0 && len(q) < window {
				continue // there may be more already
			}
		}
		var headDone <-chan struct{}
		if len(q) > 0 {
			headDone = q[0].tok.Done()
		} else {
			m.t.SetOldest(time.Time{})
		}
		if !ackTimer.Stop() {
			select {
			case <-ackTimer.C:
			default:
			}
		}
		ackTimer.Reset(ackTimeout)
		var wake <-chan struct{}
		if len(q) < window {
			wake = m.t.Tail().Changed()
		}
		select {
		case <-ctx.Done():
			return progressed, ctx.Err()
		case err := <-lost:
			return progressed, fmt.Errorf("connection lost: %w", err)
		case <-ackTimer.C:
			if len(q) > 0 {
				return progressed, fmt.Errorf("no PUBACK for seq %d within %s", q[0].seq, ackTimeout)
			}
		case <-wake:
		case <-headDone:
			n := 0
			for n < len(q) && isDone(q[n].tok) {
				if err := q[n].tok.Error(); err != nil {
					m.ackUpTo(ctx, q[:n])
					return progressed || n > 0, fmt.Errorf("publish seq %d: %w", q[n].seq, err)
				}
				n++
			}
			m.ackUpTo(ctx, q[:n])
			progressed = true
			q = q[n:]
			if len(q) > 0 {
				m.t.SetOldest(q[0].t)
			}
		}
	}
}

func (m *mqttTarget) ackUpTo(ctx context.Context, acked []inflight) {
	if len(acked) == 0 {
		return
	}
	// Persist lazily (at most every 100 ms) and when the session ends.
	_ = m.t.Ack(ctx, acked[len(acked)-1].seq, len(acked), false)
}

func isDone(t paho.Token) bool {
	select {
	case <-t.Done():
		return true
	default:
		return false
	}
}
