package profiling

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
)

// busy burns CPU for d in a function the CPU profile must name.
//
//go:noinline
func busy(d time.Duration) int {
	n := 0
	for start := time.Now(); time.Since(start) < d; {
		for i := range 1 << 16 {
			n += i % 7
		}
	}
	return n
}

var sink [][]byte

// allocate is what the heap profile must name.
//
//go:noinline
func allocate() {
	for range 1024 {
		sink = append(sink, make([]byte, 4096))
	}
}

// pprofTop is `go tool pprof -top` of a profile: the oracle that the file is
// a profile, and what it holds.
func pprofTop(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"tool", "pprof", "-top"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool pprof -top %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func isGzip(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
		t.Fatalf("%s does not start with the gzip magic: % x", path, data[:min(len(data), 8)])
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if _, err := zr.Read(make([]byte, 1)); err != nil {
		t.Fatalf("%s: gzip stream unreadable: %v", path, err)
	}
}

func TestStartIn_writesReadableProfiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "prof") // created by StartIn
	stop, err := StartIn(dir)
	if err != nil {
		t.Fatal(err)
	}
	busy(300 * time.Millisecond)
	allocate()
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	cpu := filepath.Join(dir, fmt.Sprintf("cpu-%d.pprof", os.Getpid()))
	heap := filepath.Join(dir, fmt.Sprintf("heap-%d.pprof", os.Getpid()))
	goroutines := filepath.Join(dir, fmt.Sprintf("goroutines-%d.txt", os.Getpid()))
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Fatalf("%s holds %d files, want the CPU and the heap profile and the goroutines: %v", dir, len(entries), entries)
	}
	isGzip(t, cpu)
	isGzip(t, heap)
	// The test's own goroutine is running as the profile is written.
	if data, err := os.ReadFile(goroutines); err != nil || !strings.Contains(string(data), "profiling.TestStartIn_writesReadableProfiles") {
		t.Errorf("the goroutines file does not show this test's goroutine (%v):\n%s", err, data)
	}
	if top := pprofTop(t, cpu); !strings.Contains(top, "profiling.busy") {
		t.Errorf("the CPU profile does not show the busy loop:\n%s", top)
	}
	if top := pprofTop(t, "-sample_index=alloc_space", heap); !strings.Contains(top, "profiling.allocate") {
		t.Errorf("the heap profile does not show the allocations:\n%s", top)
	}
}

// The variable as a contributor sets it, on the real binary started and
// closed the way Terraform does (go-plugin's handshake, then its graceful
// shutdown): the plugin writes its profiles when Serve returns.
func TestMain_profilesUnderTheVariable(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the provider")
	}
	bin := filepath.Join(t.TempDir(), "terraform-provider-irsa")
	if out, err := exec.Command("go", "build", "-o", bin, "../..").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		name  string
		set   bool
		files int
	}{
		{"unset", false, 0},
		{"set", true, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(bin)
			cmd.Env = append(os.Environ(), DirVariable+"=")
			if tc.set {
				cmd.Env = append(cmd.Env, DirVariable+"="+dir)
			}
			client := plugin.NewClient(&plugin.ClientConfig{
				// terraform-plugin-go's handshake for protocol 6.
				HandshakeConfig: plugin.HandshakeConfig{
					MagicCookieKey:   "TF_PLUGIN_MAGIC_COOKIE",
					MagicCookieValue: "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2",
				},
				VersionedPlugins: map[int]plugin.PluginSet{6: {}},
				Cmd:              cmd,
				AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
				Logger:           hclog.NewNullLogger(),
			})
			if _, err := client.Client(); err != nil {
				client.Kill()
				t.Fatalf("start the plugin: %v", err)
			}
			pid := client.ReattachConfig().Pid
			client.Kill() // graceful: the plugin's Serve returns
			if !client.Exited() {
				t.Fatal("the plugin did not exit")
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != tc.files {
				t.Fatalf("%s holds %d files, want %d: %v", dir, len(entries), tc.files, entries)
			}
			for _, e := range entries {
				p := filepath.Join(dir, e.Name())
				switch {
				case e.Name() == fmt.Sprintf("goroutines-%d.txt", pid):
					if data, err := os.ReadFile(p); err != nil || !strings.Contains(string(data), "goroutine profile: total") {
						t.Errorf("%s is not a goroutine profile (%v):\n%s", e.Name(), err, data)
					}
				case strings.HasSuffix(e.Name(), fmt.Sprintf("-%d.pprof", pid)):
					isGzip(t, p)
					pprofTop(t, p)
				default:
					t.Errorf("%s is not named by the plugin's pid %d", e.Name(), pid)
				}
			}
		})
	}
}
