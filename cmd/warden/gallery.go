package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/smartcommunity/warden/edge/gallery"
)

func runGallery(_ context.Context, args []string) int {
	if len(args) == 0 || (args[0] != "list" && args[0] != "remove") {
		fmt.Fprintln(os.Stderr, "usage: warden gallery list --config FILE\n       warden gallery remove --config FILE ID...")
		return 2
	}
	fs := flag.NewFlagSet("gallery "+args[0], flag.ContinueOnError)
	cfgPath := fs.String("config", "", "config file (required)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *cfgPath == "" || (args[0] == "remove" && fs.NArg() == 0) {
		fmt.Fprintln(os.Stderr, "usage: warden gallery list --config FILE\n       warden gallery remove --config FILE ID...")
		return 2
	}
	cfg, o, err := loadFaceConfig(*cfgPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "warden gallery:", err)
		return 2
	}
	st, g, err := openGallery(cfg, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "warden gallery:", err)
		return 1
	}
	defer st.Close()
	if args[0] == "list" {
		ps, err := g.List()
		if err != nil {
			fmt.Fprintln(os.Stderr, "warden gallery:", err)
			return 1
		}
		rows := [][]string{{"ID", "NAME", "GROUP", "TEMPLATES", "UPDATED"}}
		for _, p := range ps {
			rows = append(rows, []string{p.ID, p.Name, string(p.Group), fmt.Sprint(p.Templates), p.Updated.Format("2006-01-02 15:04")})
		}
		if err := writeTable(os.Stdout, rows); err != nil {
			fmt.Fprintln(os.Stderr, "warden gallery:", err)
			return 1
		}
		return 0
	}
	code := 0
	for _, id := range fs.Args() {
		if err := g.Remove(cliActor(), id); err != nil {
			if errors.Is(err, gallery.ErrNotFound) {
				fmt.Fprintf(os.Stderr, "warden gallery: %s: not in the gallery\n", id)
			} else {
				fmt.Fprintln(os.Stderr, "warden gallery:", err)
			}
			code = 1
			continue
		}
		fmt.Printf("removed %s\n", id)
	}
	return code
}
