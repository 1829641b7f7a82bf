package redact

import (
	"bufio"
	"io"
	"os"
	"sync"
)

var stderr struct {
	once sync.Once
	err  error
}

// FilterStderr makes os.Stderr a pipe whose lines reach the former
// os.Stderr redacted, once per process. Terraform logs what a provider
// writes on stderr, and so does it for what the provider's children write:
// the AWS SDK runs credential_process, and client-go runs exec plugins,
// with the provider's stderr as theirs. Lines are passed on whole, so a
// JSON log line stays one line.
func FilterStderr() error {
	stderr.once.Do(func() {
		r, w, err := os.Pipe()
		if err != nil {
			stderr.err = err
			return
		}
		out := os.Stderr
		os.Stderr = w
		go copyRedacted(out, r)
	})
	return stderr.err
}

func copyRedacted(out io.Writer, in io.Reader) {
	br := bufio.NewReader(in)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			_, _ = io.WriteString(out, String(line))
		}
		if err != nil {
			return
		}
	}
}
