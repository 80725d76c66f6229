// Package videoeval measures face recognition the way the gate sees people:
// it composes a clip in which people step up one after another, runs the
// camera's analyze path (what `warden analyze` runs) over it and scores the
// events per visit against the ground truth it wrote.
package videoeval

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Role is what a manifest row's image is for.
type Role string

const (
	Enrol    Role = "enrol"    // enrolment photo of a resident
	Probe    Role = "probe"    // the resident, seen at the gate
	Stranger Role = "stranger" // someone never enrolled, seen at the gate
)

// Item is one manifest row.
type Item struct {
	Person string
	Role   Role
	Path   string
}

// Set is a manifest: who is enrolled from which photos, who walks past.
type Set struct {
	Enrol  map[string][]string // person → photos, in manifest order
	Visits []Item              // probes and strangers, in manifest order
}

// ReadManifest reads a CSV of `person,role,path` rows (a header row and
// `#` comments allowed); paths are relative to dataDir. A probe of a person
// with no enrolment photo, or a stranger who is also enrolled, is an error:
// the score would mean nothing.
func ReadManifest(path, dataDir string) (Set, error) {
	f, err := os.Open(path)
	if err != nil {
		return Set{}, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.Comment = '#'
	r.FieldsPerRecord = 3
	s := Set{Enrol: map[string][]string{}}
	strangers := map[string]bool{}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Set{}, fmt.Errorf("%s: %w", path, err)
		}
		line, _ := r.FieldPos(0)
		it := Item{Person: strings.TrimSpace(rec[0]), Role: Role(strings.TrimSpace(rec[1])), Path: filepath.Join(dataDir, strings.TrimSpace(rec[2]))}
		if it.Person == "person" && it.Role == "role" {
			continue
		}
		if _, err := os.Stat(it.Path); err != nil {
			return Set{}, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		switch it.Role {
		case Enrol:
			s.Enrol[it.Person] = append(s.Enrol[it.Person], it.Path)
		case Probe:
			s.Visits = append(s.Visits, it)
		case Stranger:
			strangers[it.Person] = true
			s.Visits = append(s.Visits, it)
		default:
			return Set{}, fmt.Errorf("%s:%d: role %q: want enrol, probe or stranger", path, line, it.Role)
		}
	}
	for _, v := range s.Visits {
		if v.Role == Probe && len(s.Enrol[v.Person]) == 0 {
			return Set{}, fmt.Errorf("%s: probe of %s, who has no enrol row", path, v.Person)
		}
		if v.Role == Stranger && len(s.Enrol[v.Person]) > 0 {
			return Set{}, fmt.Errorf("%s: stranger %s is also enrolled", path, v.Person)
		}
	}
	if len(s.Enrol) == 0 || len(s.Visits) == 0 {
		return Set{}, fmt.Errorf("%s: want enrol rows and probe or stranger rows", path)
	}
	return s, nil
}
