package schedule

import (
	"testing"
	"time"
)

func TestOvernightWrapAndDays(t *testing.T) {
	w, err := New([]string{"mon", "Friday"}, "22:00", "06:00")
	if err != nil {
		t.Fatal(err)
	}
	at := func(day, h, m int) time.Time { return time.Date(2026, 11, day, h, m, 0, 0, time.UTC) } // 23rd is a Monday
	cases := []struct {
		t    time.Time
		want bool
	}{
		{at(23, 21, 59), false},
		{at(23, 22, 0), true},  // Monday evening
		{at(24, 5, 59), true},  // Tuesday morning: Monday's window
		{at(24, 6, 0), false},  // end is exclusive
		{at(24, 23, 0), false}, // Tuesday evening: not a listed day
		{at(25, 3, 0), false},  // Wednesday morning: Tuesday's window, not listed
		{at(27, 23, 30), true}, // Friday evening
		{at(28, 2, 0), true},   // Saturday morning, Friday's window
		{at(23, 3, 0), false},  // Monday morning belongs to Sunday
	}
	for _, c := range cases {
		if got := w.Contains(c.t); got != c.want {
			t.Errorf("%s %s: %v, want %v", c.t.Weekday(), c.t.Format("15:04"), got, c.want)
		}
	}
	all, _ := New(nil, "00:00", "24:00")
	if !all.Contains(at(23, 0, 0)) || !all.Contains(at(23, 23, 59)) {
		t.Error("00:00-24:00 is the whole day")
	}
}

func TestParse(t *testing.T) {
	for in, want := range map[string]string{
		"07:00-08:30":           "07:00-08:30",
		"sat,sun 10:00-12:00":   "sat,sun 10:00-12:00",
		" mon 22:00-06:00 ":     "mon 22:00-06:00",
		"wednesday 00:00-24:00": "wed 00:00-24:00",
	} {
		w, err := Parse(in)
		if err != nil || w.String() != want {
			t.Errorf("Parse(%q) = %v, %v; want %s", in, w, err, want)
		}
	}
	for _, bad := range []string{"", "7-8", "07:00", "07:00-07:00", "24:00-06:00", "07:60-08:00", "funday 07:00-08:00", "7:5-08:00", "25:00-01:00"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestNextChange(t *testing.T) {
	w, _ := New(nil, "22:00", "06:00")
	s := Set{w}
	loc := time.FixedZone("CST", 8*3600)
	now := time.Date(2026, 11, 25, 21, 30, 10, 0, loc)
	next, ok := s.NextChange(now)
	if !ok || !next.Equal(time.Date(2026, 11, 25, 22, 0, 0, 0, loc)) {
		t.Errorf("next change %v %v", next, ok)
	}
	next, _ = s.NextChange(time.Date(2026, 11, 25, 23, 0, 0, 0, loc))
	if !next.Equal(time.Date(2026, 11, 26, 6, 0, 0, 0, loc)) {
		t.Errorf("next change in the window %v", next)
	}
	if _, ok := (Set{}).NextChange(now); ok {
		t.Error("an empty set never changes")
	}
}

func TestStart(t *testing.T) {
	at := func(day, h, m int) time.Time { return time.Date(2026, 11, day, h, m, 0, 0, time.UTC) } // 23rd is a Monday
	night, _ := Parse("22:00-06:00")
	day, _ := Parse("sat,sun 09:00-18:00")
	for _, c := range []struct {
		w    Window
		t    time.Time
		want time.Time
	}{
		{night, at(23, 23, 0), at(23, 22, 0)},
		{night, at(24, 5, 59), at(23, 22, 0)}, // the morning part began the evening before
		{night, at(24, 12, 0), time.Time{}},   // outside
		{day, at(28, 10, 30), at(28, 9, 0)},   // Saturday
		{day, at(27, 10, 30), time.Time{}},    // Friday: not a listed day
	} {
		if got := c.w.Start(c.t); !got.Equal(c.want) {
			t.Errorf("%v.Start(%s %s) = %v, want %v", c.w, c.t.Weekday(), c.t.Format("15:04"), got, c.want)
		}
	}
}
