package alarm

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"time"

	"go.etcd.io/bbolt"

	"github.com/smartcommunity/warden/edge/api"
)

// Quantiles of a duration sample, in seconds; null when the sample is empty.
type Quantiles struct {
	N   int      `json:"n"`
	P50 *float64 `json:"p50"`
	P90 *float64 `json:"p90"`
	Max *float64 `json:"max"`
}

// TypeStats summarises the alarms of one type (or all) opened in a day.
type TypeStats struct {
	Opened         int            `json:"opened"`
	Acknowledged   int            `json:"acknowledged"` // of those, acknowledged (ack, accept or on scene) by now
	Resolved       int            `json:"resolved"`     // of those, resolved by now
	Escalated      int            `json:"escalated"`
	TimeToAck      Quantiles      `json:"time_to_ack_seconds"`
	TimeToResolve  Quantiles      `json:"time_to_resolve_seconds"`
	Outcomes       map[string]int `json:"outcomes"`         // real, false_alarm, test, duplicate, unspecified
	FalseAlarmRate *float64       `json:"false_alarm_rate"` // false_alarm / resolved with an outcome; null when none

	ack, resolve []float64
}

// SourceStats is one device or camera's share of false alarms.
type SourceStats struct {
	Source         string  `json:"source"`
	Type           string  `json:"type"`
	Resolved       int     `json:"resolved"` // with an outcome
	FalseAlarms    int     `json:"false_alarms"`
	FalseAlarmRate float64 `json:"false_alarm_rate"`
}

// Stats is the daily summary of GET /api/v1/alarms/stats.
type Stats struct {
	Day     string                `json:"day"` // YYYY-MM-DD, the box's local time
	From    time.Time             `json:"from"`
	Until   time.Time             `json:"until"`
	All     *TypeStats            `json:"all"`
	Types   map[string]*TypeStats `json:"types"`
	Sources []SourceStats         `json:"sources"` // with a false alarm, most first
}

// statsAlarm is the part of a stored alarm the summary reads (no timeline).
type statsAlarm struct {
	Type         string              `json:"type"`
	Source       struct{ ID string } `json:"source"`
	OpenedAt     time.Time           `json:"opened_at"`
	Acknowledged *Step               `json:"acknowledged"`
	Resolved     *Step               `json:"resolved"`
	Outcome      string              `json:"outcome"`
	Escalated    bool                `json:"escalated"`
}

// DayStats summarises the alarms opened on the local day that contains day.
func (m *Manager) DayStats(day time.Time) (*Stats, error) {
	y, mo, d := day.Date()
	from := time.Date(y, mo, d, 0, 0, 0, 0, day.Location())
	until := from.AddDate(0, 0, 1)
	st := &Stats{Day: from.Format(time.DateOnly), From: from.UTC(), Until: until.UTC(), All: newTypeStats(), Types: map[string]*TypeStats{}}
	type srcKey struct{ src, typ string }
	srcs := map[srcKey]*SourceStats{}
	err := m.o.DB.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bktAlarms).ForEach(func(k, v []byte) error {
			var a statsAlarm
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("alarm %s: %w", k, err)
			}
			if a.OpenedAt.Before(from) || !a.OpenedAt.Before(until) {
				return nil
			}
			ts := st.Types[a.Type]
			if ts == nil {
				ts = newTypeStats()
				st.Types[a.Type] = ts
			}
			for _, s := range []*TypeStats{st.All, ts} {
				s.add(&a)
			}
			if a.Resolved != nil && a.Outcome != "" {
				k := srcKey{a.Source.ID, a.Type}
				s := srcs[k]
				if s == nil {
					s = &SourceStats{Source: a.Source.ID, Type: a.Type}
					srcs[k] = s
				}
				s.Resolved++
				if a.Outcome == OutcomeFalse {
					s.FalseAlarms++
				}
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("alarm stats: %w", err)
	}
	for _, s := range append([]*TypeStats{st.All}, mapValues(st.Types)...) {
		s.finish()
	}
	for _, s := range srcs {
		if s.FalseAlarms > 0 {
			s.FalseAlarmRate = float64(s.FalseAlarms) / float64(s.Resolved)
			st.Sources = append(st.Sources, *s)
		}
	}
	sort.Slice(st.Sources, func(i, j int) bool {
		a, b := st.Sources[i], st.Sources[j]
		if a.FalseAlarms != b.FalseAlarms {
			return a.FalseAlarms > b.FalseAlarms
		}
		return a.Source < b.Source
	})
	if st.Sources == nil {
		st.Sources = []SourceStats{}
	}
	return st, nil
}

func mapValues(m map[string]*TypeStats) []*TypeStats {
	out := make([]*TypeStats, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func newTypeStats() *TypeStats { return &TypeStats{Outcomes: map[string]int{}} }

func (s *TypeStats) add(a *statsAlarm) {
	s.Opened++
	if a.Escalated {
		s.Escalated++
	}
	if a.Acknowledged != nil {
		s.Acknowledged++
		s.ack = append(s.ack, a.Acknowledged.At.Sub(a.OpenedAt).Seconds())
	}
	if a.Resolved != nil {
		s.Resolved++
		s.resolve = append(s.resolve, a.Resolved.At.Sub(a.OpenedAt).Seconds())
		o := a.Outcome
		if o == "" {
			o = "unspecified"
		}
		s.Outcomes[o]++
	}
}

func (s *TypeStats) finish() {
	s.TimeToAck, s.TimeToResolve = quantiles(s.ack), quantiles(s.resolve)
	said := 0
	for o, n := range s.Outcomes {
		if o != "unspecified" {
			said += n
		}
	}
	if said > 0 {
		r := float64(s.Outcomes[OutcomeFalse]) / float64(said)
		s.FalseAlarmRate = &r
	}
}

func quantiles(xs []float64) Quantiles {
	q := Quantiles{N: len(xs)}
	if len(xs) == 0 {
		return q
	}
	slices.Sort(xs)
	at := func(p float64) *float64 {
		v := xs[int(math.Ceil(p*float64(len(xs))))-1]
		v = math.Round(v*10) / 10
		return &v
	}
	q.P50, q.P90, q.Max = at(0.5), at(0.9), at(1)
	return q
}

func (m *Manager) httpStats(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for k := range q {
		if k != "day" {
			api.WriteError(w, api.Errorf(http.StatusBadRequest, api.CodeBadRequest, "unknown parameter %q (day)", k))
			return
		}
	}
	day := m.now()
	if v := q.Get("day"); v != "" {
		d, err := time.ParseInLocation(time.DateOnly, v, time.Local)
		if err != nil {
			api.WriteError(w, api.Errorf(http.StatusBadRequest, api.CodeBadRequest, "parameter \"day\": %q is not YYYY-MM-DD", v))
			return
		}
		day = d
	}
	st, err := m.DayStats(day.Local())
	if err != nil {
		m.writeErr(w, r, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, st)
}
