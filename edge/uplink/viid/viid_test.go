package viid

import (
	"testing"
	"time"
)

func TestIDs(t *testing.T) {
	loc := time.FixedZone("CST", 8*3600)
	at := time.Date(2026, 12, 6, 1, 2, 3, 0, time.UTC) // 09:02:03 in CST
	src := SourceID("33010299011190000253", SourceImage, at, loc, 123456)
	if want := "33010299011190000253" + "02" + "20261206090203" + "23456"; src != want {
		t.Fatalf("SourceID %s, want %s", src, want)
	}
	if id := ObjectID(src, ObjectFace, 1); len(id) != 48 || id[41:] != "0600001" {
		t.Fatalf("FaceID %s", id)
	}
	if !ValidDeviceID("33010299011190000253") || ValidDeviceID("3301029901119000025") || ValidDeviceID("3301029901119000025x") {
		t.Fatal("ValidDeviceID")
	}
}

func TestParseStatuses(t *testing.T) {
	for _, tc := range []struct {
		body string
		n    int
		ok   bool
	}{
		{`{"ResponseStatusObject":{"StatusCode":"0","StatusString":"OK"}}`, 1, true},
		{`{"ResponseStatusObject":{"StatusCode":0}}`, 1, true},
		{`{"ResponseStatusListObject":{"ResponseStatusObject":[{"StatusCode":"0","Id":"a"},{"StatusCode":"4","Id":"b"}]}}`, 2, true},
		{`{"ResponseStatusObject":{"StatusCode":4}}`, 1, false},
	} {
		sts, err := ParseStatuses([]byte(tc.body))
		if err != nil || len(sts) != tc.n || sts[0].OK() != tc.ok {
			t.Errorf("%s: %v %v", tc.body, sts, err)
		}
	}
	for _, bad := range []string{``, `{}`, `{"ResponseStatusObject":{"StatusCode":true}}`, `<html>`} {
		if _, err := ParseStatuses([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParseLocalTime(t *testing.T) {
	loc := time.FixedZone("CST", 8*3600)
	for _, s := range []string{"20261206090203", "20261206090203123"} {
		got, err := ParseLocalTime(s, loc)
		if err != nil || !got.Equal(time.Date(2026, 12, 6, 1, 2, 3, 0, time.UTC)) {
			t.Errorf("%s: %v %v", s, got, err)
		}
	}
	if _, err := ParseLocalTime("2026-12-06", loc); err == nil {
		t.Error("a dashed date was accepted")
	}
}

func TestPlateColor(t *testing.T) {
	for name, code := range map[string]string{"blue": "5", "yellow": "6", "green": "9", "black": "1", "white": "2", "": "", "pink": "99"} {
		if got := PlateColor(name); got != code {
			t.Errorf("%q: %q, want %q", name, got, code)
		}
	}
}
