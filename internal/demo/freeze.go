package demo

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/move"
)

// The step of the rollout that runs under a write freeze: the move without
// triggers stops writing old. An operator would freeze a step no release
// can be kept compatible through; here it shows what a freeze does to the
// traffic: writes on the move refused with dualwrite.ErrFrozen (counted
// apart from failures, and applied nowhere), reads going on.
var frozenStep = struct {
	move string
	to   move.Phase
}{itemsMove.Name, move.WriteNew}

// FreezeResult is the rollout's step that ran under a write freeze.
type FreezeResult struct {
	Move string `json:"move"`
	// From and To are the step's phases.
	From   move.Phase `json:"from"`
	To     move.Phase `json:"to"`
	Reason string     `json:"reason"`
	// At is when, after the start, the freeze was recorded; Acked how
	// long every instance took to acknowledge it; Held how long it was in
	// force (recorded to thawed).
	At    time.Duration `json:"at_ns"`
	Acked time.Duration `json:"acked_ns"`
	Held  time.Duration `json:"held_ns"`
	// RefusedWrites are the writes refused with the freeze's typed error
	// (dualwrite.ErrFrozen; an RPC caller gets code 423): not failures.
	RefusedWrites int64 `json:"refused_writes"`
	// Reads are the reads of the frozen move's table answered while it was
	// frozen.
	Reads int64 `json:"reads"`
	// AppliedWhileFrozen counts writes on the move that began and were
	// answered applied between every instance's acknowledgement and the
	// thaw: there must be none.
	AppliedWhileFrozen int64 `json:"applied_while_frozen"`
}

// freezeWindow is what the load sees of the freeze while it runs.
type freezeWindow struct {
	on      atomic.Bool // recorded and not yet thawed everywhere
	refused atomic.Int64
	reads   atomic.Int64
	applied atomic.Int64

	mu       sync.Mutex
	res      *FreezeResult
	ackedAt  time.Time // every instance acknowledged
	thawAt   time.Time // the thaw is about to be recorded
	finished bool      // the step ran under the freeze
}

// violates reports whether a write on table, sent at sent and answered
// applied at done, ran wholly inside the acknowledged freeze: begun after
// every instance refused writes on the move, answered before the thaw.
func (f *freezeWindow) violates(table string, sent, done time.Time) bool {
	if table != itemsMove.Table {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.ackedAt.IsZero() && sent.After(f.ackedAt) && (f.thawAt.IsZero() || done.Before(f.thawAt))
}

// runFrozen makes the step under a write freeze, as an operator would:
// tandem freeze --move NAME --reason ..., which returns once every
// instance acknowledged it, then tandem moves advance, a while of traffic
// refused, and tandem thaw. It reports whether the move advanced.
func (r *run) runFrozen(ctx context.Context, m move.Move, from, to move.Phase) bool {
	f := &r.freeze
	scope := dualwrite.FreezeScope{Moves: []string{m.Name}}
	reason := fmt.Sprintf("tandem demo: %s goes from %s to %s with its writes stopped", m.Name, from, to)
	st, err := r.mg.Freeze(ctx, scope, reason)
	if err != nil {
		r.problem("freeze %s: %v", m.Name, err)
		return false
	}
	f.on.Store(true)
	at := r.tl.since()
	r.tl.printf("%s: write freeze recorded (tandem freeze --move %s --reason ...): writes on it are refused with dualwrite.ErrFrozen, reads go on; waiting for every instance to acknowledge", m.Name, m.Name)
	acked := r.waitFreezeAck(ctx, st.Seq, "freeze")
	f.mu.Lock()
	if acked {
		f.ackedAt = time.Now()
	}
	if f.res == nil {
		f.res = &FreezeResult{Move: m.Name, From: from, To: to, Reason: reason, At: at}
	}
	f.res.Acked = r.tl.since() - at
	f.mu.Unlock()
	advanced := false
	if acked {
		r.tl.printf("%s: every instance acknowledged the freeze after %s (none still runs a write on it)", m.Name, (r.tl.since() - at).Round(time.Millisecond))
		advanced = r.advance(ctx, m, to)
		// Traffic goes on for a while with the move frozen.
		r.sleep(ctx, r.s.dwell)
	}
	f.mu.Lock()
	f.thawAt = time.Now()
	f.mu.Unlock()
	st, err = r.mg.Thaw(context.WithoutCancel(ctx), scope)
	if err != nil {
		r.problem("thaw %s: %v", m.Name, err)
		return advanced
	}
	r.waitFreezeAck(ctx, st.Seq, "thaw")
	f.on.Store(false)
	f.mu.Lock()
	f.res.Held = r.tl.since() - at
	f.finished = f.finished || advanced
	// The next freeze, if this one did not advance the move, counts anew
	// from its own acknowledgement.
	f.ackedAt, f.thawAt = time.Time{}, time.Time{}
	f.mu.Unlock()
	r.tl.printf("%s: thawed (tandem thaw --move %s) after %s: %s refused, %s of its table answered meanwhile", m.Name, m.Name,
		(r.tl.since() - at).Round(time.Millisecond), plural(f.refused.Load(), "write"), plural(f.reads.Load(), "read"))
	return advanced
}

// waitFreezeAck waits until every instance that is not deleted
// acknowledged the freeze state seq (what tandem freeze and tandem thaw
// wait for).
func (r *run) waitFreezeAck(ctx context.Context, seq int64, what string) bool {
	deadline := time.Now().Add(r.s.phaseWait)
	for {
		fs, err := r.mg.FreezeStatus(ctx)
		if err == nil && fs.Seq >= seq && fs.Everywhere() {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			var pending []string
			for _, p := range fs.Pending {
				pending = append(pending, p.Instance.ID)
			}
			r.problem("the %s was not acknowledged by every instance within %s (%v; pending: %v)", what, r.s.phaseWait, err, pending)
			return false
		}
		time.Sleep(r.s.tick)
	}
}

// done says the step ran under the freeze already.
func (f *freezeWindow) done() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.finished
}

// freezeResult is the summary's account of the freeze; nil when the
// rollout never reached the step.
func (r *run) freezeResult() *FreezeResult {
	f := &r.freeze
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.res == nil {
		return nil
	}
	out := *f.res
	out.RefusedWrites, out.Reads, out.AppliedWhileFrozen = f.refused.Load(), f.reads.Load(), f.applied.Load()
	return &out
}
