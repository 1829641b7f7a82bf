package redact

import (
	"bufio"
	"fmt"
	"io"
	"log"
	"os"
	"sync"

	"k8s.io/klog/v2"
)

var stderr struct {
	once sync.Once
	err  error
}

// FilterStderr, once per process, keeps what credential helpers print on
// stderr out of Terraform's log, which records whatever a provider writes
// there. The AWS SDK runs credential_process, and client-go runs exec
// plugins, with os.Stderr as theirs: it becomes a pipe whose every line is
// withheld, only its length logged, because a helper's debug output can
// hold a credential of any shape and no pattern would find it. The
// provider's own writers of stderr (klog, which client-go logs with, and
// the standard log package) move to the former stderr, redacted; the
// plugin framework's logger already writes to the stderr it found at
// start-up.
func FilterStderr() error {
	stderr.once.Do(func() {
		r, w, err := os.Pipe()
		if err != nil {
			stderr.err = err
			return
		}
		out := os.Stderr
		own := &lineRedactor{out: out}
		klog.LogToStderr(false)
		klog.SetOutput(own)
		log.SetOutput(own)
		os.Stderr = w
		go copyWithheld(out, r)
	})
	return stderr.err
}

// copyWithheld replaces each line read from in by a note of its length.
func copyWithheld(out io.Writer, in io.Reader) {
	br := bufio.NewReader(in)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			_, _ = fmt.Fprintf(out, "[a credential helper (credential_process or exec plugin) wrote a line of %d bytes on stderr; "+
				"withheld, as it may hold credentials: run the helper yourself to see it]\n", len(line))
		}
		if err != nil {
			return
		}
	}
}

// lineRedactor writes each write redacted. klog and the log package write
// one whole entry per call.
type lineRedactor struct {
	mu  sync.Mutex
	out io.Writer
}

func (l *lineRedactor) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := io.WriteString(l.out, String(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}
