package main

import (
	"bufio"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// tuneGC trades memory for shorter, rarer collections: the gas interlock's
// tail latency is partly garbage collection (docs/benchmarks.md). A soft
// memory limit of half the machine's memory makes the collector work harder
// before the box runs short. GOGC and GOMEMLIMIT in the environment win.
func tuneGC(log *slog.Logger) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		if total := memTotal(); total > 0 {
			debug.SetMemoryLimit(total / 2)
		}
	}
	log.Debug("gc tuned", "gogc", os.Getenv("GOGC"), "memory_limit", debug.SetMemoryLimit(-1))
}

// memTotal reads MemTotal from /proc/meminfo in bytes; 0 when unknown.
func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
