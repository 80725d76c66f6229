package config_test

import (
	"github.com/smartcommunity/warden/edge/testenv"
	"os"
	"path/filepath"
	"testing"

	"github.com/smartcommunity/warden/edge/config"
)

// FuzzParse: any input gives a config or an error, never a panic, and an
// error always carries at least one problem.
func FuzzParse(f *testing.F) {
	root := testenv.RepoRoot(f)
	for _, name := range []string{"warden.yaml", "demo.yaml"} {
		if data, err := os.ReadFile(filepath.Join(root, "configs", name)); err == nil {
			f.Add(data)
		}
	}
	for _, s := range []string{
		"",
		"gateway: {id: gw}\n",
		"gateway:\n  id: gw\n  colour: red\n",
		"gateway: {id: gw}\ndevices: [{id: a, kind: siren, driver: z, topic: t}, {id: a}]\n",
		"gateway: {id: gw}\ncameras: [{id: c, url: x, detect: {fps: -1, zones: [{points: [[1,2],[3]]}]}}]\n",
		"a: &a [*a, *a]\n",
		"gateway: {id: gw}\nalarms: {escalate_after: 5 parsecs}\n",
		"- just\n- a list\n",
		"gateway: !!binary aGVsbG8=\n",
		"uplink: {http: {url: 'ftp://x'}, mqtt: {}, batch: 99999}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.Parse("fuzz.yaml", data)
		if err == nil && c == nil {
			t.Fatal("nil config without an error")
		}
		if err != nil {
			if ce, ok := err.(*config.Error); ok && len(ce.Problems) == 0 {
				t.Fatalf("config.Error without problems for %q", data)
			}
			_ = err.Error()
		}
	})
}
