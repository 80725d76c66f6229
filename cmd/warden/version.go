package main

import (
	"context"
	"fmt"
	"runtime"
)

// Set by make build through -ldflags -X.
var (
	version = "dev"
	commit  = "unknown"
)

func runVersion(ctx context.Context, args []string) int {
	fmt.Printf("warden %s\ncommit %s\nopencv %s\ngo %s %s/%s\n", version, commit, opencvVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return 0
}
