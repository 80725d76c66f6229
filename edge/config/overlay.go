package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// OverlayName is the calibration overlay in gateway.data_dir: what the
// console's camera calibration (admin) saves. It holds, per camera id,
// only detect.throw.facade and detect.zones, in warden.yaml's own shape,
// and replaces those two keys of that camera when the config is loaded;
// every other key comes from the config file alone. check-config and run
// validate the two together and name the overlay's lines. To make a
// calibration part of the config file, copy its keys there and delete the
// overlay (docs/config.md).
const OverlayName = "calibration.yaml"

// Overlay is the calibration overlay's content.
type Overlay struct {
	Cameras map[string]OverlayCamera `yaml:"cameras"`
}

// OverlayCamera is one camera's calibration.
type OverlayCamera struct {
	Detect OverlayDetect `yaml:"detect"`
}

// OverlayDetect holds the keys an overlay may set.
type OverlayDetect struct {
	Throw *OverlayThrow `yaml:"throw,omitempty"`
	Zones *[]Region     `yaml:"zones,omitempty"`
}

// OverlayThrow is detect.throw.facade, kept as YAML for the detector to
// decode.
type OverlayThrow struct {
	Facade *Section `yaml:"facade"`
}

// overlayFile is a loaded overlay: where it is and its key lines.
type overlayFile struct {
	path  string
	lines map[string]int
	// prefixes maps a config key prefix (cameras[2].detect.zones) to the
	// overlay's (cameras.facade-3.detect.zones)
	prefixes map[string]string
}

// OverlayPath is where the config's calibration overlay is.
func (c *Config) OverlayPath() string { return filepath.Join(c.Gateway.DataDir, OverlayName) }

// readOverlay reads the overlay next to the data, if there is one; data
// replaces the file's content when not nil (a calibration being checked
// before it is saved).
func (c *Config) readOverlay(data []byte) ([]Problem, error) {
	path := c.OverlayPath()
	if data == nil {
		b, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("calibration overlay %s: %w", path, err)
		}
		data = b
	}
	ov := &overlayFile{path: path, lines: map[string]int{}, prefixes: map[string]string{}}
	c.overlay = ov
	bad := func(key string, line int, msg string) []Problem {
		return []Problem{{Key: key, Line: line, Msg: msg, File: path}}
	}
	if len(data) > MaxFileBytes {
		return bad("(file)", 0, fmt.Sprintf("%d bytes is over the %d byte limit", len(data), MaxFileBytes)), nil
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		p := syntaxProblem(err)
		p.File = path
		return []Problem{p}, nil
	}
	if len(root.Content) > 0 {
		walkLines(root.Content[0], "", ov.lines, map[[2]int]string{})
	}
	o, err := DecodeOverlay(data)
	if err != nil {
		p := syntaxProblem(err)
		if m := overlayLineRe.FindStringSubmatch(err.Error()); m != nil {
			fmt.Sscan(m[1], &p.Line)
		}
		p.File = path
		return []Problem{p}, nil
	}
	var ps []Problem
	for id, oc := range o.Cameras {
		i := c.cameraIndex(id)
		key := "cameras." + id
		if i < 0 {
			ps = append(ps, bad(key, ov.lines[key], fmt.Sprintf("no camera has id %q in %s", id, c.path))...)
			continue
		}
		cam := &c.Cameras[i]
		if t := oc.Detect.Throw; t != nil && t.Facade != nil {
			k := key + ".detect.throw.facade"
			if cam.Detect.Throw == nil {
				ps = append(ps, bad(k, ov.lines[k], fmt.Sprintf("camera %s has no detect.throw in %s: calibrate a throw camera", id, c.path))...)
			} else {
				cam.Detect.Throw = cam.Detect.Throw.With("facade", t.Facade.node)
				ov.prefixes[fmt.Sprintf("cameras[%d].detect.throw.facade", i)] = k
			}
		}
		if z := oc.Detect.Zones; z != nil {
			cam.Detect.Regions = *z
			ov.prefixes[fmt.Sprintf("cameras[%d].detect.zones", i)] = key + ".detect.zones"
		}
	}
	return ps, nil
}

// DecodeOverlay reads an overlay strictly (an unknown key is an error):
// the one reader of the file, for the config loader and for the console's
// calibration, which rewrites it.
func DecodeOverlay(data []byte) (Overlay, error) {
	var o Overlay
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&o); err != nil && !errors.Is(err, io.EOF) {
		return Overlay{}, err
	}
	return o, nil
}

var overlayLineRe = regexp.MustCompile(`line (\d+):`)

func (c *Config) cameraIndex(id string) int {
	for i, cam := range c.Cameras {
		if cam.ID == id {
			return i
		}
	}
	return -1
}

// locate points a problem under an overlaid key at the overlay's line.
func (c *Config) locate(p *Problem) {
	if c.overlay == nil || p.File != "" {
		return
	}
	for from, to := range c.overlay.prefixes {
		if p.Key == from || strings.HasPrefix(p.Key, from+".") || strings.HasPrefix(p.Key, from+"[") {
			p.File = c.overlay.path
			p.Key = to + strings.TrimPrefix(p.Key, from)
			p.Line = c.overlay.lineOf(p.Key)
			return
		}
	}
}

// lineOf is the overlay's line of key or of its nearest parent.
func (o *overlayFile) lineOf(key string) int { return lineIn(o.lines, key) }

// With is a copy of the section with key set to n.
func (s *Section) With(key string, n *yaml.Node) *Section {
	m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	if s != nil && s.node != nil {
		cp := *s.node
		cp.Content = append([]*yaml.Node(nil), s.node.Content...)
		m = &cp
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i+1] = n
			return &Section{node: m}
		}
	}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, n)
	return &Section{node: m}
}
