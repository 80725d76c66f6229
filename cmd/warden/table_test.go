package main

import (
	"strings"
	"testing"
)

func TestTableAlignsChineseNames(t *testing.T) {
	var b strings.Builder
	if err := writeTable(&b, [][]string{
		{"ID", "NAME", "GROUP"},
		{"r-001", "王芳", "resident"},
		{"r-002", "Li Lei", "staff"},
		{"w-007", "张三丰（布控）", "watchlist"},
	}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	col := -1
	for _, l := range lines {
		// The GROUP column starts at the same terminal column on every line.
		i := strings.LastIndex(l, "  ")
		c := displayWidth(l[:i+2])
		if col == -1 {
			col = c
		}
		if c != col {
			t.Errorf("GROUP at column %d, want %d:\n%s", c, col, b.String())
		}
	}
	if displayWidth("王芳") != 4 || displayWidth("Li") != 2 {
		t.Errorf("widths %d %d", displayWidth("王芳"), displayWidth("Li"))
	}
}
