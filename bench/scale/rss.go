package main

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// rssWatch follows the children of one process (terraform) and keeps the
// highest VmHWM of those whose name starts with prefix (the provider
// plugins). Only children of that process: other engineers' terraform runs
// on the same machine start plugins of the same name.
type rssWatch struct {
	parent int
	prefix string
	stop   chan struct{}
	done   sync.WaitGroup
	peakKB int64
}

// pluginPrefix is the kernel's comm of a provider plugin: the executable's
// name, cut to 15 characters.
const pluginPrefix = "terraform-provi"

func watchRSS(parent int) *rssWatch {
	w := &rssWatch{parent: parent, prefix: pluginPrefix, stop: make(chan struct{})}
	w.done.Add(1)
	go func() {
		defer w.done.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			w.poll()
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

// Stop ends the watch and returns the peak in KiB (0 when no plugin was seen).
func (w *rssWatch) Stop() int64 {
	close(w.stop)
	w.done.Wait()
	return w.peakKB
}

func (w *rssWatch) poll() {
	dirs, _ := filepath.Glob("/proc/[0-9]*/status")
	for _, path := range dirs {
		st := readStatus(path)
		if st.ppid != w.parent || !strings.HasPrefix(st.name, w.prefix) {
			continue
		}
		w.peakKB = max(w.peakKB, st.hwmKB)
	}
}

type procStatus struct {
	name  string
	ppid  int
	hwmKB int64
}

// readStatus reads Name, PPid and VmHWM of /proc/PID/status; a process that
// exited meanwhile reads as zero.
func readStatus(path string) procStatus {
	f, err := os.Open(path)
	if err != nil {
		return procStatus{}
	}
	defer f.Close()
	var st procStatus
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch key {
		case "Name":
			st.name = val
		case "PPid":
			st.ppid, _ = strconv.Atoi(val)
		case "VmHWM":
			st.hwmKB, _ = strconv.ParseInt(strings.TrimSuffix(val, " kB"), 10, 64)
		}
	}
	return st
}
