package podidentity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"k8s.io/client-go/util/workqueue"
)

// Retry bounds of a load that failed, upstream's FileWatcher's.
const (
	reloadBaseDelay = 10 * time.Millisecond
	reloadMaxDelay  = 5 * time.Minute
)

// WatchFile calls handle with the content of path now and after every change
// until ctx ends; a missing file is handled as no content. Like upstream's
// FileWatcher it watches the directory, not the file, so a file that appears
// later or is replaced by a rename is still noticed, and it queues the
// reloads: a burst of events is one reload, and a load that fails is retried
// with a growing delay until it succeeds or the file changes again.
//
// Unlike upstream, the first load is done before WatchFile returns, so a
// webhook that reports healthy already knows the identities the file lists.
func WatchFile(ctx context.Context, path string, handle func(content []byte) error, log *slog.Logger) error {
	path = filepath.Clean(path)
	watcher, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	// Watch before the first load: a change in between is then not lost.
	if err := watcher.Add(filepath.Dir(path)); err != nil {
		_ = watcher.Close()
		return fmt.Errorf("watch %s: %w", filepath.Dir(path), err)
	}
	queue := workqueue.NewTypedRateLimitingQueue(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](reloadBaseDelay, reloadMaxDelay))
	load := func() {
		if err := loadFile(path, handle); err != nil {
			log.Error("reload failed, keeping the last good content", "file", path, "err", err)
			queue.AddRateLimited(path)
			return
		}
		queue.Forget(path)
		log.Info("reloaded", "file", path)
	}
	load()

	go func() {
		<-ctx.Done()
		queue.ShutDown()
		_ = watcher.Close()
	}()
	go func() {
		for {
			select {
			case ev, ok := <-watcher.Events:
				if !ok {
					return
				}
				if filepath.Clean(ev.Name) == path {
					queue.Add(path)
				}
			case err, ok := <-watcher.Errors:
				if !ok {
					return
				}
				log.Error("watching failed", "file", path, "err", err)
			}
		}
	}()
	go func() {
		for {
			item, shutdown := queue.Get()
			if shutdown {
				return
			}
			load()
			queue.Done(item)
		}
	}()
	return nil
}

func loadFile(path string, handle func([]byte) error) error {
	content, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return handle(nil)
	}
	if err != nil {
		return err
	}
	return handle(content)
}
