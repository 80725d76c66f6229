// Package schedule is time-of-day windows on days of the week, shared by
// rule suppression, zone arming and every config.Window (gate hours, notify
// routes, wristband activity): "22:00-06:00" on mon..fri, where a
// window that ends before it starts runs overnight into the next day.
package schedule

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Window is [From, To) minutes of the day on Days; an overnight window
// (To <= From) belongs to the day it starts on.
type Window struct {
	Days     []time.Weekday // empty = every day
	From, To int            // minutes since midnight; To may be 1440 (24:00)
}

var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
	"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday, "wednesday": time.Wednesday,
	"thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday,
}

// ParseDay reads mon, tue, … or monday, tuesday, … (any case).
func ParseDay(s string) (time.Weekday, error) {
	d, ok := dayNames[strings.ToLower(strings.TrimSpace(s))]
	if !ok {
		return 0, fmt.Errorf("%q is not a day (mon, tue, wed, thu, fri, sat, sun)", s)
	}
	return d, nil
}

// ParseClock reads "HH:MM" (00:00 to 24:00) as minutes since midnight.
func ParseClock(s string) (int, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || len(m) != 2 || hh < 0 || mm < 0 || mm > 59 || hh > 24 || (hh == 24 && mm != 0) {
		return 0, fmt.Errorf("%q is not a time of day like 07:30 (00:00 to 24:00)", s)
	}
	return hh*60 + mm, nil
}

// New builds a window from its config form.
func New(days []string, from, to string) (Window, error) {
	var w Window
	for _, d := range days {
		wd, err := ParseDay(d)
		if err != nil {
			return w, err
		}
		if !slices.Contains(w.Days, wd) {
			w.Days = append(w.Days, wd)
		}
	}
	var err error
	if w.From, err = ParseClock(from); err != nil {
		return w, fmt.Errorf("from: %w", err)
	}
	if w.To, err = ParseClock(to); err != nil {
		return w, fmt.Errorf("to: %w", err)
	}
	if w.From == w.To {
		return w, fmt.Errorf("from and to are both %s: an empty window (use 00:00-24:00 for the whole day)", from)
	}
	if w.From == 24*60 {
		return w, fmt.Errorf("from: 24:00 is the end of a day, not a start")
	}
	return w, nil
}

// Parse reads the short form "07:00-08:30" or "mon,tue 07:00-08:30".
func Parse(s string) (Window, error) {
	s = strings.TrimSpace(s)
	var days []string
	if d, rest, ok := strings.Cut(s, " "); ok {
		days = strings.Split(d, ",")
		s = strings.TrimSpace(rest)
	}
	from, to, ok := strings.Cut(s, "-")
	if !ok {
		return Window{}, fmt.Errorf("%q is not a window like 07:00-08:30 or \"sat,sun 10:00-12:00\"", s)
	}
	return New(days, from, to)
}

func (w Window) onDay(d time.Weekday) bool { return len(w.Days) == 0 || slices.Contains(w.Days, d) }

// Contains reports whether t (in its own location) is inside the window.
func (w Window) Contains(t time.Time) bool {
	m := t.Hour()*60 + t.Minute()
	if w.From < w.To {
		return m >= w.From && m < w.To && w.onDay(t.Weekday())
	}
	// Overnight: the evening part is on the start day, the morning part
	// belongs to the day before.
	if m >= w.From {
		return w.onDay(t.Weekday())
	}
	return m < w.To && w.onDay((t.Weekday()+6)%7)
}

// Start is when the occurrence of the window that contains t began (in
// t's location); the zero time when t is outside.
func (w Window) Start(t time.Time) time.Time {
	if !w.Contains(t) {
		return time.Time{}
	}
	y, mo, d := t.Date()
	if w.From >= w.To && t.Hour()*60+t.Minute() < w.To {
		d-- // the morning part of an overnight window began yesterday
	}
	return time.Date(y, mo, d, 0, 0, 0, 0, t.Location()).Add(time.Duration(w.From) * time.Minute)
}

func (w Window) String() string {
	var ds []string
	for _, d := range w.Days {
		ds = append(ds, strings.ToLower(d.String()[:3]))
	}
	s := fmt.Sprintf("%02d:%02d-%02d:%02d", w.From/60, w.From%60, w.To/60, w.To%60)
	if len(ds) > 0 {
		s = strings.Join(ds, ",") + " " + s
	}
	return s
}

// Set is a list of windows; it contains t when any window does.
type Set []Window

// Contains reports whether t is in any window.
func (s Set) Contains(t time.Time) bool {
	for _, w := range s {
		if w.Contains(t) {
			return true
		}
	}
	return false
}

// NextChange returns the first minute boundary after t at which
// s.Contains changes, looking up to 8 days ahead; ok is false when it never
// changes. Minute resolution is what the windows have.
func (s Set) NextChange(t time.Time) (time.Time, bool) {
	cur := s.Contains(t)
	c := t.Truncate(time.Minute)
	for i := 0; i < 8*24*60; i++ {
		c = c.Add(time.Minute)
		if s.Contains(c) != cur {
			return c, true
		}
	}
	return time.Time{}, false
}
