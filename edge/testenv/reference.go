package testenv

import (
	"os"
	"path/filepath"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/smartcommunity/warden/edge/config"
)

// ReferenceKeys are the key paths configs/warden.yaml shows, in
// config.StructKeys' form ("cameras[].detect.throw.g_min").
func ReferenceKeys(t testing.TB) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(RepoRoot(t), "configs", "warden.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, k := range config.NodeKeys(&doc) {
		have[k] = true
	}
	return have
}
