package eksapi

import (
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/irsa-dev/terraform-provider-irsa/internal/testenv/podidentity"
)

// propagator is the one writer of what EKS's data plane knows: the
// propagated associations file EKS Auth reads and the webhook's identities
// file. A change to the associations reaches both a delay after the call
// that made it, as one snapshot of the associations just after that call;
// identities a test sets directly reach the identities file at once. The
// identities file always lists the last propagated associations plus those
// direct identities; the associations file the propagated associations
// alone (a direct identity has no role).
type propagator struct {
	identitiesPath   string
	associationsPath string
	log              *slog.Logger

	mu sync.Mutex
	// published is the newest snapshot written (by sequence), extra the
	// direct identities.
	published    []PropagatedAssociation
	publishedSeq uint64
	extra        []podidentity.Identity
	nextSeq      uint64
	timers       map[uint64]*time.Timer
	stopped      bool
	// pending counts scheduled snapshots not yet written or superseded.
	pending int
}

func newPropagator(identitiesPath, associationsPath string, log *slog.Logger) *propagator {
	return &propagator{identitiesPath: identitiesPath, associationsPath: associationsPath, log: log, timers: map[uint64]*time.Timer{}}
}

// publishNow makes snapshot the propagated associations and extra the
// direct identities, and writes the files at once.
func (p *propagator) publishNow(snapshot []PropagatedAssociation, extra []podidentity.Identity) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nextSeq++
	p.published, p.publishedSeq, p.extra = snapshot, p.nextSeq, extra
	p.writeLocked()
}

// schedule publishes snapshot after delay, unless a newer snapshot has
// been published by then: with a delay shortened in between, the newer one
// wins and the older is dropped (it holds nothing the newer lacks).
func (p *propagator) schedule(snapshot []PropagatedAssociation, delay time.Duration) {
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
		p.published, p.publishedSeq = snapshot, seq
		p.writeLocked()
	})
}

// setExtra replaces the direct identities and writes the identities file
// at once.
func (p *propagator) setExtra(extra []podidentity.Identity) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.extra = extra
	p.writeIdentitiesLocked()
}

// status reports what the identities file lists now, the propagated
// associations, and how many changes are still on their way.
func (p *propagator) status() (listed []podidentity.Identity, associations []PropagatedAssociation, pending int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.listedLocked(), slices.Clone(p.published), p.pending
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
	ids := make([]podidentity.Identity, 0, len(p.published)+len(p.extra))
	for _, a := range p.published {
		ids = append(ids, podidentity.Identity{Namespace: a.Namespace, ServiceAccount: a.ServiceAccount})
	}
	for _, e := range p.extra {
		if !slices.Contains(ids, e) {
			ids = append(ids, e)
		}
	}
	return ids
}

// writeLocked writes both files: the associations first, so that a pod
// the webhook gives container credentials once it has read its file finds
// its association in EKS Auth.
func (p *propagator) writeLocked() {
	if p.associationsPath != "" {
		if err := writePropagatedAssociations(p.associationsPath, p.published); err != nil {
			p.log.Error("write the propagated associations", "path", p.associationsPath, "err", err)
		}
	}
	p.writeIdentitiesLocked()
}

func (p *propagator) writeIdentitiesLocked() {
	if p.identitiesPath == "" {
		return
	}
	if err := podidentity.WriteIdentitiesFile(p.identitiesPath, p.listedLocked()); err != nil {
		p.log.Error("write the identities file", "path", p.identitiesPath, "err", err)
	}
}
