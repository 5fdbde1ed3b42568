package dualwrite

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/sqldialect"
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

// BlockInterrupted: a DDL step was proposed and never applied (a run was
// killed half way); status reports it until an advance completes it.
const BlockInterrupted BlockKind = "interrupted"

// BlockFreezePending: a write freeze (or a thaw) is recorded, and an
// instance that is not deleted has not acknowledged it yet (see
// FreezeStatus): writes are not frozen (or thawed) everywhere. It blocks
// no gate; tandem status reports it, since what the freeze was recorded
// for is not safe until every instance acknowledged it.
const BlockFreezePending BlockKind = "freeze-pending"

// What a gate guards besides a phase transition (Gate.Op).
const (
	OpBackfill        = "backfill"
	OpReverseBackfill = "reverse-backfill"
	OpVerify          = "verify"
	OpFinalize        = "finalize"
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
	// NextCommand is the command that clears the blocker, when the kind
	// alone does not say it (a repair, an interrupted step's advance).
	NextCommand string `json:"next_command,omitempty"`
	// Retry says nothing needs to be run: a live runner is clearing the
	// blocker, and the same step succeeds when tried again later.
	Retry bool `json:"retry,omitempty"`
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
	d        sqldialect.Dialect
	q        dialect.Querier
	trigSets func() (triggers.Set, error)
	// deleted lists the registry's deleted instances; ok is false when
	// the registry source keeps none (see InstanceHistory).
	deleted func(ctx context.Context) (ins []services.Instance, ok bool, err error)
	// canFinalize: a Finalizer is configured.
	canFinalize bool
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
	sortInstances(out)
	return out
}

// sortInstances is the one order of instances in every blocker: by id,
// then service and host (ids are unique among live instances, not among
// deleted ones).
func sortInstances(refs []InstanceRef) {
	slices.SortFunc(refs, func(a, b InstanceRef) int {
		return cmp.Or(strings.Compare(a.ID, b.ID), strings.Compare(a.Service, b.Service), strings.Compare(a.Host, b.Host))
	})
}

// lagging lists, in sortInstances order, the instances not deleted whose
// phase for m does not satisfy ok.
func lagging(snap *services.Snapshot, m move.Move, ok func(move.Phase) bool) []InstanceRef {
	var lag []InstanceRef
	for _, inst := range snap.Instances {
		if inst.State == services.StateDeleted {
			continue
		}
		if !ok(acting(inst, m.Name)) {
			lag = append(lag, ref(inst, m))
		}
	}
	sortInstances(lag)
	return lag
}

// instanceList names every instance of a blocker, in the order given.
func instanceList(refs []InstanceRef) string {
	names := make([]string, len(refs))
	for i, r := range refs {
		names[i] = r.String()
	}
	return strings.Join(names, "; ")
}

// waitBlocker is the blocker of instances that must act on another phase
// first; what says what they must do, then says what to run.
func waitBlocker(lag []InstanceRef, what, then string) Blocker {
	return Blocker{Kind: BlockInstances, Instances: lag,
		Message: fmt.Sprintf("%d instance(s) %s: %s; %s", len(lag), what, instanceList(lag), then)}
}

// upgradeOrDelete is what to do about instances a gate waits for, with
// the exact command for each.
func upgradeOrDelete(lag []InstanceRef) string {
	cmds := make([]string, len(lag))
	for i, r := range lag {
		cmds[i] = "tandem services delete " + r.ID
	}
	return "upgrade or restart them, or delete the ones that will not return (" + strings.Join(cmds, "; ") + ")"
}

func noRegistry(why string) Blocker {
	return Blocker{Kind: BlockRegistry, Message: "no registry configured: " + why + " (use WithRegistry)"}
}

// triggersBlocker checks the move's sync triggers against what tandem
// generates; nil when they match.
func triggersBlocker(ctx context.Context, in gateInput) (*Blocker, error) {
	set, err := in.trigSets()
	if err != nil {
		return &Blocker{Kind: BlockTriggers, Message: "cannot generate the triggers: " + err.Error()}, nil
	}
	_, err = triggers.Check(ctx, in.q, set)
	switch {
	case errors.Is(err, triggers.ErrDrift):
		return &Blocker{Kind: BlockTriggers, Message: "sync triggers are not as generated: " + err.Error() + "; repair them with tandem triggers install " + in.m.Name,
			NextCommand: "tandem triggers install " + in.m.Name}, nil
	case err != nil:
		return nil, err
	}
	return nil, nil
}

// InstanceWait is the rule of a transition's instance wait: it returns
// what the phase every non-deleted instance acts on must satisfy before m
// goes from from to to, or nil when the transition waits for no instance.
// Every transition waits for every instance to act on the current phase,
// so that no instance ever acts two phases behind the ledger; triggers
// relax this before contract (they keep old and new in sync for any mix
// of writers), and nothing waits to leave legacy.
func InstanceWait(m move.Move, from, to move.Phase) func(move.Phase) bool {
	switch {
	case from == move.Legacy:
		return nil // everyone acts on legacy or reports nothing
	case m.Triggers && to == move.Contracted:
		return func(p move.Phase) bool { return p >= move.WriteNew }
	case m.Triggers && from >= move.WriteBoth && to != move.Contracted:
		return nil
	}
	return func(p move.Phase) bool { return p == from }
}

// OpInstanceWait is the instance wait of an operation that is not a
// transition (OpBackfill, OpFinalize), as InstanceWait: nil when it waits
// for no instance. A backfill without triggers waits for every instance to
// write both (a legacy writer could change a row after the backfill passed
// it); finalize waits for every instance to act on write-new.
func OpInstanceWait(m move.Move, op string) func(move.Phase) bool {
	switch {
	case op == OpBackfill && !m.Triggers:
		return func(p move.Phase) bool { return p >= move.WriteBoth }
	case op == OpFinalize:
		return func(p move.Phase) bool { return p >= move.WriteNew }
	}
	return nil
}

func (mg *Manager) computeGate(ctx context.Context, in gateInput, to move.Phase) (Gate, error) {
	m, row, from := in.m, in.row, in.row.phase
	g := Gate{Move: m.Name, From: from, To: to}
	if to != from+1 && to != from-1 || !to.Valid() || from == move.Contracted {
		return g, &NotAdjacentError{Move: m.Name, From: from, To: to}
	}
	block := func(b Blocker) { g.Blockers = append(g.Blockers, b) }
	forward := to > from

	need := InstanceWait(m, from, to)
	if need != nil {
		if in.snap == nil {
			block(noRegistry("tandem cannot see which phase each instance acts on"))
		} else if lag := lagging(in.snap, m, need); len(lag) > 0 {
			want := from.String()
			if m.Triggers && to == move.Contracted {
				want = "write-new"
			}
			block(waitBlocker(lag, "do not act on "+want+" yet", upgradeOrDelete(lag)))
		}
	}
	triggersOK := func() error {
		b, err := triggersBlocker(ctx, in)
		if b != nil {
			block(*b)
		}
		return err
	}
	switch {
	case forward && to == move.WriteBoth:
		err := m.CheckSchema(ctx, in.q, in.d.Name(), move.Legacy)
		var se *move.SchemaError
		if errors.As(err, &se) {
			block(Blocker{Kind: BlockSchema, Message: se.Error()})
		} else if err != nil {
			return g, err
		}
	case forward && to == move.ReadNew:
		if m.Triggers {
			if err := triggersOK(); err != nil {
				return g, err
			}
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
			msg, running := mg.unfinishedBackfill(ctx, m.Name, fw, row)
			block(Blocker{Kind: BlockBackfill, Rows: left, Message: msg, Retry: running})
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
					block(Blocker{Kind: BlockOldWriters, Instances: lag,
						Message: fmt.Sprintf("%d instance(s) wrote old only after the backfill started and were deleted since: %s; rows they changed may be stale in new: restart the backfill (tandem moves backfill %s --restart) and verify (tandem moves verify %s)", len(lag), instanceList(lag), m.Name, m.Name)})
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
			if err := triggersOK(); err != nil {
				return g, err
			}
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

// opGate is the gate of what is not a transition: a backfill (forward or
// reverse), a verify, a finalize. canFinalize says whether a registry that
// records the finalization is configured.
func (mg *Manager) opGate(ctx context.Context, in gateInput, op string) (Gate, error) {
	m, row := in.m, in.row
	g := Gate{Move: m.Name, Op: op, From: row.phase, To: row.phase}
	done := func(b ...Blocker) (Gate, error) {
		g.Blockers = append(g.Blockers, b...)
		g.Open = len(g.Blockers) == 0
		return g, nil
	}
	switch op {
	case OpBackfill:
		if row.phase != move.WriteBoth && row.phase != move.ReadNew {
			b := Blocker{Kind: BlockBackfill, Message: fmt.Sprintf("the backfill runs in write-both (or read-new, to retry); the move is at %s", row.phase)}
			switch {
			case row.phase == move.Legacy:
				b.NextCommand = "tandem moves advance " + m.Name
				b.Message += ": advance it to write-both first: " + b.NextCommand
			case row.phase == move.WriteNew && !row.FinalizedAt.Valid:
				b.NextCommand = "tandem moves advance " + m.Name + " --to read-new"
				b.Message += ": new is already complete; to refresh old after going back, run " + b.NextCommand + ", then tandem moves backfill " + m.Name + " --reverse"
			}
			return done(b)
		}
		switch {
		case m.Triggers:
			b, err := triggersBlocker(ctx, in)
			if err != nil {
				return g, err
			}
			if b != nil {
				return done(*b)
			}
		case in.snap == nil:
			return done(noRegistry("cannot check that every instance writes both"))
		default:
			// Rows a legacy writer changes after the backfill passed
			// them would keep a stale new: wait for everyone.
			if lag := lagging(in.snap, m, OpInstanceWait(m, OpBackfill)); len(lag) > 0 {
				return done(waitBlocker(lag, "do not write both yet", "the backfill starts when every instance acts on write-both: "+upgradeOrDelete(lag)))
			}
		}
	case OpReverseBackfill:
		if row.phase != move.ReadNew || row.OldStale == 0 {
			return done(Blocker{Kind: BlockStaleOld, Message: fmt.Sprintf("a reverse backfill refreshes old after a rollback from write-new to read-new; the move is at %s and old is %s", row.phase, map[bool]string{true: "stale", false: "not stale"}[row.OldStale != 0])})
		}
		if in.snap == nil {
			return done(noRegistry("cannot check that nobody writes new only any more"))
		}
		if lag := lagging(in.snap, m, func(p move.Phase) bool { return p <= move.ReadNew }); len(lag) > 0 {
			return done(waitBlocker(lag, "still write new only", "wait until they act on read-new"))
		}
	case OpVerify:
		if row.phase == move.Legacy || row.phase == move.Contracted {
			return done(Blocker{Kind: BlockVerify, Message: fmt.Sprintf("verify compares old and new, which both exist from write-both to write-new; the move is at %s", row.phase)})
		}
	case OpFinalize:
		g.To = move.Contracted
		if row.phase != move.WriteNew {
			return done(Blocker{Kind: BlockFinalize, Message: fmt.Sprintf("finalize needs the move at write-new, it is at %s", row.phase)})
		}
		if in.snap == nil || !in.canFinalize {
			return done(noRegistry("finalize must record the floor with the registry"))
		}
		if lag := lagging(in.snap, m, OpInstanceWait(m, OpFinalize)); len(lag) > 0 {
			return done(waitBlocker(lag, "do not act on write-new yet", upgradeOrDelete(lag)))
		}
	default:
		return g, fmt.Errorf("dualwrite: no gate for %q", op)
	}
	return done()
}

// refuse runs opGate and turns a closed gate into a *GateError.
func (mg *Manager) refuse(ctx context.Context, in gateInput, op string) error {
	g, err := mg.opGate(ctx, in, op)
	if err != nil {
		return err
	}
	if !g.Open {
		return &GateError{Gate: g}
	}
	return nil
}

// What a move's sync triggers must be at its phase (TriggerCheck.Want).
const (
	WantGenerated = "as generated"         // a move with triggers, write-both to write-new
	WantNone      = "none"                 // once contracted, or a move without triggers
	WantEither    = "none or as generated" // a move with triggers at legacy (before write-both, or after a rollback)
)

// TriggerCheck is what a move's sync triggers must be at the phase the
// ledger records, and what the database holds: the one rule behind status
// and `tandem triggers check`.
type TriggerCheck struct {
	triggers.Report
	Phase move.Phase `json:"phase"`
	Want  string     `json:"want"`
	// AsExpected says the database holds what Want says; Summary says it
	// in words, and Blocker, when it does not, what to run.
	AsExpected bool     `json:"as_expected"`
	Summary    string   `json:"summary"`
	Blocker    *Blocker `json:"blocker,omitempty"`
}

// CheckTriggers checks a move's sync triggers against what its phase
// needs. It only reads.
func (mg *Manager) CheckTriggers(ctx context.Context, name string) (TriggerCheck, error) {
	m, err := mg.Move(name)
	if err != nil {
		return TriggerCheck{}, err
	}
	row := ledgerRow{Name: name, Phase: move.Legacy.String()}
	if mg.ready {
		if row, _, err = readLedger(ctx, mg.db, name); err != nil {
			return TriggerCheck{}, fmt.Errorf("dualwrite: check triggers of %s: %w", name, err)
		}
	}
	tc, err := triggerCheck(ctx, mg.db, sqldialect.Of(mg.db), m, row.phase)
	if err != nil {
		return tc, fmt.Errorf("dualwrite: check triggers of %s: %w", name, err)
	}
	return tc, nil
}

func triggerCheck(ctx context.Context, q dialect.Querier, d sqldialect.Dialect, m move.Move, phase move.Phase) (TriggerCheck, error) {
	tc := TriggerCheck{Report: triggers.Report{Move: m.Name, Dialect: d.Name(), Objects: []triggers.Status{}}, Phase: phase, Want: WantNone}
	switch {
	case m.Triggers && phase >= move.WriteBoth && phase <= move.WriteNew:
		tc.Want = WantGenerated
	case m.Triggers && phase == move.Legacy:
		tc.Want = WantEither
	}
	installed, err := sqldialect.ListTriggerObjects(ctx, q, d, m.Name)
	if err != nil {
		return tc, err
	}
	if tc.Want == WantNone || tc.Want == WantEither && len(installed) == 0 {
		for _, it := range installed {
			tc.Objects = append(tc.Objects, triggers.Status{Name: it.Name, Kind: triggers.Kind(it.Kind), Table: it.Table, State: triggers.StateUnexpected})
		}
		tc.AsExpected = len(installed) == 0
		switch {
		case !tc.AsExpected && phase == move.Contracted:
			tc.Summary = fmt.Sprintf("%d object(s) left after the contract", len(installed))
			tc.Blocker = &Blocker{Kind: BlockTriggers, Message: fmt.Sprintf("%d trigger object(s) of move %s are still installed after the contract (they write a column that is gone); drop them with tandem triggers drop %s", len(installed), m.Name, m.Name), NextCommand: "tandem triggers drop " + m.Name}
		case !tc.AsExpected:
			tc.Summary = fmt.Sprintf("%d object(s) installed, but the move does not use triggers", len(installed))
			tc.Blocker = &Blocker{Kind: BlockTriggers, Message: fmt.Sprintf("%d trigger object(s) named as move %s's are installed, but the move does not use triggers; drop them with tandem triggers drop %s", len(installed), m.Name, m.Name), NextCommand: "tandem triggers drop " + m.Name}
		case phase == move.Contracted && m.Triggers:
			tc.Summary = "dropped with the contract"
		case m.Triggers:
			tc.Summary = "not installed yet: entering write-both installs them"
		default:
			tc.Summary = "none (the move does not use triggers)"
		}
		return tc, nil
	}
	set, err := triggers.ForMove(d.Name(), m)
	if err != nil {
		tc.Summary = "cannot be generated: " + err.Error()
		tc.Blocker = &Blocker{Kind: BlockTriggers, Message: "the triggers of move " + m.Name + " cannot be generated: " + err.Error()}
		return tc, nil
	}
	rep, err := triggers.Check(ctx, q, set)
	switch {
	case err == nil:
		tc.Report, tc.AsExpected = rep, true
		tc.Summary = fmt.Sprintf("%d object(s) present and as generated", len(rep.Objects))
	case errors.Is(err, triggers.ErrDrift):
		tc.Report = rep
		tc.Summary = "not as generated: " + err.Error()
		tc.Blocker = &Blocker{Kind: BlockTriggers, Message: "sync triggers of move " + m.Name + " are not as generated (" + err.Error() + "); repair them with tandem triggers install " + m.Name, NextCommand: "tandem triggers install " + m.Name}
	default:
		return tc, err
	}
	return tc, nil
}

// InstanceBlockers names every instance missing or in error in snap, in
// the order of every other blocker: each may come back running the release
// it had, so it holds the floor and every gate waits for it, and nothing
// is safe until it is back or deleted.
func InstanceBlockers(snap services.Snapshot) []Blocker {
	var refs []InstanceRef
	seen := map[string]services.Instance{}
	for _, in := range snap.Instances {
		if in.State == services.StateMissing || in.State == services.StateError {
			refs = append(refs, InstanceRef{ID: in.ID, Service: in.Service, Host: in.Host, Release: in.Release, State: string(in.State)})
			seen[in.ID+"\x00"+in.Service+"\x00"+in.Host] = in
		}
	}
	sortInstances(refs)
	out := make([]Blocker, 0, len(refs))
	for _, r := range refs {
		in := seen[r.ID+"\x00"+r.Service+"\x00"+r.Host]
		out = append(out, Blocker{Kind: BlockInstances, Instances: []InstanceRef{r},
			Message: fmt.Sprintf("instance %s (%s on %s, release %d) is %s, last heartbeat %s: it still counts for the floor and may come back old; bring it back, or delete it if it will not return: tandem services delete %s",
				r.ID, r.Service, r.Host, r.Release, r.State, in.HeartbeatAt.UTC().Format(time.RFC3339), r.ID)})
	}
	return out
}

// interruptedBlockers names each DDL step proposed and never applied,
// with the advance that checks the live schema and completes it.
func interruptedBlockers(m move.Move, steps []StepLog) []Blocker {
	var out []Blocker
	for _, s := range steps {
		if !s.Interrupted() {
			continue
		}
		next := "tandem moves advance " + m.Name
		// Step ids are "<move>/<phase entered>/<n>-<kind>".
		if parts := strings.Split(s.ID, "/"); len(parts) == 3 {
			if p, err := move.ParsePhase(parts[1]); err == nil {
				next += " --to " + p.String()
			}
		}
		out = append(out, Blocker{Kind: BlockInterrupted, Message: fmt.Sprintf("step %s (%s) was proposed at %s and never applied: a run was interrupted half way; %s checks the live schema and completes it",
			s.ID, s.Description, s.ProposedAt.UTC().Format(time.RFC3339), next), NextCommand: next})
	}
	return out
}
