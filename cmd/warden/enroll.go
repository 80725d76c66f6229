package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/user"
	"path/filepath"

	"github.com/smartcommunity/warden/edge/audit"
	"github.com/smartcommunity/warden/edge/config"
	"github.com/smartcommunity/warden/edge/gallery"
	"github.com/smartcommunity/warden/edge/store"
	"github.com/smartcommunity/warden/edge/vision/face"
)

// openGallery opens the store in the config's data_dir (failing clearly
// while the daemon holds it) and the gallery in it.
func openGallery(cfg *config.Config, o face.Options) (*store.Store, *gallery.Gallery, error) {
	key, err := gallery.LoadKey(o.KeyFile)
	if err != nil {
		return nil, nil, err
	}
	st, err := store.Open(store.Options{Dir: cfg.Gateway.DataDir})
	if err != nil {
		return nil, nil, fmt.Errorf("%w (stop the daemon or use the API /api/v1/gallery)", err)
	}
	al, err := audit.New(st.DB(), nil)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	g, err := gallery.Open(gallery.Options{DB: st.DB(), Dir: filepath.Join(cfg.Gateway.DataDir, "faces"), Key: key, Audit: al})
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return st, g, nil
}

func cliActor() string {
	if u, err := user.Current(); err == nil {
		return "cli:" + u.Username
	}
	return "cli"
}

func loadFaceConfig(path string) (*config.Config, face.Options, error) {
	cfg, err := loadConfig(path)
	if err != nil {
		return nil, face.Options{}, err
	}
	o, err := face.SiteOptions(cfg.Cameras)
	return cfg, o, err
}

func runEnroll(_ context.Context, args []string) int {
	fs := flag.NewFlagSet("enroll", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "config file (required)")
	person := fs.String("person", "", "person id (required)")
	name := fs.String("name", "", "display name")
	group := fs.String("group", "", "resident (default), staff or watchlist")
	check := fs.Bool("check", false, "print each photo's quality and whether it would be accepted; enrol nothing")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *check && *cfgPath != "" && fs.NArg() > 0 {
		return checkPhotos(*cfgPath, fs.Args())
	}
	if *cfgPath == "" || *person == "" || fs.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: warden enroll --config FILE --person ID [--name NAME] [--group resident|staff|watchlist] IMAGE...\n       warden enroll --config FILE --check IMAGE...")
		return 2
	}
	grp, err := gallery.ParseGroup(*group)
	if err == nil {
		err = gallery.ValidID(*person)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "warden enroll:", err)
		return 2
	}
	cfg, o, eng, code := openEngine(*cfgPath)
	if eng == nil {
		return code
	}
	defer eng.Close()
	var tpls []gallery.Template
	for _, path := range fs.Args() {
		b, err := os.ReadFile(path)
		if err == nil {
			var t gallery.Template
			if t, err = eng.Template(b, filepath.Base(path)); err == nil {
				tpls = append(tpls, t)
				continue
			}
		}
		fmt.Fprintf(os.Stderr, "warden enroll: %s: %v\n", path, err)
		return 1
	}
	st, g, err := openGallery(cfg, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "warden enroll:", err)
		return 1
	}
	defer st.Close()
	if err := g.CheckConflicts(*person, tpls, eng.Threshold()); err != nil {
		fmt.Fprintln(os.Stderr, "warden enroll:", err, "(not enrolled)")
		return 1
	}
	p, err := g.Enroll(cliActor(), gallery.Person{ID: *person, Name: *name, Group: grp}, tpls)
	if err != nil {
		fmt.Fprintln(os.Stderr, "warden enroll:", err)
		return 1
	}
	fmt.Printf("enrolled %s (%s): %d new templates, %d in all\n", p.ID, p.Group, len(tpls), p.Templates)
	return 0
}

// checkPhotos prints the enrolment gate's measurements per photo; exit 1
// when any would be refused.
func checkPhotos(cfgPath string, paths []string) int {
	_, _, eng, code := openEngine(cfgPath)
	if eng == nil {
		return code
	}
	defer eng.Close()
	rows := [][]string{{"PHOTO", "RESULT", "FACES", "FACE_PX", "SHARPNESS", "YAW", "NOTE"}}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		var q face.Quality
		if err == nil {
			q, err = eng.Inspect(b)
		}
		if err == nil {
			err = q.Refused
		}
		res, note := "ok", ""
		if q.Padded {
			note = "tight crop: found with a border"
		}
		if err != nil {
			res, note, code = "refused", err.Error(), 1
		}
		rows = append(rows, []string{filepath.Base(p), res, fmt.Sprint(q.Faces), fmt.Sprint(q.FacePx),
			fmt.Sprintf("%.1f", q.Sharpness), fmt.Sprintf("%.2f", q.Yaw), note})
	}
	if err := writeTable(os.Stdout, rows); err != nil {
		return 1
	}
	return code
}

// openEngine loads the config's face options and engine; on failure it
// prints why and returns the exit code (2: bad config, 1: the engine).
func openEngine(cfgPath string) (*config.Config, face.Options, *face.Engine, int) {
	cfg, o, err := loadFaceConfig(cfgPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "warden enroll:", err)
		return nil, o, nil, 2
	}
	eng, err := face.NewEngine(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "warden enroll:", err)
		return nil, o, nil, 1
	}
	return cfg, o, eng, 0
}
