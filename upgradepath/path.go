package upgradepath

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/services"
)

// Sentinel errors.
var (
	// ErrTarget means the target release can never be planned for as
	// things stand: not a release, older than a release instances run, or
	// below the finalized floor. It comes in a *TargetError.
	ErrTarget = errors.New("target release refused")
	// ErrNoPath means no release up to the target can be rolled next: the
	// moves' releases leave no way there. It comes in a *NoPathError.
	ErrNoPath = errors.New("no upgrade path")
)

// TargetError says why a target release is refused.
type TargetError struct {
	Target int64
	Reason string
}

func (e *TargetError) Error() string {
	return fmt.Sprintf("upgradepath: release %d: %s", e.Target, e.Reason)
}

func (e *TargetError) Unwrap() error { return ErrTarget }

// NoPathError names, per move, what holds back every release that could be
// rolled next.
type NoPathError struct {
	Target int64
	Held   []string
}

func (e *NoPathError) Error() string {
	return fmt.Sprintf("upgradepath: no release up to %d can be rolled next: %s", e.Target, strings.Join(e.Held, "; "))
}

func (e *NoPathError) Unwrap() error { return ErrNoPath }

// Move is one move as the planner starts from it: its recorded definition
// and where the ledger has it.
type Move struct {
	Move  move.Move
	Phase move.Phase
	// Backfilled: the forward backfill is complete. Verified: a verify
	// ran since, found no mismatch, and no row failed.
	Backfilled, Verified bool
	// Restart: the backfill must start again from the first key (verify
	// found mismatches, or instances wrote old only behind it).
	Restart   bool
	Finalized bool
}

// Blocker is one of status's blockers: Move is empty for what blocks
// every move (an instance missing or in error). Problem marks what is
// wrong with the move now (an interrupted step, triggers not as
// generated) rather than what its next gate waits for; Phase is where the
// move stands.
type Blocker struct {
	Move    string
	Phase   move.Phase
	Problem bool
	dualwrite.Blocker
}

// Input is what a path is planned from: the registry and the ledger, read
// at one moment (see FromStatus).
type Input struct {
	// Target is the release the fleet is to run.
	Target int64
	// Moves in the ledger's order.
	Moves []Move
	// Instances are the registry's instances that are not deleted.
	Instances []services.Instance
	// APIs holds, per release, the APIs its instances serve, as the
	// registry saw them (deleted instances included): a roll between two
	// releases both listed here is checked for a common RPC version.
	APIs map[int64][]services.API
	// Finalized is the release below which instances may not register.
	Finalized int64
	// Blockers is what blocks right now, as status reports it.
	Blockers []Blocker
	// Freeze is the write freeze in force (dualwrite.ReadFreeze): a
	// window the path opened and has not closed yet goes on without a
	// second freeze; any other is kept through the steps and lifted last.
	Freeze dualwrite.FreezeState
}

// FromStatus builds an Input from a status of the moves, the moves it
// reports on (as recorded), a snapshot of the registry, and the registry's
// instances including deleted ones (for the API versions of releases no
// longer running; nil is fine). The blockers are status's own: the
// instances missing or in error, each move's problems and the blockers of
// its next gate.
func FromStatus(target int64, st dualwrite.Status, moves []move.Move, snap services.Snapshot, history []services.Instance) Input {
	in := Input{Target: target, Finalized: snap.Finalized, APIs: map[int64][]services.API{}}
	for _, b := range dualwrite.InstanceBlockers(snap) {
		in.Blockers = append(in.Blockers, Blocker{Blocker: b})
	}
	byName := map[string]move.Move{}
	for _, m := range moves {
		byName[m.Name] = m
	}
	for _, ms := range st.Moves {
		m, ok := byName[ms.Name]
		if !ok {
			continue
		}
		pm := Move{Move: m, Phase: ms.Phase, Backfilled: ms.Backfill.Complete, Finalized: ms.Finalized}
		if ms.Backfill.Complete && ms.VerifiedAt != nil && ms.Backfill.DoneAt != nil && !ms.VerifiedAt.Before(*ms.Backfill.DoneAt) &&
			(ms.Mismatches == nil || *ms.Mismatches == 0) && ms.FailedRows == 0 {
			pm.Verified = true
		}
		if ms.Mismatches != nil && *ms.Mismatches > 0 {
			pm.Backfilled, pm.Restart = false, true
		}
		if ms.Next != nil && slices.ContainsFunc(ms.Next.Blockers, func(b dualwrite.Blocker) bool { return b.Kind == dualwrite.BlockOldWriters }) {
			pm.Backfilled, pm.Verified, pm.Restart = false, false, true
		}
		in.Moves = append(in.Moves, pm)
		for _, b := range ms.Problems {
			in.Blockers = append(in.Blockers, Blocker{Move: ms.Name, Phase: ms.Phase, Problem: true, Blocker: b})
		}
		if ms.Next != nil && !ms.Next.Open {
			for _, b := range ms.Next.Blockers {
				in.Blockers = append(in.Blockers, Blocker{Move: ms.Name, Phase: ms.Phase, Blocker: b})
			}
		}
	}
	for _, i := range snap.Instances {
		if i.State != services.StateDeleted {
			in.Instances = append(in.Instances, i)
		}
	}
	seen := map[int64]time.Time{}
	for _, list := range [][]services.Instance{history, snap.Instances} {
		for _, i := range list {
			if len(i.APIs) == 0 {
				continue
			}
			// The latest seen instance of a release says what it serves.
			if t, ok := seen[i.Release]; !ok || i.HeartbeatAt.After(t) {
				seen[i.Release] = i.HeartbeatAt
				in.APIs[i.Release] = i.APIs
			}
		}
	}
	return in
}

// StepKind says what a step does.
type StepKind string

// The kinds of steps.
const (
	StepRoll     StepKind = "roll"     // restart instances on a newer release, one at a time
	StepFreeze   StepKind = "freeze"   // stop writes (tandem freeze)
	StepThaw     StepKind = "thaw"     // let writes go on (tandem thaw)
	StepAdvance  StepKind = "advance"  // a phase transition (tandem moves advance)
	StepBackfill StepKind = "backfill" // fill new from old
	StepVerify   StepKind = "verify"   // compare new with transform(old)
	StepFinalize StepKind = "finalize" // close the rollback window
	StepContract StepKind = "contract" // drop the old column
)

// Step is one step of a path.
type Step struct {
	Kind StepKind
	// Move is the move the step acts on; empty for a roll and for a
	// freeze of everything.
	Move string
	// Release is what a roll restarts instances on; Instances lists them,
	// by id, in order.
	Release   int64
	Instances []string
	// From and To are the phases of an advance or a contract.
	From, To move.Phase
	// Command is the exact command to run: for a roll, the one that
	// returns once the roll is done (the restarts are the deployment's).
	Command string
	// Irreversible: there is no way back once it ran (finalize, contract).
	Irreversible bool
	// Frozen: the step runs under a write freeze (between a freeze step
	// and its thaw). Offline: a roll that cannot be rolling (the releases
	// share no RPC version), so every instance restarts at once.
	Frozen, Offline bool
	// Oldest is, for an advance or a contract, the oldest release that
	// may start on the move once the step ran (dualwrite.CheckRelease).
	Oldest int64
	// Why says why the step is there, for people.
	Why string
}

// Path is the ordered steps from the fleet as it runs now to every
// instance at Target, with every move as far as Target carries it.
type Path struct {
	Target int64
	// Running lists the releases instances run now, lowest first.
	Running []int64
	Steps   []Step
	// Blockers is what blocks right now (status's blockers); Now is those
	// that hold the first step: every problem, whatever blocks every move,
	// and what the first step's own gate waits for, less what that step
	// itself clears (a backfill clears "the backfill has not run").
	Blockers, Now []Blocker
	// TargetKnown says a move names the target or an instance of it
	// registered (deleted ones included, through Input.APIs); a target
	// nothing knows is planned as carrying every phase the moves name up
	// to it, and moves it brings that the ledger does not know yet are
	// not in the path.
	TargetKnown bool
}

// Done reports whether nothing is left to do.
func (p Path) Done() bool { return len(p.Steps) == 0 }

// fleet is the planner's simulation of the registry and the ledger.
type fleet struct {
	ids   []string
	rel   map[string]int64
	moves []Move
	// frozen holds the moves whose writes are frozen; frozenAll, every
	// move's.
	frozen    map[string]bool
	frozenAll bool
	// kept is the freeze in force the path did not open: the operator's,
	// for a reason the planner cannot see, so the path keeps it and lifts
	// it as its last step.
	kept     dualwrite.FreezeState
	keptDone bool // the path's own thaw --all lifted it on the way
}

func (f *fleet) floor() int64 {
	var lo int64
	for _, id := range f.ids {
		if r := f.rel[id]; lo == 0 || r < lo {
			lo = r
		}
	}
	return lo
}

// allAct reports whether every instance acts, for m, on a phase that
// satisfies ok (nil: no wait). An instance acts on the ledger's phase
// capped by what its release ships (dualwrite.Effective).
func (f *fleet) allAct(m Move, ok func(move.Phase) bool) bool {
	if ok == nil {
		return true
	}
	for _, id := range f.ids {
		if !ok(dualwrite.Effective(m.Phase, m.Move.Releases.Highest(f.rel[id]))) {
			return false
		}
	}
	return true
}

// Plan computes the path to in.Target. It only computes: the caller reads
// the registry and the ledger (FromStatus) and runs the steps.
//
// The rule, in the spirit of a table of schema ranges against release
// ranges: advance every move as far as its gates let it with the releases
// the fleet runs (with the backfill, verify and finalize each gate needs
// before it); when no move can go further, roll the newest release, up to
// the target, that ships no phase more than one past where each move
// stands and that may start on every move now; repeat. The gates' rules
// are dualwrite's (InstanceWait, OpInstanceWait, CheckRelease), applied
// to the releases the fleet will run.
func Plan(in Input) (Path, error) {
	p := Path{Target: in.Target, Blockers: in.Blockers}
	f := &fleet{rel: map[string]int64{}}
	var newest int64
	for _, i := range in.Instances {
		if i.State == services.StateDeleted {
			continue
		}
		if _, dup := f.rel[i.ID]; !dup {
			f.ids = append(f.ids, i.ID)
		}
		f.rel[i.ID] = max(f.rel[i.ID], i.Release)
		newest = max(newest, i.Release)
		if !slices.Contains(p.Running, i.Release) {
			p.Running = append(p.Running, i.Release)
		}
	}
	slices.Sort(f.ids)
	slices.Sort(p.Running)
	switch {
	case in.Target <= 0:
		return p, &TargetError{Target: in.Target, Reason: "a release is a positive integer"}
	case in.Target < newest:
		return p, &TargetError{Target: in.Target, Reason: fmt.Sprintf("older than release %d, which instances run: a path goes forward; to go back, roll the older release and move the moves back (tandem moves advance NAME --to PHASE)", newest)}
	case in.Target < in.Finalized:
		return p, &TargetError{Target: in.Target, Reason: fmt.Sprintf("below release %d, the finalized floor: older releases may not register", in.Finalized)}
	}
	f.moves = slices.Clone(in.Moves)
	_, seen := in.APIs[in.Target]
	p.TargetKnown = seen || slices.Contains(p.Running, in.Target) || slices.ContainsFunc(in.Moves, func(m Move) bool {
		return slices.ContainsFunc(move.Phases()[1:], func(ph move.Phase) bool { return m.Move.Releases.For(ph) == in.Target })
	})
	p.Steps = f.keep(in)
	goal := func(m Move) move.Phase { return m.Move.Releases.Highest(in.Target) }
	for range 64 {
		progressed := false
		for i := range f.moves {
			for f.moves[i].Phase < goal(f.moves[i]) {
				steps := f.next(i)
				if len(steps) == 0 {
					break
				}
				p.Steps = append(p.Steps, steps...)
				progressed = true
			}
		}
		if progressed {
			continue
		}
		if f.floor() >= in.Target || len(f.ids) == 0 {
			p.Steps = append(p.Steps, f.thawKept()...)
			p.Now = holding(p.Steps, in.Blockers)
			return p, nil
		}
		steps, err := f.roll(in)
		if err != nil {
			return p, err
		}
		p.Steps = append(p.Steps, steps...)
	}
	return p, fmt.Errorf("upgradepath: the path to %d does not end (a bug: report it)", in.Target)
}

// next returns the steps that take move i toward its next phase as far as
// the fleet allows now, and applies them; none when the move must wait for
// a roll.
func (f *fleet) next(i int) []Step {
	m := &f.moves[i]
	name := m.Move.Name
	to, ok := m.Phase.Next()
	if !ok {
		return nil
	}
	var steps []Step
	add := func(s Step) { s.Move = name; steps = append(steps, s) }
	advanceOK := f.allAct(*m, dualwrite.InstanceWait(m.Move, m.Phase, to))
	frozen := m.Move.FreezesInto(to)
	switch {
	case to == move.ReadNew && (!m.Backfilled || !m.Verified):
		backfillOK := m.Backfilled || f.allAct(*m, dualwrite.OpInstanceWait(m.Move, dualwrite.OpBackfill))
		if !backfillOK || frozen && !advanceOK {
			return nil // a frozen window holds backfill, verify and advance together
		}
		if frozen {
			f.freeze(add, name, to)
		}
		if !m.Backfilled {
			s := Step{Kind: StepBackfill, Command: "tandem moves backfill " + name, Frozen: frozen,
				Why: "fill new from old in batches, so read-new finds every row"}
			if m.Restart {
				s.Command += " --restart"
				s.Why = "fill new from old again from the first key: rows may be stale in new (mismatches found, or old-only writes behind the backfill)"
			}
			add(s)
			m.Backfilled, m.Verified, m.Restart = true, false, false
		}
		add(Step{Kind: StepVerify, Command: "tandem moves verify " + name, Frozen: frozen,
			Why: "read-new needs a verify, since the backfill finished, that finds no row where new differs from transform(old)"})
		m.Verified = true
		if !advanceOK {
			return steps
		}
	case to == move.Contracted && !m.Finalized:
		if !f.allAct(*m, dualwrite.OpInstanceWait(m.Move, dualwrite.OpFinalize)) {
			return nil
		}
		add(Step{Kind: StepFinalize, Command: "tandem moves finalize " + name, Irreversible: true,
			Why: "closes the rollback window: the move can no longer go back, and releases older than the floor may no longer register"})
		m.Finalized = true
		if frozen {
			f.freeze(add, name, to)
		}
	default:
		if !advanceOK {
			return nil
		}
		if frozen {
			f.freeze(add, name, to)
		}
	}
	if !advanceOK {
		return steps
	}
	s := Step{Kind: StepAdvance, From: m.Phase, To: to, Command: fmt.Sprintf("tandem moves advance %s --to %s", name, to), Frozen: frozen,
		Why: fmt.Sprintf("instances acting on %s: %s", to, to.Does())}
	if to == move.Contracted {
		s.Kind, s.Irreversible = StepContract, true
		s.Why = "drops the old column for good: it asks for confirmation on a terminal (a script adds --yes), and --backup FILE takes a consistent copy of the database first"
	}
	before := oldestStart(m.Move, m.Phase)
	s.Oldest = oldestStart(m.Move, to)
	if s.Oldest > before {
		s.Why += fmt.Sprintf("; from here no release older than %d may start (a roll back below it is refused)", s.Oldest)
	}
	add(s)
	m.Phase = to
	if frozen && !f.keeps(name) {
		add(Step{Kind: StepThaw, Command: "tandem thaw --move " + name, Why: fmt.Sprintf("%s is at %s: writes go on", name, to)})
		delete(f.frozen, name)
	}
	return steps
}

// freeze opens the write freeze of a move entering to, unless it is open.
func (f *fleet) freeze(add func(Step), name string, to move.Phase) {
	if f.frozen[name] || f.frozenAll {
		return
	}
	f.frozen[name] = true
	reason := windowReason(name, to)
	add(Step{Kind: StepFreeze, Command: fmt.Sprintf("tandem freeze --move %s --reason '%s'", name, reason),
		Why: fmt.Sprintf("the move declares freeze: [%s]: its data cannot be kept right both ways while writers run; reads go on", to)})
}

// windowReason is the reason of the freeze the path opens for move name
// entering phase to; offlineReason is in the reason of its offline
// windows. A freeze in force with such a reason is the path's own.
func windowReason(name string, to move.Phase) string {
	return fmt.Sprintf("%s enters %s under a write freeze", name, to)
}

const offlineReason = "shares no RPC version with release"

// keep takes the freeze in force as the path's starting state and returns
// the steps it needs first. A window of the path's own (known by the
// reason the path gave it) goes on while the path is in it and is thawed
// first once it is over. Any other freeze was made for a reason the
// planner cannot see: the path runs under it and lifts it as its last
// step (thawKept), never first.
func (f *fleet) keep(in Input) []Step {
	f.frozen = map[string]bool{}
	fz := in.Freeze
	if !fz.Frozen() {
		return nil
	}
	over := fmt.Sprintf("writes are frozen (%q, since %s), a window of this path that is over: thaw", fz.Reason, fz.Since.UTC().Format(time.RFC3339))
	if fz.All {
		f.frozenAll = true
		switch {
		case !strings.Contains(fz.Reason, offlineReason):
			f.kept = fz
		case !f.offlineNext(in):
			f.frozenAll = false
			return []Step{{Kind: StepThaw, Command: "tandem thaw --all", Why: over}}
		}
		return nil
	}
	var steps []Step
	kept := fz
	kept.Moves = nil
	for _, name := range fz.Moves {
		f.frozen[name] = true
		if i := slices.IndexFunc(f.moves, func(m Move) bool { return m.Move.Name == name }); i >= 0 {
			m := f.moves[i]
			if to, ok := m.Phase.Next(); ok && m.Move.FreezesInto(to) && fz.Reason == windowReason(name, to) {
				continue // the window the path is in
			}
			if m.Move.FreezesInto(m.Phase) && fz.Reason == windowReason(name, m.Phase) {
				delete(f.frozen, name)
				steps = append(steps, Step{Kind: StepThaw, Move: name, Command: "tandem thaw --move " + name, Why: over})
				continue
			}
		}
		kept.Moves = append(kept.Moves, name)
	}
	if len(kept.Moves) > 0 {
		f.kept = kept
	}
	return steps
}

// offlineNext says whether the path's next step is an offline roll: no
// move can advance with the fleet as it is, and the release to roll next
// shares no RPC version with the ones running.
func (f *fleet) offlineNext(in Input) bool {
	sim := &fleet{ids: f.ids, rel: maps.Clone(f.rel), moves: slices.Clone(f.moves), frozen: map[string]bool{}, frozenAll: true}
	for i := range sim.moves {
		if sim.moves[i].Phase < sim.moves[i].Move.Releases.Highest(in.Target) && len(sim.next(i)) > 0 {
			return false
		}
	}
	if sim.floor() >= in.Target || len(sim.ids) == 0 {
		return false
	}
	steps, err := sim.roll(in)
	return err == nil && slices.ContainsFunc(steps, func(s Step) bool { return s.Offline })
}

// keeps says whether the kept freeze covers the move name.
func (f *fleet) keeps(name string) bool {
	return !f.keptDone && f.kept.Frozen() && (f.kept.All || slices.Contains(f.kept.Moves, name))
}

// thawKept is the path's last step when a freeze was in force at its
// start: the thaw of it, unless a thaw of every move lifted it on the way.
func (f *fleet) thawKept() []Step {
	fz := f.kept
	if !fz.Frozen() || f.keptDone {
		return nil
	}
	why := fmt.Sprintf("writes were frozen before the path (%q, since %s); its steps ran under that freeze, and none needs it kept: thaw once that reason is gone", fz.Reason, fz.Since.UTC().Format(time.RFC3339))
	if fz.All {
		return []Step{{Kind: StepThaw, Command: "tandem thaw --all", Why: why}}
	}
	var steps []Step
	for _, name := range fz.Moves {
		if f.frozen[name] {
			steps = append(steps, Step{Kind: StepThaw, Move: name, Command: "tandem thaw --move " + name, Why: why})
		}
	}
	return steps
}

// roll picks the next release and restarts every instance below it.
func (f *fleet) roll(in Input) ([]Step, error) {
	lo := f.floor()
	cands := []int64{in.Target}
	for _, m := range f.moves {
		for _, ph := range move.Phases()[1:] {
			if r := m.Move.Releases.For(ph); r > lo && r <= in.Target {
				cands = append(cands, r)
			}
		}
	}
	for _, r := range f.rel {
		if r > lo && r <= in.Target {
			cands = append(cands, r)
		}
	}
	slices.SortFunc(cands, func(a, b int64) int { return cmp.Compare(b, a) })
	cands = slices.Compact(cands)
	var held []string
	pick, lowest, note := int64(0), int64(0), ""
	for _, r := range cands {
		ahead, refused := f.holds(r)
		if ahead == "" && refused == "" {
			pick = r
			break
		}
		if refused == "" {
			lowest = r // candidates go newest first: the last one is the lowest
		}
		held = append(held, fmt.Sprintf("release %d: %s", r, strings.Join(slices.DeleteFunc([]string{ahead, refused}, func(s string) bool { return s == "" }), "; ")))
	}
	if pick == 0 && lowest != 0 {
		// Every release ships several phases at once past where a move
		// stands (a move that needs fewer releases): the smallest step
		// forward, since nothing else lets the moves go on.
		pick, held = lowest, nil
		note = fmt.Sprintf(" (release %d ships several phases at once; no release between lets the moves go on)", lowest)
	}
	if pick == 0 {
		return nil, &NoPathError{Target: in.Target, Held: held}
	}
	var ids []string
	var from []int64
	for _, id := range f.ids {
		if f.rel[id] < pick {
			ids = append(ids, id)
			if !slices.Contains(from, f.rel[id]) {
				from = append(from, f.rel[id])
			}
		}
	}
	slices.Sort(from)
	s := Step{Kind: StepRoll, Release: pick, Instances: ids, Command: fmt.Sprintf("tandem wait --floor %d", pick),
		Why: fmt.Sprintf("restart %s on release %d, one at a time; the command returns once the floor is %d", strings.Join(ids, ", "), pick, pick)}
	s.Why += note
	var steps []Step
	if clash := rpcClash(in.APIs, from, pick); clash != "" {
		reason := fmt.Sprintf("release %d %s %s", pick, offlineReason, joinInts(from))
		s.Offline, s.Frozen = true, true
		s.Why = fmt.Sprintf("restart %s on release %d all at once, not one at a time: %s; the command returns once the floor is %d", strings.Join(ids, ", "), pick, clash, pick)
		if !f.frozenAll {
			steps = append(steps, Step{Kind: StepFreeze, Command: fmt.Sprintf("tandem freeze --all --reason '%s'", reason),
				Why: "an offline window: the two releases cannot talk to each other, so writes stop until every instance runs the new one; reads go on where they can"})
		}
		if f.kept.All && !f.keptDone {
			steps = append(steps, s) // the freeze in force goes on: the path's last step lifts it
		} else {
			why := fmt.Sprintf("every instance runs release %d: writes go on", pick)
			if f.kept.Frozen() && !f.keptDone {
				why += fmt.Sprintf(" (this lifts every freeze, also the one of %s that was in force before the path)", strings.Join(f.kept.Moves, ", "))
				f.keptDone = true
			}
			steps = append(steps, s, Step{Kind: StepThaw, Command: "tandem thaw --all", Why: why})
			f.frozenAll = false
			clear(f.frozen)
		}
	} else {
		steps = append(steps, s)
	}
	for _, id := range ids {
		f.rel[id] = pick
	}
	return steps, nil
}

// holds says why release r may not be rolled now, or "" twice when it
// may: ahead, when it ships a phase two or more past where a move stands;
// refused, when a move's ledger refuses it (dualwrite.CheckRelease).
func (f *fleet) holds(r int64) (ahead, refused string) {
	var a, b []string
	for _, m := range f.moves {
		if can := m.Move.Releases.Highest(r); int(can) > int(m.Phase)+1 {
			a = append(a, fmt.Sprintf("it ships %s of %s, which is at %s", can, m.Move.Name, m.Phase))
		}
		if err := dualwrite.CheckRelease(m.Move, r, m.Phase, true); err != nil {
			b = append(b, err.Error())
		}
	}
	return strings.Join(a, "; "), strings.Join(b, "; ")
}

// rpcClash says which API releases from and to share no version of, or ""
// when they all do or what they serve is not known. A client sends at most
// the cap (the lowest current version), so two releases talk when the older
// one's current version is at least the newer one's oldest accepted.
func rpcClash(apis map[int64][]services.API, from []int64, to int64) string {
	newer, ok := apis[to]
	if !ok {
		return ""
	}
	var out []string
	for _, r := range from {
		for _, o := range apis[r] {
			for _, n := range newer {
				if n.Name == o.Name && (o.Current.Less(n.Oldest) || n.Current.Less(o.Oldest)) {
					out = append(out, fmt.Sprintf("API %s: release %d serves %s to %s, release %d %s to %s", o.Name, r, o.Oldest, o.Current, to, n.Oldest, n.Current))
				}
			}
		}
	}
	return strings.Join(out, "; ")
}

func joinInts(rs []int64) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = fmt.Sprint(r)
	}
	return strings.Join(s, ", ")
}

// oldestStart is the oldest release a process may start on with m at p:
// the releases m names cut the range of releases where that can change.
func oldestStart(m move.Move, p move.Phase) int64 {
	cands := []int64{1}
	for _, ph := range move.Phases()[1:] {
		if r := m.Releases.For(ph); r > 0 {
			cands = append(cands, r)
		}
	}
	slices.Sort(cands)
	for _, r := range cands {
		if dualwrite.CheckRelease(m, r, p, true) == nil {
			return r
		}
	}
	return cands[len(cands)-1]
}

// holding returns the blockers that hold the first of steps (all of them
// when there is none).
func holding(steps []Step, bs []Blocker) []Blocker {
	if len(steps) == 0 {
		return bs
	}
	first := steps[0]
	var out []Blocker
	for _, b := range bs {
		keep := true
		switch {
		case b.Move == "" || b.Problem:
		case first.Kind == StepRoll, first.Kind == StepFreeze, first.Kind == StepThaw, b.Move != first.Move:
			// A gate's wait is for the steps after this one (a roll is
			// what clears instances that do not act on a phase yet).
			keep = false
		case first.Kind == StepBackfill:
			// A running backfill (Retry) still holds it: wait.
			keep = !(b.Kind == dualwrite.BlockBackfill && !b.Retry || b.Kind == dualwrite.BlockVerify ||
				b.Kind == dualwrite.BlockMismatches || b.Kind == dualwrite.BlockOldWriters)
		case first.Kind == StepVerify:
			keep = b.Kind != dualwrite.BlockVerify && b.Kind != dualwrite.BlockInstances
		case first.Kind == StepFinalize:
			keep = b.Kind != dualwrite.BlockFinalize
		}
		if keep {
			out = append(out, b)
		}
	}
	return out
}
