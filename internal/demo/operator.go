package demo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/services"
)

// operator advances every move as its gate opens, the way an operator
// would with tandem moves advance, backfill, verify and finalize. It prints
// what blocks each move whenever that changes.
func (r *run) operator(ctx context.Context) {
	blocked := map[string]string{}
	t := time.NewTicker(r.s.tick)
	defer t.Stop()
	for {
		for _, m := range r.moves {
			if ctx.Err() != nil {
				return
			}
			r.operate(ctx, m, blocked)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *run) operate(ctx context.Context, m move.Move, blocked map[string]string) {
	cur, err := r.mg.Phase(ctx, m.Name)
	if err != nil {
		r.log.Warn("read phase", "move", m.Name, "err", err)
		return
	}
	next, ok := cur.Next()
	if !ok {
		return
	}
	g, err := r.mg.Gate(ctx, m.Name, next)
	if err != nil {
		r.log.Warn("gate", "move", m.Name, "err", err)
		return
	}
	if g.Open {
		if m.Name == frozenStep.move && next == frozenStep.to && !r.freeze.done() {
			r.runFrozen(ctx, m, cur, next)
		} else {
			r.advance(ctx, m, next)
		}
		blocked[m.Name] = ""
		return
	}
	kinds := map[dualwrite.BlockKind]bool{}
	for _, b := range g.Blockers {
		kinds[b.Kind] = true
	}
	only := func(ks ...dualwrite.BlockKind) bool {
		for k := range kinds {
			if !slices.Contains(ks, k) {
				return false
			}
		}
		return true
	}
	switch {
	case kinds[dualwrite.BlockBackfill] && only(dualwrite.BlockBackfill, dualwrite.BlockVerify):
		r.say(blocked, m.Name, g)
		r.backfill(ctx, m)
	case kinds[dualwrite.BlockVerify] && only(dualwrite.BlockVerify):
		r.verify(ctx, m)
	case kinds[dualwrite.BlockFinalize] && only(dualwrite.BlockFinalize):
		r.say(blocked, m.Name, g)
		release, err := r.mg.Finalize(ctx, m.Name, "tandem demo: every instance writes new only")
		var ge *dualwrite.GateError
		switch {
		case errors.As(err, &ge):
			r.say(blocked, m.Name, ge.Gate)
		case err != nil:
			r.log.Warn("finalize", "move", m.Name, "err", err)
		default:
			r.tl.printf("%s: finalized at release %d: the rollback window is closed, older releases may no longer join", m.Name, release)
		}
	default:
		r.say(blocked, m.Name, g)
	}
}

// say prints why a move waits, when that changed since the last time.
func (r *run) say(blocked map[string]string, name string, g dualwrite.Gate) {
	var parts []string
	for _, b := range g.Blockers {
		if b.Kind == dualwrite.BlockInstances && len(b.Instances) > 0 {
			var ins []string
			for _, i := range b.Instances {
				s := fmt.Sprintf("%s (release %d, acts on %s", i.ID, i.Release, i.Acts)
				if i.State == string(services.StateMissing) || i.State == string(services.StateError) {
					s += ", " + i.State
				}
				ins = append(ins, s+")")
			}
			want := g.From.String()
			if g.To == move.Contracted || g.Op == "finalize" {
				want = move.WriteNew.String()
			}
			parts = append(parts, fmt.Sprintf("waiting for %s to act on %s", strings.Join(ins, ", "), want))
			continue
		}
		parts = append(parts, b.Message)
	}
	msg := strings.Join(parts, "; ")
	if blocked[name] == msg {
		return
	}
	blocked[name] = msg
	to := g.To.String()
	if g.Op != "" {
		to = g.Op
	}
	r.tl.printf("%s: %s -> %s blocked: %s", name, g.From, to, msg)
}

// advance makes the transition, and reports whether it did.
func (r *run) advance(ctx context.Context, m move.Move, to move.Phase) bool {
	tr, err := r.mg.Advance(ctx, m.Name, to, dualwrite.WithNote("tandem demo"))
	var ge *dualwrite.GateError
	var na *dualwrite.NotAdjacentError
	switch {
	case errors.As(err, &ge), errors.As(err, &na):
		return false // the instances moved under us: next tick
	case err != nil:
		r.log.Warn("advance", "move", m.Name, "to", to, "err", err)
		return false
	case !tr.Changed:
		return false // already there
	}
	var steps []string
	for _, s := range tr.Steps {
		steps = append(steps, s.Description)
	}
	line := fmt.Sprintf("%s: phase %s -> %s (%s)", m.Name, tr.From, tr.To, to.Does())
	if len(steps) > 0 {
		line += ": " + strings.Join(steps, "; ")
	}
	r.tl.printf("%s", line)
	r.phaseMu.Lock()
	r.phaseAt[m.Name] = append(r.phaseAt[m.Name], phaseMark{phase: to, at: r.tl.since()})
	r.phaseMu.Unlock()
	return true
}

func (r *run) backfill(ctx context.Context, m move.Move) {
	r.tl.printf("%s: backfill starts: price_cents = price * 100, in batches", m.Name)
	last := time.Time{}
	opts := []dualwrite.Option{dualwrite.WithProgress(func(p dualwrite.Progress) {
		if p.Finished || time.Since(last) < r.s.dwell/2 {
			return
		}
		last = time.Now()
		r.tl.printf("%s: backfill %d/%d rows (%.0f%%), %.0f rows/s, batch of %d", m.Name, p.Done, p.Total, p.Percent(), p.RowsPerS, p.BatchSize)
	})}
	if r.s.rate > 0 {
		opts = append(opts, dualwrite.WithRateLimit(r.s.rate), dualwrite.WithBatchSize(500, 100, 2000))
	} else {
		opts = append(opts, dualwrite.WithBatchSize(100, 50, 1000))
	}
	res, err := r.mg.Backfill(ctx, m.Name, opts...)
	var ge *dualwrite.GateError
	switch {
	case errors.As(err, &ge):
		return
	case err != nil:
		if ctx.Err() == nil {
			r.tl.printf("%s: backfill interrupted (%v); the next run resumes from its cursor", m.Name, err)
		}
		return
	}
	r.tl.printf("%s: backfill done: %d rows in %d batches, %s, %.0f rows/s, slowest batch %s", m.Name, res.Done, res.Batches,
		res.Elapsed.Round(time.Millisecond), res.RowsPerS, res.MaxBatch.Round(time.Millisecond))
	r.verify(ctx, m)
}

func (r *run) verify(ctx context.Context, m move.Move) {
	v, err := r.mg.Verify(ctx, m.Name)
	if err != nil {
		r.log.Warn("verify", "move", m.Name, "err", err)
		return
	}
	r.tl.printf("%s: verify: %d rows checked, %d where price_cents != price * 100", m.Name, v.Checked, v.Mismatches)
	if v.Mismatches > 0 {
		r.problem("%s: verify found %d mismatching rows, first %+v", m.Name, v.Mismatches, v.Listed)
	}
}

// watch prints floor, cap and finalize changes as the clients' cache sees
// them (it follows the registry's NATS notices).
func (r *run) watch(ctx context.Context) {
	prev := r.cache.Snapshot()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.cache.Changed():
		}
		cur := r.cache.Snapshot()
		of, nf := prev.Floor(), cur.Floor()
		if of.Release != nf.Release && nf.Release != 0 {
			var hs []string
			for _, h := range nf.Holders {
				hs = append(hs, h.ID)
			}
			if of.Release == 0 {
				r.tl.printf("floor: release %d (held by %s)", nf.Release, strings.Join(hs, ", "))
			} else {
				r.tl.printf("floor %d -> %d (held by %s)", of.Release, nf.Release, strings.Join(hs, ", "))
			}
		}
		oc, nc := prev.Caps(), cur.Caps()
		for name, c := range nc {
			switch o, ok := oc[name]; {
			case !ok:
				r.tl.printf("cap %s: %s: clients send at most %s", name, c.Version, c.Version)
			case o.Version != c.Version:
				r.tl.printf("cap %s %s -> %s: clients now send %s", name, o.Version, c.Version, c.Version)
			}
		}
		if prev.Finalized != cur.Finalized {
			r.tl.printf("registry: releases below %d may no longer register", cur.Finalized)
		}
		prev = cur
	}
}

// waitPhase waits until every move in want reached its phase.
func (r *run) waitPhase(ctx context.Context, want map[string]move.Phase) bool {
	deadline := time.Now().Add(r.s.phaseWait)
	for {
		done := true
		for name, p := range want {
			cur, err := r.mg.Phase(ctx, name)
			if err != nil || cur < p {
				done = false
			}
		}
		if done {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			var parts []string
			for name, p := range want {
				cur, _ := r.mg.Phase(ctx, name)
				if cur < p {
					parts = append(parts, fmt.Sprintf("%s at %s, wanted %s", name, cur, p))
				}
			}
			slices.Sort(parts)
			r.problem("moves stuck after %s: %s", r.s.phaseWait, strings.Join(parts, "; "))
			r.tl.printf("gave up waiting: %s", strings.Join(parts, "; "))
			return false
		}
		time.Sleep(r.s.tick)
	}
}
