package dualwrite

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/services"
	"github.com/tandem-go/tandem/triggers"
)

// BlockKind says what sort of thing blocks a transition.
type BlockKind string

// What can block a transition.
const (
	BlockInstances  BlockKind = "instances"   // instances not yet acting on the current phase
	BlockRegistry   BlockKind = "registry"    // no registry: instances cannot be checked
	BlockSchema     BlockKind = "schema"      // the live schema does not match the move
	BlockBackfill   BlockKind = "backfill"    // backfill not run or not finished
	BlockFailedRows BlockKind = "failed-rows" // rows the transform could not convert
	BlockVerify     BlockKind = "verify"      // not verified since the backfill finished
	BlockMismatches BlockKind = "mismatches"  // verify found rows where new != transform(old)
	BlockTriggers   BlockKind = "triggers"    // sync triggers missing or changed
	BlockFinalize   BlockKind = "finalize"    // contract needs the move finalized first
	BlockFinalized  BlockKind = "finalized"   // finalized: no way back
	BlockStaleOld   BlockKind = "stale-old"   // old must be refreshed from new first
	// BlockOldWriters: instances wrote old only after the backfill
	// started, so new may be stale for rows they changed.
	BlockOldWriters BlockKind = "old-writers"
)

// InstanceRef names an instance in a blocker.
type InstanceRef struct {
	ID      string `json:"id"`
	Service string `json:"service"`
	Host    string `json:"host"`
	Release int64  `json:"release"`
	State   string `json:"state"`
	// Acts is the phase the instance reports acting on ("legacy" when it
	// reports none); CanAct the highest phase its release ships.
	Acts   string `json:"acts"`
	CanAct string `json:"can_act"`
}

func (r InstanceRef) String() string {
	s := fmt.Sprintf("%s (%s on %s, release %d, %s, acts on %s", r.ID, r.Service, r.Host, r.Release, r.State, r.Acts)
	if r.CanAct != r.Acts {
		s += ", can act up to " + r.CanAct
	}
	return s + ")"
}

// Blocker is one reason a gate is closed.
type Blocker struct {
	Kind      BlockKind     `json:"kind"`
	Message   string        `json:"message"`
	Instances []InstanceRef `json:"instances,omitempty"`
	Rows      int64         `json:"rows,omitempty"`
}

// Gate is the check before one transition.
type Gate struct {
	Move string `json:"move"`
	// Op names what was refused when it is not a transition ("backfill",
	// "verify", "finalize").
	Op       string     `json:"op,omitempty"`
	From     move.Phase `json:"from"`
	To       move.Phase `json:"to"`
	Open     bool       `json:"open"`
	Blockers []Blocker  `json:"blockers,omitempty"`
}

// acting returns the phase an instance reports for the move.
func acting(in services.Instance, name string) move.Phase {
	if s, ok := in.Phases[name]; ok {
		if p, err := move.ParsePhase(s); err == nil {
			return p
		}
	}
	// An instance that reports nothing runs a build that does not know the
	// move: it acts on legacy.
	return move.Legacy
}

func ref(in services.Instance, m move.Move) InstanceRef {
	return InstanceRef{ID: in.ID, Service: in.Service, Host: in.Host, Release: in.Release, State: string(in.State),
		Acts: acting(in, m.Name).String(), CanAct: m.Releases.Highest(in.Release).String()}
}

// gateInput is what a gate is computed from.
type gateInput struct {
	m        move.Move
	row      ledgerRow
	snap     *services.Snapshot // nil without a registry
	d        dialect.Dialect
	q        dialect.Querier
	trigSets func() (triggers.Set, error)
	// deleted lists the registry's deleted instances; ok is false when
	// the registry source keeps none (see InstanceHistory).
	deleted func(ctx context.Context) (ins []services.Instance, ok bool, err error)
}

// InstanceHistory is a registry source that also lists deleted instances
// (*services.Registry does). The gate into read-new needs it: an instance
// that wrote old only and was deleted since is no longer in a snapshot,
// but the rows it wrote may be stale in new.
type InstanceHistory interface {
	List(ctx context.Context, includeDeleted bool) ([]services.Instance, error)
}

// oldWriters lists the deleted instances that acted on legacy (wrote old
// only) at or after since: each was registered or heartbeating then.
// Instances not deleted are checked by the instance wait.
func oldWriters(deleted []services.Instance, m move.Move, since time.Time) []InstanceRef {
	var out []InstanceRef
	for _, in := range deleted {
		if in.State != services.StateDeleted || acting(in, m.Name) >= move.WriteBoth {
			continue
		}
		seen := in.HeartbeatAt
		if in.StartedAt.After(seen) {
			seen = in.StartedAt
		}
		if !seen.Before(since) {
			out = append(out, ref(in, m))
		}
	}
	slices.SortFunc(out, func(a, b InstanceRef) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func (mg *Manager) computeGate(ctx context.Context, in gateInput, to move.Phase) (Gate, error) {
	m, row, from := in.m, in.row, in.row.phase
	g := Gate{Move: m.Name, From: from, To: to}
	if to != from+1 && to != from-1 || !to.Valid() || from == move.Contracted {
		return g, &NotAdjacentError{Move: m.Name, From: from, To: to}
	}
	block := func(b Blocker) { g.Blockers = append(g.Blockers, b) }
	forward := to > from

	// Every transition waits for every instance to act on the current
	// phase, so that no instance ever acts two phases behind the ledger.
	// Triggers relax this before contract: they keep old and new in sync
	// for any mix of writers.
	need := func(p move.Phase) bool { return p == from }
	if m.Triggers && from >= move.WriteBoth && to != move.Contracted {
		need = nil
	}
	if m.Triggers && to == move.Contracted {
		need = func(p move.Phase) bool { return p >= move.WriteNew }
	}
	if from == move.Legacy {
		need = nil // nothing to wait for: everyone acts on legacy or reports nothing
	}
	if need != nil {
		if in.snap == nil {
			block(Blocker{Kind: BlockRegistry, Message: "no registry configured: tandem cannot see which phase each instance acts on (use WithRegistry)"})
		} else {
			var lag []InstanceRef
			for _, inst := range in.snap.Instances {
				if inst.State == services.StateDeleted {
					continue
				}
				if !need(acting(inst, m.Name)) {
					lag = append(lag, ref(inst, m))
				}
			}
			if len(lag) > 0 {
				want := from.String()
				if m.Triggers && to == move.Contracted {
					want = "write-new"
				}
				names := make([]string, len(lag))
				for i, r := range lag {
					names[i] = r.String()
				}
				block(Blocker{Kind: BlockInstances, Instances: lag,
					Message: fmt.Sprintf("%d instance(s) do not act on %s yet: %s; upgrade or restart them, or delete the ones that will not return (tandem services delete ID)", len(lag), want, strings.Join(names, "; "))})
			}
		}
	}
	triggersOK := func() {
		set, err := in.trigSets()
		if err != nil {
			block(Blocker{Kind: BlockTriggers, Message: "cannot generate the triggers: " + err.Error()})
			return
		}
		if _, err := triggers.Check(ctx, in.q, set); err != nil {
			block(Blocker{Kind: BlockTriggers, Message: "sync triggers are not as generated: " + err.Error() + "; advance to write-both again to reinstall them"})
		}
	}
	switch {
	case forward && to == move.WriteBoth:
		err := m.CheckSchema(ctx, in.q, in.d, move.Legacy)
		var se *move.SchemaError
		if errors.As(err, &se) {
			block(Blocker{Kind: BlockSchema, Message: se.Error()})
		} else if err != nil {
			return g, err
		}
	case forward && to == move.ReadNew:
		if m.Triggers {
			triggersOK()
		}
		fw := row.Forward
		switch {
		case !fw.StartedAt.Valid:
			block(Blocker{Kind: BlockBackfill, Message: "the backfill has not run: tandem moves backfill " + m.Name})
		case !fw.DoneAt.Valid:
			left := fw.RowsTotal - fw.RowsDone
			if left < 0 {
				left = 0
			}
			block(Blocker{Kind: BlockBackfill, Rows: left, Message: fmt.Sprintf("the backfill is not finished: %d of %d rows done, about %d left; run tandem moves backfill %s to resume it", fw.RowsDone, fw.RowsTotal, left, m.Name)})
		}
		// Every instance seen since the backfill started must have written
		// both: one that wrote old only and left (deleted, so no longer
		// waited for) changed rows the backfill may already have passed,
		// and a verify that ran before that write cannot tell.
		if !m.Triggers && fw.StartedAt.Valid && in.snap != nil {
			deleted, ok, err := in.deleted(ctx)
			switch {
			case err != nil:
				return g, err
			case !ok:
				block(Blocker{Kind: BlockRegistry, Message: "the registry source does not list deleted instances, so tandem cannot check that none wrote old only since the backfill started (use a *services.Registry, or a source implementing dualwrite.InstanceHistory)"})
			default:
				if lag := oldWriters(deleted, m, fw.StartedAt.Time); len(lag) > 0 {
					names := make([]string, len(lag))
					for i, r := range lag {
						names[i] = r.String()
					}
					block(Blocker{Kind: BlockOldWriters, Instances: lag,
						Message: fmt.Sprintf("%d instance(s) wrote old only after the backfill started and were deleted since: %s; rows they changed may be stale in new: restart the backfill (tandem moves backfill %s --restart) and verify", len(lag), strings.Join(names, "; "), m.Name)})
				}
			}
		}
		if row.FailedRows > 0 {
			block(Blocker{Kind: BlockFailedRows, Rows: row.FailedRows, Message: fmt.Sprintf("%d row(s) could not be transformed (listed by tandem moves verify %s); fix them and run tandem moves backfill %s --retry-failed", row.FailedRows, m.Name, m.Name)})
		}
		switch {
		case fw.DoneAt.Valid && (!row.VerifiedAt.Valid || row.VerifiedAt.Time.Before(fw.DoneAt.Time)):
			block(Blocker{Kind: BlockVerify, Message: "not verified since the backfill finished: tandem moves verify " + m.Name})
		case row.VerifiedAt.Valid && row.Mismatches.Valid && row.Mismatches.Int64 > 0:
			block(Blocker{Kind: BlockMismatches, Rows: row.Mismatches.Int64, Message: fmt.Sprintf("verify found %d row(s) where new differs from transform(old); backfill again (--restart) and verify", row.Mismatches.Int64)})
		}
	case forward && to == move.WriteNew:
		if m.Triggers {
			triggersOK()
		}
	case forward && to == move.Contracted:
		if !row.FinalizedAt.Valid {
			block(Blocker{Kind: BlockFinalize, Message: "contract drops the old column for good: finalize first (tandem moves finalize " + m.Name + ")"})
		}
	case !forward && row.FinalizedAt.Valid:
		block(Blocker{Kind: BlockFinalized, Message: fmt.Sprintf("finalized at %s (release %d): the rollback window is closed", row.FinalizedAt.Time.UTC().Format(time.RFC3339), row.FinalizedRelease.Int64)})
	case !forward && to == move.WriteBoth && row.OldStale != 0:
		rv := row.Reverse
		if !rv.DoneAt.Valid {
			msg := "rows were written to new only during write-new, and write-both reads old: refresh old from new first with tandem moves backfill " + m.Name + " --reverse"
			if rv.StartedAt.Valid {
				msg += fmt.Sprintf(" (%d of %d rows done)", rv.RowsDone, rv.RowsTotal)
			}
			block(Blocker{Kind: BlockStaleOld, Rows: max(rv.RowsTotal-rv.RowsDone, 0), Message: msg})
		}
	}
	g.Open = len(g.Blockers) == 0
	return g, nil
}

// ackedAll lists the instances whose phase does not satisfy ok.
func ackedAll(snap *services.Snapshot, m move.Move, ok func(move.Phase) bool) []InstanceRef {
	var lag []InstanceRef
	for _, inst := range snap.Instances {
		if inst.State == services.StateDeleted {
			continue
		}
		if !ok(acting(inst, m.Name)) {
			lag = append(lag, ref(inst, m))
		}
	}
	slices.SortFunc(lag, func(a, b InstanceRef) int { return strings.Compare(a.ID, b.ID) })
	return lag
}
