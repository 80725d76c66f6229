package i18n

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/smartcommunity/warden/edge/event"
)

// The keys both catalogues hold must read the same: a guard sees the
// console's words in a pushed message too.
func TestSameWordsAsTheConsole(t *testing.T) {
	js, err := os.ReadFile("../console/web/i18n.js")
	if err != nil {
		t.Fatal(err)
	}
	s := string(js)
	zhPart := s[strings.Index(s, "const zh = {"):strings.Index(s, "const en = {")]
	enPart := s[strings.Index(s, "const en = {"):strings.Index(s, "export const CATALOGUE")]
	re := regexp.MustCompile(`(?m)^\s*'((?:type|sev|loc|prio|kind|reason)\.[^']+)': '([^']*)',`)
	for lang, part := range map[string]string{ZH: zhPart, EN: enPart} {
		n := 0
		for _, m := range re.FindAllStringSubmatch(part, -1) {
			n++
			if got := catalogue(lang)[m[1]]; got != m[2] {
				t.Errorf("%s %s: Go %q, console %q", lang, m[1], got, m[2])
			}
		}
		if n < 50 {
			t.Fatalf("%s: only %d shared keys found in i18n.js; the pattern no longer matches", lang, n)
		}
	}
	for k := range zh {
		if _, ok := en[k]; !ok {
			t.Errorf("%s has no English text", k)
		}
	}
}

func TestTextsAndLocation(t *testing.T) {
	l := event.Location{Building: "3", Unit: "2", Room: "201", Zone: "east"}
	if got := Location(ZH, l); got != "3 号楼 2 单元 201 室 east" {
		t.Errorf("zh location %q", got)
	}
	if got := Location(EN, l); got != "Bldg 3 Unit 2 Room 201 east" {
		t.Errorf("en location %q", got)
	}
	pl := Places{Buildings: map[string]string{"3": "3 号楼（东区）"}, Zones: map[string]string{"east": "东门岗"}}
	if got := pl.Location(ZH, l); got != "3 号楼（东区） 2 单元 201 室 东门岗" {
		t.Errorf("labelled location %q", got)
	}
	if got := TypeName(ZH, "gas.leak"); got != "燃气泄漏" {
		t.Errorf("type %q", got)
	}
	if got := TypeName(EN, "x.unknown"); got != "x.unknown" {
		t.Errorf("unknown type %q", got)
	}
	if got := T(ZH, "notify.title", "prio", "生命安全", "type", "燃气泄漏"); got != "【生命安全】燃气泄漏" {
		t.Errorf("title %q", got)
	}
	for in, want := range map[string]string{"": ZH, "en-US,en;q=0.9": EN, "zh-CN,zh;q=0.9": ZH, "fr, en;q=0.5": EN, "de": ZH} {
		if got := Pick(in); got != want {
			t.Errorf("Pick(%q) = %s, want %s", in, got, want)
		}
	}
}
