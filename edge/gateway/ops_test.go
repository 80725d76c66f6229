package gateway_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/testenv"
)

// The shipped Grafana dashboard and Prometheus alert rules name only
// metrics that a running gateway registers (with a camera, an uplink
// target and a gas interlock configured); promtool accepts the rules and
// their unit tests pass.
func TestOperationsFilesUseRealMetrics(t *testing.T) {
	root := testenv.RepoRoot(t)
	rules := filepath.Join(root, "docs/prometheus/warden-rules.yml")
	used := map[string][]string{} // metric → files naming it
	name := regexp.MustCompile(`\bwarden_[a-z0-9_]+`)
	add := func(file, expr string) {
		for _, m := range name.FindAllString(expr, -1) {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				m, _ = strings.CutSuffix(m, suffix) // a histogram's series
			}
			used[m] = append(used[m], file)
		}
	}
	b, err := os.ReadFile(rules)
	if err != nil {
		t.Fatal(err)
	}
	add("warden-rules.yml", string(b))
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	b, err = os.ReadFile(filepath.Join(root, "docs/grafana/warden.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("warden.json: %v", err)
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			add("warden.json ("+p.Title+")", tg.Expr)
		}
	}
	if len(used) < 20 {
		t.Fatalf("only %d metrics found in the dashboard and rules", len(used))
	}

	dir := t.TempDir()
	yaml := fmt.Sprintf(`gateway: {id: gw-ops, data_dir: %q}
mqtt: {embedded: {listen: "127.0.0.1:%d", allow_anonymous: true}}
api: {listen: "127.0.0.1:0"}
uplink:
  http: {url: "http://127.0.0.1:1/events"}
cameras:
  - {id: gate, url: "rtsp://127.0.0.1:1/gate", detect: {fps: 5, motion: {}}}
devices:
%s%s`, filepath.Join(dir, "data"), freePort(t), counterDevice, gasHome("30s"))
	cfg, err := config.Parse("ops.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	g, _ := runInProcess(t, cfg)

	// A name is registered when registering a probe of that name fails.
	registered := func(n string) bool {
		probe := prometheus.NewGauge(prometheus.GaugeOpts{Name: n, Help: "probe"})
		if err := g.Registry().Register(probe); err != nil {
			return true
		}
		g.Registry().Unregister(probe)
		return false
	}
	if registered("warden_no_such_metric") || !registered("warden_store_last_seq") {
		t.Fatal("the registry probe does not tell registered names from others")
	}
	var names []string
	for n := range used {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !registered(n) {
			t.Errorf("%s (in %v) is not a metric of the gateway", n, used[n])
		}
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian package prometheus; `make deps` installs it): rules not checked")
	}
	if out, err := exec.Command(promtool, "check", "rules", rules).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	// the rules fire when they should: a valve fault, a stalled uplink, a full disk
	if out, err := exec.Command(promtool, "test", "rules", filepath.Join(root, "docs/prometheus/warden-rules.test.yml")).CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}
