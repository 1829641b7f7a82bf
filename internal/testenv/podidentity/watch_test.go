package podidentity

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// syncBuffer is a log sink the watcher's goroutines may write to while the
// test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// watched starts WatchFile on path with an Identities set and returns the set,
// a channel that receives the result of every load, and the log.
func watched(t *testing.T, path string) (*Identities, <-chan error, *syncBuffer) {
	t.Helper()
	ids := &Identities{}
	loads := make(chan error, 100)
	logs := &syncBuffer{}
	err := WatchFile(t.Context(), path, func(content []byte) error {
		err := ids.Load(content)
		loads <- err
		return err
	}, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return ids, loads, logs
}

func nextLoad(t *testing.T, loads <-chan error) error {
	t.Helper()
	select {
	case err := <-loads:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("the watcher did not reload within 10s")
		return nil
	}
}

func waitHas(t *testing.T, ids *Identities, ns, sa string, want bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return ids.Has(ns, sa) == want, nil
	})
	if err != nil {
		t.Fatalf("Has(%s, %s) did not become %v: %v", ns, sa, want, err)
	}
}

func TestWatchFile_MissingFileMeansNoIdentitiesUntilItAppears(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "identities.json")
	ids, loads, _ := watched(t, path)
	if err := nextLoad(t, loads); err != nil {
		t.Fatalf("loading a missing file: %v, want no identities and no error", err)
	}
	if ids.Has("ns", "app") {
		t.Fatal("an identity from a file that does not exist")
	}
	if err := os.WriteFile(path, []byte(`{"identities":[{"namespace":"ns","serviceAccount":"app"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	waitHas(t, ids, "ns", "app", true)
	if ids.Has("app", "ns") || ids.Has("ns", "other") {
		t.Error("Has matches more than the listed (namespace, serviceAccount)")
	}
}

func TestWatchFile_ChangesReplaceTheSet(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "identities.json")
	if err := os.WriteFile(path, []byte(`{"identities":[{"namespace":"ns","serviceAccount":"a"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	ids, _, _ := watched(t, path)
	// The first load is done when WatchFile returns.
	if !ids.Has("ns", "a") {
		t.Fatal("the file's identity is not known once WatchFile returned")
	}
	// Written in place (truncate and write), as a plain editor would.
	if err := os.WriteFile(path, []byte(`{"identities":[{"namespace":"ns","serviceAccount":"b"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	waitHas(t, ids, "ns", "b", true)
	waitHas(t, ids, "ns", "a", false)

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	waitHas(t, ids, "ns", "b", false)
}

func TestWatchFile_ReplacedByRename(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "identities.json")
	if err := WriteIdentitiesFile(path, nil); err != nil {
		t.Fatal(err)
	}
	ids, _, _ := watched(t, path)
	for _, sa := range []string{"first", "second"} {
		if err := WriteIdentitiesFile(path, []Identity{{Namespace: "ns", ServiceAccount: sa}}); err != nil {
			t.Fatal(err)
		}
		waitHas(t, ids, "ns", sa, true)
	}
	waitHas(t, ids, "ns", "first", false)
	// What the rename left behind is the file, not a temporary one.
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the identities file", len(entries))
	}
}

func TestWatchFile_MalformedKeepsTheLastGoodSet(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "identities.json")
	if err := WriteIdentitiesFile(path, []Identity{{Namespace: "ns", ServiceAccount: "app"}}); err != nil {
		t.Fatal(err)
	}
	ids, loads, logs := watched(t, path)
	if err := nextLoad(t, loads); err != nil {
		t.Fatal(err)
	}
	// Renamed into place: an in-place write could be read empty first,
	// which clears the set before the broken content arrives.
	tmp := filepath.Join(t.TempDir(), "broken.json")
	if err := os.WriteFile(tmp, []byte(`{"identities":[{"namespace":`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	if err := nextLoad(t, loads); err == nil {
		t.Fatal("loading a malformed file succeeded")
	}
	if !ids.Has("ns", "app") {
		t.Error("a malformed file took away the last good identities")
	}
	if !strings.Contains(logs.String(), "reload failed") || !strings.Contains(logs.String(), path) {
		t.Errorf("the failed reload is not logged with the file's path; log:\n%s", logs)
	}
	// A failed load is retried, and the next good content is taken.
	if err := WriteIdentitiesFile(path, []Identity{{Namespace: "ns", ServiceAccount: "fixed"}}); err != nil {
		t.Fatal(err)
	}
	waitHas(t, ids, "ns", "fixed", true)
}

func TestWatchFile_MissingDirectoryIsAnError(t *testing.T) {
	t.Parallel()
	err := WatchFile(t.Context(), filepath.Join(t.TempDir(), "absent", "identities.json"),
		(&Identities{}).Load, slog.New(slog.DiscardHandler))
	if err == nil {
		t.Error("WatchFile on a directory that does not exist succeeded")
	}
}

func TestIdentitiesLoad(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content string
		wantErr bool
		wantHas bool
	}{
		{name: "listed", content: `{"identities":[{"namespace":"ns","serviceAccount":"app"}]}`, wantHas: true},
		{name: "empty list", content: `{"identities":[]}`},
		{name: "no identities key", content: `{}`},
		{name: "empty file", content: ``},
		{name: "not JSON", content: `identities: [ns/app]`, wantErr: true, wantHas: true},
		{name: "wrong shape", content: `{"identities":{"ns":"app"}}`, wantErr: true, wantHas: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ids := &Identities{}
			// Start from a good set: an error must keep it.
			if err := ids.Load([]byte(`{"identities":[{"namespace":"ns","serviceAccount":"app"}]}`)); err != nil {
				t.Fatal(err)
			}
			err := ids.Load([]byte(tt.content))
			if (err != nil) != tt.wantErr {
				t.Errorf("Load() error = %v, want error %v", err, tt.wantErr)
			}
			if got := ids.Has("ns", "app"); got != tt.wantHas {
				t.Errorf("Has(ns, app) = %v, want %v", got, tt.wantHas)
			}
		})
	}
}

func TestWriteIdentitiesFile_Format(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tt := range []struct {
		ids  []Identity
		want string
	}{
		{ids: nil, want: `{"identities":[]}`},
		{ids: []Identity{{Namespace: "ns", ServiceAccount: "app"}}, want: `{"identities":[{"namespace":"ns","serviceAccount":"app"}]}`},
	} {
		path := filepath.Join(dir, "identities.json")
		if err := WriteIdentitiesFile(path, tt.ids); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tt.want {
			t.Errorf("file = %s, want %s", got, tt.want)
		}
	}
}

func TestWatchFile_RetriesAFailedLoad(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "identities.json")
	if err := WriteIdentitiesFile(path, []Identity{{Namespace: "ns", ServiceAccount: "app"}}); err != nil {
		t.Fatal(err)
	}
	ids := &Identities{}
	var calls int
	var mu sync.Mutex
	// Fails twice, as a read of a file being replaced can; the file itself
	// never changes again, so only the retry can bring its content in.
	err := WatchFile(t.Context(), path, func(content []byte) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls <= 2 {
			return os.ErrDeadlineExceeded
		}
		return ids.Load(content)
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	waitHas(t, ids, "ns", "app", true)
}
