package eksapi

import (
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv/podidentity"
)

// propagator is the one writer of the webhook's identities file. A change
// to the associations reaches the file a delay after the call that made
// it, as a snapshot of the associations just after that call; identities
// a test sets directly reach it at once. The file always lists the last
// propagated associations plus those direct identities.
type propagator struct {
	path string
	log  *slog.Logger

	mu sync.Mutex
	// published is the newest snapshot written (by sequence), extra the
	// direct identities.
	published    []podidentity.Identity
	publishedSeq uint64
	extra        []podidentity.Identity
	nextSeq      uint64
	timers       map[uint64]*time.Timer
	stopped      bool
	// pending counts scheduled snapshots not yet written or superseded.
	pending int
}

func newPropagator(path string, log *slog.Logger) *propagator {
	return &propagator{path: path, log: log, timers: map[uint64]*time.Timer{}}
}

// publishNow makes ids the propagated associations and extra the direct
// identities, and writes the file at once.
func (p *propagator) publishNow(ids, extra []podidentity.Identity) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nextSeq++
	p.published, p.publishedSeq, p.extra = ids, p.nextSeq, extra
	p.writeLocked()
}

// schedule publishes snapshot ids after delay, unless a newer snapshot
// has been published by then: with a delay shortened in between, the
// newer one wins and the older is dropped (it holds nothing the newer
// lacks).
func (p *propagator) schedule(ids []podidentity.Identity, delay time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	p.nextSeq++
	seq := p.nextSeq
	p.pending++
	p.timers[seq] = time.AfterFunc(delay, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		delete(p.timers, seq)
		p.pending--
		if p.stopped || seq < p.publishedSeq {
			return
		}
		p.published, p.publishedSeq = ids, seq
		p.writeLocked()
	})
}

// setExtra replaces the direct identities and writes the file at once.
func (p *propagator) setExtra(extra []podidentity.Identity) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.extra = extra
	p.writeLocked()
}

// status reports what the file lists now and how many changes are still
// on their way to it.
func (p *propagator) status() (listed []podidentity.Identity, pending int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.listedLocked(), p.pending
}

func (p *propagator) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	for seq, t := range p.timers {
		t.Stop()
		delete(p.timers, seq)
	}
	p.pending = 0
}

func (p *propagator) listedLocked() []podidentity.Identity {
	ids := slices.Clone(p.published)
	for _, e := range p.extra {
		if !slices.Contains(ids, e) {
			ids = append(ids, e)
		}
	}
	return ids
}

func (p *propagator) writeLocked() {
	if p.path == "" {
		return
	}
	if err := podidentity.WriteIdentitiesFile(p.path, p.listedLocked()); err != nil {
		p.log.Error("write the identities file", "path", p.path, "err", err)
	}
}
