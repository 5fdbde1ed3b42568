package dualwrite

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/schema"
	"github.com/tandem-go/tandem/services"
)

// Effective is the phase an instance acts on: the ledger's phase, capped by
// the highest phase its build ships.
func Effective(ledger, build move.Phase) move.Phase {
	return min(ledger, build)
}

// CheckRelease is the rule a tracker applies to its own build: it returns
// a *TooOldError when a build of release may not act on m while the ledger
// has it at ledger, starting (a process starting now) or running (one
// already registered), and nil when it may. A build may not act two or more
// phases behind the ledger (with triggers, which keep both columns in
// step, only behind a contracted move), and may not start acting on legacy,
// writing old only, once a move without triggers is at write-both or
// later: the backfill may already have passed the rows it writes.
func CheckRelease(m move.Move, release int64, ledger move.Phase, starting bool) error {
	can := m.Releases.Highest(release)
	// With triggers the database keeps old and new in sync for any
	// mix of phases short of contract, so a lagging build is safe.
	lagOK := m.Triggers && ledger <= move.WriteNew
	switch {
	case !lagOK && int(can) < int(ledger)-1:
		return &TooOldError{Move: m.Name, Release: release, Can: can, Ledger: ledger, Need: m.Releases.For(ledger - 1), Starting: starting}
	case starting && !m.Triggers && ledger >= move.WriteBoth && can == move.Legacy:
		// A running one was registered before the move left legacy,
		// and the backfill waits until it writes both or is deleted;
		// one starting now could register after the backfill started
		// and write old only behind its back.
		return &TooOldError{Move: m.Name, Release: release, Can: can, Ledger: ledger, Need: m.Releases.For(move.WriteBoth), Starting: true, OldOnly: true}
	}
	return nil
}

// Tracker is the instance side of moves: it reads the ledger and says, with
// no I/O on the hot path, which phase this instance acts on for each move.
//
// Bracket every operation that reads or writes a moved value with Begin:
//
//	phase, done := tracker.Begin("price_cents")
//	defer done()
//	err := router.Write(ctx, tx, phase, cents, id) // and commit, before done
//
// An operation that may write begins with BeginWrite instead: it brackets
// the operation the same way and is refused while the operator froze
// writes on the move (see BeginWrite and FreezeAck); reads keep Begin.
//
// The operation acts on the phase Begin returned until done, even when the
// tracker refreshes meanwhile. Report Phases with every heartbeat
// (services.Heartbeat.Phases): per move it is the phase the tracker holds
// unless an operation begun at another phase still runs, and the next
// transition waits until every instance reports the current phase. So an
// instance acknowledges write-both only once no write it began at legacy
// (old only) can still commit, and read-new's backfill and verify cannot
// be overtaken by one.
type Tracker struct {
	db      *dialect.DB
	release int64
	moves   []move.Move
	// state holds one entry per move, fixed at construction, so the hot
	// path only reads a map and touches atomics.
	state map[string]*moveState

	// freeze is the write freeze the tracker holds (never nil once
	// started); otherWrites counts writes begun with BeginWrite on names
	// the tracker does not know, and otherDone ends one.
	freeze      atomic.Pointer[FreezeState]
	otherWrites atomic.Int64
	otherDone   func()
	// otherRefused counts the refusals of such names (metrics).
	otherRefused atomic.Int64
	ackMu        sync.Mutex // guards acked
	acked        int64      // the freeze state FreezeAck last acknowledged

	waiters atomic.Int32 // goroutines in Wait
	mu      sync.Mutex   // guards idle
	idle    chan struct{}

	stopOnce sync.Once
	stopped  chan struct{}
	stopErr  error

	log        *slog.Logger
	metricsReg prometheus.Registerer // WithMetrics

	// notices and cluster: where Run hears of a freeze or thaw at once
	// (WithNotices).
	notices *nats.Conn
	cluster string
}

// phaseCount is the number of phases; running counts are indexed by phase.
const phaseCount = int(move.Contracted) + 1

type moveState struct {
	held    atomic.Int32 // the phase the tracker holds (move.Phase)
	running [phaseCount]atomic.Int64
	// done holds one func per phase, built once, so Begin allocates
	// nothing.
	done [phaseCount]func()
	// writes counts the operations begun with BeginWrite that run, and
	// writeDone ends one begun at each phase.
	writes    atomic.Int64
	writeDone [phaseCount]func()
	refused   atomic.Int64 // BeginWrite's refusals, for metrics
	// declared and recorded are the definition versions the build
	// declared and the ledger recorded as current at construction.
	declared, recorded int64
}

// NewTracker reads the ledger once for the moves this build knows, after
// checking each against its recorded definitions (recording it when the
// ledger has none): a declaration equal to none of the recorded versions
// is refused with a *DriftError. One equal to an earlier version (a build
// of an earlier release of the rollout, restarting after an amendment) is
// a known older declaration: it starts, logged at Info, and the tracker
// acts by the ledger's current definition (see DefinitionVersions).
// It fails
// with a *TooOldError (Starting) when release may not start on a move:
//
//   - it would act on legacy, writing old only, while the move is at
//     write-both or later and has no triggers: the backfill may already
//     have passed the rows it writes, and nothing would find them again;
//   - it would act two or more phases behind the ledger (with triggers,
//     which keep both columns in step, only behind a contracted move).
//
// Acting one phase behind is otherwise safe, starting as running:
// adjacent phases run side by side and the gates wait for the instance.
// A release that ships up to read-new, say, may start while the ledger is
// at write-new. The error names the release to run.
func NewTracker(ctx context.Context, db *dialect.DB, release int64, moves []move.Move, opts ...Option) (*Tracker, error) {
	if err := move.ValidateAll(moves); err != nil {
		return nil, fmt.Errorf("dualwrite: tracker: %w", err)
	}
	t := &Tracker{db: db, release: release, moves: slices.Clone(moves), state: make(map[string]*moveState, len(moves)), stopped: make(chan struct{}),
		log: slog.New(slog.DiscardHandler)}
	t.freeze.Store(&FreezeState{Moves: []string{}})
	t.otherDone = func() { t.endWrite(&t.otherWrites, true) }
	if err := applyOptions("NewTracker", t, opts, func(o Option) func(*Tracker) { return o.tracker }); err != nil {
		return nil, err
	}
	if err := schema.Check(ctx, db, Tables()); err != nil {
		return nil, fmt.Errorf("dualwrite: tracker: %w", err)
	}
	// The build's declarations must be what the ledger records (and are
	// recorded if it knows none): an instance acting on another transform
	// or other releases than the operator's commands would be wrong.
	found, err := recordDeclared(ctx, db, moves, release)
	if err != nil {
		var de *DriftError
		if errors.As(err, &de) {
			return nil, err
		}
		return nil, fmt.Errorf("dualwrite: tracker: %w", err)
	}
	for i, m := range t.moves {
		s := &moveState{}
		for p := range s.done {
			s.done[p] = func() { t.end(s, move.Phase(p), true) }
			s.writeDone[p] = func() {
				t.end(s, move.Phase(p), true)
				t.endWrite(&s.writes, true)
			}
		}
		t.state[m.Name] = s
		if found == nil {
			continue
		}
		s.declared, s.recorded = found[i].Declared, found[i].Current.Version
		if !found[i].older() {
			continue
		}
		// The ledger's current definition governs: its releases and
		// triggers decide the phase this build acts on.
		cur, err := MoveFromDefinition([]byte(found[i].Current.Canonical))
		if err != nil {
			return nil, fmt.Errorf("dualwrite: tracker: move %s: %w", m.Name, err)
		}
		t.moves[i] = cur
		t.log.Info("dualwrite: known older declaration, acting by the recorded definition",
			"move", m.Name, "release", release, "declared_version", s.declared, "recorded_version", s.recorded)
	}
	if err := t.refresh(ctx, true); err != nil {
		return nil, err
	}
	if err := t.startMetrics(); err != nil {
		return nil, err
	}
	return t, nil
}

// DefinitionVersions returns, for a move the tracker knows, the version of
// its recorded definition that this build declared and the version the
// ledger recorded as current when the tracker started (the one it acts
// by); declared below recorded is a known older declaration. Both are 0
// when the ledger records no definitions yet.
func (t *Tracker) DefinitionVersions(name string) (declared, recorded int64) {
	if s := t.state[name]; s != nil {
		return s.declared, s.recorded
	}
	return 0, 0
}

// Refresh rereads the ledger. On error the phases stay as they were. A
// *TooOldError means the ledger moved two phases past this build (one
// phase behind is allowed): stop the instance (see Run). A running
// instance acting on legacy behind a move at write-both is not refused:
// the gates wait for it to acknowledge write-both before the backfill.
func (t *Tracker) Refresh(ctx context.Context) error {
	if err := t.Err(); err != nil {
		return err
	}
	return t.refresh(ctx, false)
}

// Stop ends the tracker for good, because the instance it serves must stop
// acting: typically the registry fenced it (its row was deleted or a newer
// process of its id superseded it), and cause is that *services.FencedError.
// Run returns cause at once and Refresh returns it from then on; Err
// reports it. Operations already begun finish (Wait waits for them); the
// application must begin no new one once Err is not nil. Its signature
// fits services.OnFenced and rpcver.WithOnFenced.
func (t *Tracker) Stop(cause error) {
	if cause == nil {
		cause = errors.New("dualwrite: tracker stopped")
	}
	t.stopOnce.Do(func() {
		t.stopErr = fmt.Errorf("dualwrite: tracker stopped: %w", cause)
		close(t.stopped)
	})
}

// Err returns why the tracker was stopped (see Stop), or nil while it runs.
func (t *Tracker) Err() error {
	select {
	case <-t.stopped:
		return t.stopErr
	default:
		return nil
	}
}

func (t *Tracker) refresh(ctx context.Context, starting bool) error {
	out := make([]move.Phase, len(t.moves))
	for i, m := range t.moves {
		ledger := move.Legacy
		if ok, err := sqldialect.Of(t.db).TableExists(ctx, t.db, MovesTable); err != nil {
			return fmt.Errorf("dualwrite: tracker: %w", err)
		} else if ok {
			row, found, err := readLedger(ctx, t.db, m.Name)
			if err != nil {
				return fmt.Errorf("dualwrite: tracker: read ledger: %w", err)
			}
			if found {
				ledger = row.phase
			}
		}
		if err := CheckRelease(m, t.release, ledger, starting); err != nil {
			return err
		}
		out[i] = Effective(ledger, m.Releases.Highest(t.release))
	}
	fz, err := ReadFreeze(ctx, t.db)
	if err != nil {
		return fmt.Errorf("dualwrite: tracker: read freeze: %w", err)
	}
	for i, m := range t.moves {
		t.state[m.Name].held.Store(int32(out[i]))
	}
	if cur := t.freeze.Load(); cur.Seq != fz.Seq {
		t.freeze.Store(&fz)
		t.log.Info("dualwrite: write freeze", "seq", fz.Seq, "action", fz.Action, "frozen_all", fz.All, "frozen_moves", fz.Moves, "reason", fz.Reason)
	}
	return nil
}

// Phase returns the phase the tracker holds for the move now (legacy for a
// move it does not know). An operation that reads or writes the moved value
// takes its phase from Begin instead, so that heartbeats account for it.
func (t *Tracker) Phase(name string) move.Phase {
	if s := t.state[name]; s != nil {
		return move.Phase(s.held.Load())
	}
	return move.Legacy
}

func noop() {}

// Begin starts an operation on the move: it returns the phase to act on
// and a func to call exactly once when the operation has ended (committed
// or rolled back); calling it twice panics. Until then Phases reports the
// move at that phase at most, whatever the tracker refreshes to. Begin does
// no I/O, allocates nothing and is safe for concurrent use. For a move the
// tracker does not know it returns legacy and a done that does nothing.
func (t *Tracker) Begin(name string) (move.Phase, func()) {
	s := t.state[name]
	if s == nil {
		return move.Legacy, noop
	}
	for {
		p := move.Phase(s.held.Load())
		s.running[p].Add(1)
		// Count first, then check the phase still holds: a Phases call
		// that reads the new phase afterwards is sure to see this count.
		if move.Phase(s.held.Load()) == p {
			return p, s.done[p]
		}
		t.end(s, p, false) // refreshed meanwhile: count under the new phase
	}
}

func (t *Tracker) end(s *moveState, p move.Phase, done bool) {
	n := s.running[p].Add(-1)
	if n < 0 && done {
		panic("dualwrite: Tracker.Begin's done called more than once")
	}
	if n == 0 {
		t.wake()
	}
}

// wake lets Wait look again once a count reached zero.
func (t *Tracker) wake() {
	if t.waiters.Load() > 0 {
		t.mu.Lock()
		if t.idle != nil {
			close(t.idle)
			t.idle = nil
		}
		t.mu.Unlock()
	}
}

// BeginWrite starts an operation that writes the move's values (or any
// write the operator may freeze, under a name of the application's
// choosing): like Begin, it returns the phase to act on and a func to call
// exactly once when the operation has ended (committed or rolled back).
// While the operator has frozen writes on the move (tandem freeze), it
// begins nothing and returns a *FrozenError (errors.Is ErrFrozen) with the
// freeze's reason and since when, and a done that does nothing: the write
// is refused, not failed, and may be retried after the thaw.
//
// Reads go on during a freeze: an operation that only reads uses Begin,
// which a freeze never refuses. An operation that may write uses
// BeginWrite, so that the instance acknowledges a freeze (FreezeAck) only
// once no write it began before still runs, and refuses every write
// begun after it has seen the freeze. The tracker sees a freeze at its next
// refresh (Run's interval).
//
// For a name the tracker does not know BeginWrite returns legacy; every
// move frozen (--all) refuses it too. It does no I/O and allocates nothing
// unless it refuses.
func (t *Tracker) BeginWrite(name string) (move.Phase, func(), error) {
	s := t.state[name]
	w := &t.otherWrites
	if s != nil {
		w = &s.writes
	}
	// Count first, then look at the freeze, as Begin does with the phase:
	// FreezeAck stores nothing, but reads the counts after the freeze was
	// stored, so it sees this write, or this write sees the freeze.
	w.Add(1)
	if fz := t.freeze.Load(); fz.Covers(name) {
		t.endWrite(w, false)
		if s != nil {
			s.refused.Add(1)
		} else {
			t.otherRefused.Add(1)
		}
		return t.Phase(name), noop, fz.Err(name)
	}
	if s == nil {
		return move.Legacy, t.otherDone, nil
	}
	p, _ := t.Begin(name)
	return p, s.writeDone[p], nil
}

func (t *Tracker) endWrite(w *atomic.Int64, done bool) {
	n := w.Add(-1)
	if n < 0 && done {
		panic("dualwrite: Tracker.BeginWrite's done called more than once")
	}
	if n == 0 {
		t.wake()
	}
}

// Freeze returns the write freeze the tracker holds: the ledger's as of
// its last refresh.
func (t *Tracker) Freeze() FreezeState { return *t.freeze.Load() }

// FreezeAck returns the freeze state (its Seq) this instance acknowledges,
// for services.Heartbeat.Freeze (and services.Instance.Freeze at
// registration): the one the tracker holds once no write begun with
// BeginWrite on a move it freezes still runs, else the one acknowledged
// before. A thaw is acknowledged as soon as the tracker holds it. 0 while
// the ledger never recorded a freeze.
func (t *Tracker) FreezeAck() int64 {
	t.ackMu.Lock()
	defer t.ackMu.Unlock()
	fz := t.freeze.Load()
	if t.acked != fz.Seq && !t.writing(fz) {
		t.acked = fz.Seq
	}
	return t.acked
}

// writing says whether a write on a move fz freezes still runs.
func (t *Tracker) writing(fz *FreezeState) bool {
	if fz.All {
		for _, s := range t.state {
			if s.writes.Load() > 0 {
				return true
			}
		}
		return t.otherWrites.Load() > 0
	}
	for _, n := range fz.Moves {
		s := t.state[n]
		if s == nil {
			if t.otherWrites.Load() > 0 {
				return true
			}
			continue
		}
		if s.writes.Load() > 0 {
			return true
		}
	}
	return false
}

// reported is the phase Phases reports for one move: the held phase,
// unless an operation begun at another phase still runs. Below the held
// phase the lowest wins (a legacy write may still commit old only after a
// refresh to write-both); above it, after a rollback, the highest (a
// write-new write may still commit new only after a refresh to read-new).
//
// The held phase is read again after the counts, and the scan repeated if
// it moved: read once, a refresh between the read and the scan could let
// an operation begun at the new phase stand above a stale held phase and
// be reported while one begun at the old phase still runs below it.
func (s *moveState) reported() move.Phase {
	for {
		held := move.Phase(s.held.Load()) // before the counts: see Begin
		p := s.runningAround(held)
		if move.Phase(s.held.Load()) == held {
			return p
		}
	}
}

func (s *moveState) runningAround(held move.Phase) move.Phase {
	for p := move.Legacy; p < held; p++ {
		if s.running[p].Load() > 0 {
			return p
		}
	}
	for p := move.Contracted; p > held; p-- {
		if s.running[p].Load() > 0 {
			return p
		}
	}
	return held
}

// Phases returns every move's phase by name, for services.Heartbeat.Phases:
// the phase the tracker holds, or, while an operation begun at another
// phase runs, that phase (see Begin). An instance therefore acknowledges a
// phase only once nothing it began at an older one can still write.
func (t *Tracker) Phases() map[string]string {
	out := make(map[string]string, len(t.moves))
	for _, m := range t.moves {
		out[m.Name] = t.state[m.Name].reported().String()
	}
	return out
}

// Wait blocks until no operation begun with Begin or BeginWrite runs, or ctx ends (it
// then returns ctx's error). A process that stops calls it once it has
// stopped starting operations, before it reports itself gone, so that
// nothing it began writes afterwards.
func (t *Tracker) Wait(ctx context.Context) error {
	t.waiters.Add(1)
	defer t.waiters.Add(-1)
	for {
		t.mu.Lock()
		if !t.busy() {
			t.mu.Unlock()
			return nil
		}
		if t.idle == nil {
			t.idle = make(chan struct{})
		}
		ch := t.idle
		t.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (t *Tracker) busy() bool {
	if t.otherWrites.Load() > 0 {
		return true
	}
	for _, s := range t.state {
		for p := range s.running {
			if s.running[p].Load() > 0 {
				return true
			}
		}
	}
	return false
}

// Run refreshes every interval until ctx ends, and returns ctx's error. A
// failed refresh keeps the last phases, is passed to onError and retried at
// the next tick, except a *TooOldError: the operator moved the ledger two
// phases past what this build can act on, so the instance must stop
// serving. Run returns that error (errors.Is ErrTooOld) at once; the caller
// shuts the instance down (and deregisters it) rather than keep acting on a
// phase the cluster has left. After Stop, Run returns Stop's cause at once.
// With WithNotices, Run also refreshes as soon as a write freeze or thaw
// is announced on NATS, instead of at the next tick.
func (t *Tracker) Run(ctx context.Context, every time.Duration, onError func(error)) error {
	tk := time.NewTicker(every)
	defer tk.Stop()
	// With WithNotices, a freeze or thaw announced on NATS refreshes at
	// once; every other notice is the registry's and is left alone.
	kick := make(chan struct{}, 1)
	if t.notices != nil {
		sub, err := t.notices.Subscribe(services.ChangedSubject(t.cluster), func(m *nats.Msg) {
			if !bytes.Contains(m.Data, []byte(services.EventWriteFreeze)) {
				return // most notices: a heartbeat's change
			}
			var ch struct {
				Event string `json:"event"`
			}
			if json.Unmarshal(m.Data, &ch) != nil || ch.Event != services.EventWriteFreeze {
				return
			}
			select {
			case kick <- struct{}{}:
			default:
			}
		})
		if err != nil {
			// Not fatal: the interval still refreshes.
			t.log.Warn("dualwrite: tracker: write freeze notices not followed", "err", err)
		} else {
			defer sub.Unsubscribe() //nolint:errcheck // nothing to do about it
		}
	}
	for {
		var err error
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.stopped:
			return t.stopErr
		case <-kick:
			err = t.Refresh(ctx)
		case <-tk.C:
			err = t.Refresh(ctx)
		}
		if err == nil {
			continue
		}
		if onError != nil {
			onError(err)
		}
		if errors.Is(err, ErrTooOld) {
			return err
		}
	}
}
