// Package profiling lets a contributor profile the provider plugin where it
// runs, under Terraform: IRSA_PPROF_DIR=/tmp/prof terraform plan writes a
// CPU profile and a heap profile of each plugin process into /tmp/prof.
//
// Terraform starts the plugin itself, for each command and sometimes more
// than once per command, so neither `go test -cpuprofile` nor an HTTP pprof
// endpoint reaches it; a file per process, named by its pid, does.
package profiling

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
)

// DirVariable names the directory the profiles go to; unset or empty, the
// plugin is not profiled.
const DirVariable = "IRSA_PPROF_DIR"

// Start profiles the process when DirVariable is set (see StartIn), and
// otherwise returns a stop that does nothing.
func Start() (stop func() error, err error) {
	dir := os.Getenv(DirVariable)
	if dir == "" {
		return func() error { return nil }, nil
	}
	return StartIn(dir)
}

// StartIn starts a CPU profile in dir/cpu-<pid>.pprof, creating dir. The
// stop it returns ends the CPU profile and writes the heap profile,
// dir/heap-<pid>.pprof: the heap's allocations over the life of the process
// (alloc_space, alloc_objects) and what was still in use at the end. Both
// are gzipped protocol buffers that `go tool pprof` reads.
func StartIn(dir string) (stop func() error, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("%s: %w", DirVariable, err)
	}
	pid := os.Getpid()
	cpu, err := os.Create(filepath.Join(dir, fmt.Sprintf("cpu-%d.pprof", pid)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", DirVariable, err)
	}
	if err := pprof.StartCPUProfile(cpu); err != nil {
		return nil, errors.Join(fmt.Errorf("%s: %w", DirVariable, err), cpu.Close())
	}
	return func() error {
		pprof.StopCPUProfile()
		err := cpu.Close()
		return errors.Join(err, writeHeap(filepath.Join(dir, fmt.Sprintf("heap-%d.pprof", pid))),
			writeGoroutines(filepath.Join(dir, fmt.Sprintf("goroutines-%d.txt", pid))))
	}, nil
}

func writeHeap(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	// The heap profile's in-use figures are as of the last collection.
	runtime.GC()
	return errors.Join(pprof.Lookup("heap").WriteTo(f, 0), f.Close())
}

// writeGoroutines writes the stacks of the goroutines still running when
// the plugin stops, counted by stack: what holds on to memory that the
// heap profile shows in use at the end.
func writeGoroutines(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	return errors.Join(pprof.Lookup("goroutine").WriteTo(f, 1), f.Close())
}
