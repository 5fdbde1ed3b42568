package dualwrite

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/schema"
	"github.com/tandem-go/tandem/services"
	"github.com/tandem-go/tandem/triggers"
)

// Finalizer records that older releases may no longer join; the registry
// (*services.Registry) is one.
type Finalizer interface {
	Finalize(ctx context.Context, release int64, reason string) error
}

// Manager runs moves for the operator: it keeps the ledger, checks gates,
// applies each transition's DDL, backfills, verifies and reports status.
// Any number of Managers may run against one database; the ledger and
// tandem's database lock serialize them.
type Manager struct {
	db       *dialect.DB
	moves    map[string]move.Move
	order    []string
	src      services.Source
	fin      Finalizer
	release  int64
	lockWait time.Duration
	log      *slog.Logger
	now      func() time.Time
	noSetup  bool
	ready    bool // the ledger tables exist

	// Definitions (see Definition): who declared the moves, the command
	// that records an intended change, the amendments asked for, and
	// whether every move the ledger records is managed too.
	source   string
	amendCmd func(move string) string
	amends   map[string]string
	recorded bool
	// goOnly marks the transforms ("name/forward") of moves rebuilt from
	// the ledger that exist only as the application's Go function.
	goOnly map[string]bool

	metricsReg prometheus.Registerer // WithMetrics
	met        *runMetrics           // nil without metrics
}

// New validates moves, brings the ledger tables up to date, records each
// move's definition the first time (see Definition) and gives each move a
// ledger row (at legacy) when it has none. A move whose declaration
// differs from its recorded definition is refused with a *DriftError
// (errors.Is ErrDrift) naming every differing field, unless WithAmend asks to
// record the change and the change is safe at the move's phase.
func New(ctx context.Context, db *dialect.DB, moves []move.Move, opts ...Option) (*Manager, error) {
	mg := &Manager{db: db, moves: map[string]move.Move{}, lockWait: 60 * time.Second,
		log: slog.New(slog.DiscardHandler), now: time.Now, source: "the Go declaration",
		amendCmd: goAmendCommand}
	if err := applyOptions("New", mg, opts, func(o Option) func(*Manager) { return o.manager }); err != nil {
		return nil, err
	}
	if err := mg.validate(); err != nil {
		return nil, err
	}
	if err := move.ValidateAll(moves); err != nil {
		return nil, fmt.Errorf("dualwrite: %w", err)
	}
	for _, m := range moves {
		mg.moves[m.Name] = m
		mg.order = append(mg.order, m.Name)
	}
	if mg.noSetup {
		ok, err := sqldialect.Of(db).TableExists(ctx, db, MovesTable)
		if err != nil {
			return nil, fmt.Errorf("dualwrite: %w", err)
		}
		mg.ready = ok
		if err := mg.checkRecorded(ctx); err != nil {
			return nil, err
		}
		if err := mg.startMetrics(); err != nil {
			return nil, err
		}
		return mg, nil
	}
	if err := mg.preflightNew(ctx); err != nil {
		return nil, err
	}
	mg.ready = true
	// Tables are created by schema.Ensure (tandem schema ensure), never by
	// a constructor: see the schema package.
	if err := schema.Check(ctx, db, Tables()); err != nil {
		return nil, fmt.Errorf("dualwrite: %w", err)
	}
	for _, name := range mg.order {
		var res declaredAs
		err := sqldialect.Of(db).Locked(ctx, db.SQLX(), "move:"+name, mg.lockWait, func(ctx context.Context, q dialect.Querier) error {
			if err := ensureLedger(ctx, q, sqldialect.Of(db), name, mg.release, mg.utc()); err != nil {
				return fmt.Errorf("ledger row: %w", err)
			}
			var amend *string
			if why, ok := mg.amends[name]; ok {
				amend = &why
			}
			var err error
			res, err = recordMove(ctx, q, sqldialect.Of(db), mg.moves[name], mg.release, mg.utc(), mg.source, mg.amendCmd, amend)
			return err
		})
		var de *DriftError
		if errors.As(err, &de) {
			return nil, err
		}
		if err != nil {
			return nil, fmt.Errorf("dualwrite: record move %s: %w", name, err)
		}
		if err := mg.adoptCurrent(name, res); err != nil {
			return nil, err
		}
	}
	if err := mg.addRecorded(ctx); err != nil {
		return nil, err
	}
	if err := mg.startMetrics(); err != nil {
		return nil, err
	}
	return mg, nil
}

// checkRecorded compares the declared moves with their recorded
// definitions, reading only, and adds the recorded moves not declared when
// asked to (WithRecorded).
func (mg *Manager) checkRecorded(ctx context.Context) error {
	ok, err := definitionsReady(ctx, mg.db, sqldialect.Of(mg.db))
	if err != nil || !ok {
		if err != nil {
			return fmt.Errorf("dualwrite: %w", err)
		}
		return nil
	}
	for _, name := range mg.order {
		def, found, err := readDefinition(ctx, mg.db, name)
		if err != nil {
			return fmt.Errorf("dualwrite: %w", err)
		}
		if !found {
			continue
		}
		row, err := ledgerOrLegacy(ctx, mg.db, sqldialect.Of(mg.db), name)
		if err != nil {
			return fmt.Errorf("dualwrite: %w", err)
		}
		res, err := checkDeclared(ctx, mg.db, mg.moves[name], def, row, mg.source, mg.amendCmd)
		if err != nil {
			var de *DriftError
			if errors.As(err, &de) {
				return err
			}
			return fmt.Errorf("dualwrite: %w", err)
		}
		if err := mg.adoptCurrent(name, res); err != nil {
			return err
		}
	}
	return mg.addRecorded(ctx)
}

// adoptCurrent makes a known older declaration act by the ledger's
// current definition (see governing), and says so at Info: a process of
// an earlier release of the rollout restarting after an amendment.
func (mg *Manager) adoptCurrent(name string, res declaredAs) error {
	if !res.older() {
		return nil
	}
	g, fwd, bwd, err := governing(mg.moves[name], res.Current)
	if err != nil {
		return fmt.Errorf("dualwrite: move %s: %w", name, err)
	}
	mg.log.Info("dualwrite: known older declaration, acting by the recorded definition",
		"move", name, "declared_version", res.Declared, "recorded_version", res.Current.Version, "source", mg.source)
	if fwd || bwd {
		if mg.goOnly == nil {
			mg.goOnly = map[string]bool{}
		}
		mg.goOnly[name+"/forward"], mg.goOnly[name+"/backward"] = fwd, bwd
	}
	mg.moves[name] = g
	return nil
}

// addRecorded adds, with WithRecorded, every move the ledger records that
// was not declared, rebuilt from its definition.
func (mg *Manager) addRecorded(ctx context.Context) error {
	if !mg.recorded {
		return nil
	}
	if ok, err := definitionsReady(ctx, mg.db, sqldialect.Of(mg.db)); err != nil || !ok {
		if err != nil {
			return fmt.Errorf("dualwrite: %w", err)
		}
		return nil
	}
	defs, err := readDefinitions(ctx, mg.db)
	if err != nil {
		return fmt.Errorf("dualwrite: %w", err)
	}
	for _, def := range defs {
		if _, ok := mg.moves[def.Move]; ok {
			continue
		}
		m, err := MoveFromDefinition([]byte(def.Canonical))
		if err != nil {
			return fmt.Errorf("dualwrite: move %s: %w", def.Move, err)
		}
		if fwd, bwd := def.NeedsGo(); fwd || bwd {
			if mg.goOnly == nil {
				mg.goOnly = map[string]bool{}
			}
			mg.goOnly[m.Name+"/forward"], mg.goOnly[m.Name+"/backward"] = fwd, bwd
		}
		mg.moves[m.Name] = m
		mg.order = append(mg.order, m.Name)
	}
	return nil
}

// CheckTransform returns a *GoOnlyError (errors.Is ErrGoOnly) when the
// backfill (reverse: the reverse backfill) or verify of the move would
// need a Go transform this Manager does not have: the move was rebuilt
// from the ledger, and its transform exists only in the application.
// forceGo is the backfill's UseGo.
func (mg *Manager) CheckTransform(name string, reverse, forceGo bool) error {
	m, err := mg.Move(name)
	if err != nil {
		return err
	}
	t, dir := m.Forward, "forward"
	if reverse {
		t, dir = m.Backward, "backward"
	}
	if !mg.goOnly[name+"/"+dir] || (!forceGo && t.HasSQL(mg.db.Engine())) {
		return nil
	}
	return &GoOnlyError{Move: name, Direction: dir, Engine: string(mg.db.Engine())}
}

// Load returns a Manager for every move the ledger records, rebuilt from
// the recorded definitions, plus the declared moves the ledger does not
// know yet (they read as legacy). It only reads: it creates no table and
// records nothing, so status and dry runs can use it with read-only
// rights. A declared move that differs from its recorded definition is
// refused with a *DriftError.
func Load(ctx context.Context, db *dialect.DB, declared []move.Move, opts ...Option) (*Manager, error) {
	return New(ctx, db, declared, append(opts, WithoutSetup(), WithRecorded())...)
}

func (mg *Manager) utc() time.Time { return mg.now().UTC() }

// Engine names the database engine the Manager runs on.
func (mg *Manager) Engine() dialect.Name { return mg.db.Engine() }

// Moves returns the managed moves: the declared ones in declaration order,
// then, with WithRecorded, the others the ledger records.
func (mg *Manager) Moves() []move.Move {
	out := make([]move.Move, len(mg.order))
	for i, n := range mg.order {
		out[i] = mg.moves[n]
	}
	return out
}

// Move returns the move named name, or an *UnknownMoveError.
func (mg *Manager) Move(name string) (move.Move, error) {
	m, ok := mg.moves[name]
	if !ok {
		return m, &UnknownMoveError{Name: name, Known: slices.Clone(mg.order)}
	}
	return m, nil
}

// Phase returns the ledger's phase for a move.
func (mg *Manager) Phase(ctx context.Context, name string) (move.Phase, error) {
	if _, err := mg.Move(name); err != nil {
		return 0, err
	}
	row, _, err := mg.readRow(ctx, mg.db, name)
	if err != nil {
		return 0, fmt.Errorf("dualwrite: read ledger: %w", err)
	}
	return row.phase, nil
}

// readRow reads a move's ledger row; a Manager that only reads (Load,
// WithoutSetup) on a database without the ledger tables sees legacy.
func (mg *Manager) readRow(ctx context.Context, q dialect.Querier, name string) (ledgerRow, bool, error) {
	if !mg.ready {
		return ledgerRow{Name: name, Phase: move.Legacy.String()}, false, nil
	}
	return readLedger(ctx, q, name)
}

func (mg *Manager) snapshot(ctx context.Context) (*services.Snapshot, error) {
	if mg.src == nil {
		return nil, nil
	}
	s, err := mg.src.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("read registry: %w", err)
	}
	return &s, nil
}

// deletedInstances lists the registry's deleted instances, when the
// source keeps them.
func (mg *Manager) deletedInstances(ctx context.Context) ([]services.Instance, bool, error) {
	h, ok := mg.src.(InstanceHistory)
	if !ok {
		return nil, false, nil
	}
	all, err := h.List(ctx, true)
	if err != nil {
		return nil, false, fmt.Errorf("read registry: %w", err)
	}
	var out []services.Instance
	for _, in := range all {
		if in.State == services.StateDeleted {
			out = append(out, in)
		}
	}
	// An incarnation a newer process of its id superseded is gone as much
	// as a deleted one, and its row now shows the successor.
	if p, ok := mg.src.(IncarnationHistory); ok {
		past, err := p.PastIncarnations(ctx)
		if err != nil {
			return nil, false, fmt.Errorf("read registry: %w", err)
		}
		for _, in := range past {
			out = append(out, in.Instance)
		}
	}
	return out, true, nil
}

// IncarnationHistory is a registry source that also keeps the incarnations
// superseded by a newer process of the same id (*services.Registry does).
type IncarnationHistory interface {
	PastIncarnations(ctx context.Context) ([]services.PastIncarnation, error)
}

func (mg *Manager) input(m move.Move, row ledgerRow, snap *services.Snapshot, q dialect.Querier) gateInput {
	return gateInput{m: m, row: row, snap: snap, d: sqldialect.Of(mg.db), q: q,
		trigSets: func() (triggers.Set, error) { return triggers.ForMove(mg.db.Engine(), m) },
		deleted:  mg.deletedInstances, canFinalize: mg.fin != nil}
}

// logGate logs one gate check: what it let through or which kinds of
// blocker closed it.
func (mg *Manager) logGate(g Gate) {
	kinds := make([]string, 0, len(g.Blockers))
	for _, b := range g.Blockers {
		kinds = append(kinds, string(b.Kind))
	}
	mg.log.Debug("dualwrite: gate checked", "move", g.Move, "from", g.From, "to", g.To, "open", g.Open, "blockers", kinds)
}

// Gate reports whether the move can go to phase to now, and what blocks it.
// It only reads.
func (mg *Manager) Gate(ctx context.Context, name string, to move.Phase) (Gate, error) {
	m, err := mg.Move(name)
	if err != nil {
		return Gate{}, err
	}
	snap, err := mg.snapshot(ctx)
	if err != nil {
		return Gate{}, fmt.Errorf("dualwrite: gate %s: %w", name, err)
	}
	row, _, err := mg.readRow(ctx, mg.db, name)
	if err != nil {
		return Gate{}, fmt.Errorf("dualwrite: gate %s: %w", name, err)
	}
	g, err := mg.computeGate(ctx, mg.input(m, row, snap, mg.db), to)
	if err == nil {
		mg.logGate(g)
	}
	return g, err
}

// Transition is what Advance did, or in a dry run would do.
type Transition struct {
	Move string `json:"move"`
	// From is the phase the ledger stood at when read under the lock.
	From   move.Phase `json:"from"`
	To     move.Phase `json:"to"`
	Gate   Gate       `json:"gate"`
	Steps  []Step     `json:"steps"`
	DryRun bool       `json:"dry_run"`
	// Done says the move stands at To: this call moved it there, or found
	// it there already. Changed says this call wrote the transition.
	Done    bool `json:"done"`
	Changed bool `json:"changed"`
	// Already says the move stood at To when the lock was taken, so nothing
	// was done. With ExpectFrom, Expected is the phase the caller read
	// before.
	Already  bool        `json:"already"`
	Expected *move.Phase `json:"expected,omitempty"`
	// ByOther says another runner made a transition after the caller read
	// the phase it started from (ExpectFrom) or after it started
	// (StartedAt), so this call changed nothing; Other is that transition.
	ByOther bool     `json:"by_other"`
	Other   *History `json:"other,omitempty"`
}

type advanceConfig struct {
	dryRun  bool
	note    string
	from    *move.Phase
	started time.Time
}

// Advance moves a move to phase to, which must be next to the current one
// (forward, or back within the rollback window). The gate is checked first
// and the transition refused with a *GateError naming what blocks it;
// otherwise the transition's DDL steps run, each logged in tandem_steps,
// and the ledger records the new phase. Instances pick the phase up when
// their Tracker refreshes.
//
// The phase is read, the gate decided and the transition written under
// tandem's database lock on the move, so any number of runners asking for
// the same transition at once make it once. A move that already stands at
// to is not an error: Advance changes nothing and reports Already, so a
// caller can retry an advance that may have succeeded.
func (mg *Manager) Advance(ctx context.Context, name string, to move.Phase, opts ...Option) (Transition, error) {
	var cfg advanceConfig
	if err := applyOptions("Advance", &cfg, opts, func(o Option) func(*advanceConfig) { return o.advance }); err != nil {
		return Transition{}, err
	}
	m, err := mg.Move(name)
	if err != nil {
		return Transition{}, err
	}
	if !to.Valid() {
		return Transition{}, &move.PhaseError{Input: to.String()}
	}
	tr := Transition{Move: name, To: to, DryRun: cfg.dryRun, Expected: cfg.from}
	run := func(ctx context.Context, q dialect.Querier) error {
		row, _, err := mg.readRow(ctx, q, name)
		if err != nil {
			return err
		}
		tr.From = row.phase
		// Until a gate is checked, nothing blocks: a call that finds
		// nothing to do reports an open gate.
		tr.Gate = Gate{Move: name, From: row.phase, To: to, Open: true}
		var last *History
		if !cfg.started.IsZero() && mg.ready { // no ledger yet: no transition either
			if last, err = lastTransition(ctx, q, name); err != nil {
				return err
			}
			if last != nil && last.At.Before(cfg.started) {
				last = nil // made before the caller started: it saw it
			}
		}
		if row.phase == to {
			// Already there (another runner got the lock first, or this
			// is a retry): nothing to check and nothing to write.
			tr.Already, tr.Done = true, true
			tr.ByOther = last != nil || cfg.from != nil && *cfg.from != to
			tr.Other = last
			return nil
		}
		if last != nil {
			tr.ByOther, tr.Other = true, last
			return nil
		}
		if cfg.from != nil && *cfg.from != row.phase {
			return &PhaseChangedError{Move: name, Expected: *cfg.from, Actual: row.phase, Target: to}
		}
		// The registry is read under the lock, after the ledger row: a
		// snapshot taken before the lock could predate another runner's
		// transition and show instances acknowledging a phase the move
		// has since left.
		if to == move.WriteBoth && row.phase == move.Legacy {
			// Before the expand step's DDL: a missing table or column, or
			// a transform the engine refuses, is bad input and nothing is
			// written.
			if err := mg.preflight(ctx, q, m, "tandem moves advance "+name); err != nil {
				return err
			}
		}
		snap, err := mg.snapshot(ctx)
		if err != nil {
			return err
		}
		g, err := mg.computeGate(ctx, mg.input(m, row, snap, q), to)
		tr.Gate = g
		if err != nil {
			return err
		}
		mg.logGate(g)
		if to > row.phase {
			if tr.Steps, err = StepsFor(m, mg.db.Engine(), to); err != nil {
				return err
			}
		}
		if !g.Open {
			return &GateError{Gate: g}
		}
		if cfg.dryRun {
			return nil
		}
		for i := range tr.Steps {
			t0 := time.Now()
			if err := applyStep(ctx, q, sqldialect.Of(mg.db), &tr.Steps[i], mg.release, mg.utc); err != nil {
				return err
			}
			s := tr.Steps[i]
			mg.log.Debug("dualwrite: step applied", "move", name, "step", s.ID, "description", s.Description,
				"statements", len(s.SQL), "skipped", s.Skipped, "healed", s.Healed, "took", time.Since(t0))
		}
		if err := mg.setPhase(ctx, q, m, row, to, cfg.note); err != nil {
			return err
		}
		tr.Done, tr.Changed = true, true
		return nil
	}
	if cfg.dryRun {
		err = run(ctx, mg.db)
	} else {
		err = sqldialect.Of(mg.db).Locked(ctx, mg.db.SQLX(), "move:"+name, mg.lockWait, run)
	}
	if err != nil {
		var ge *GateError
		var na *NotAdjacentError
		var pc *PhaseChangedError
		if errors.As(err, &ge) || errors.As(err, &na) || errors.As(err, &pc) {
			return tr, err
		}
		return tr, fmt.Errorf("dualwrite: advance %s to %s: %w", name, to, err)
	}
	if tr.Already || tr.ByOther {
		mg.log.Info("move not advanced: nothing to do", "move", name, "phase", tr.From, "to", to, "by_other", tr.ByOther)
		return tr, nil
	}
	mg.log.Info("move advanced", "move", name, "from", tr.From, "to", to, "dry_run", cfg.dryRun)
	return tr, nil
}

func (mg *Manager) setPhase(ctx context.Context, q dialect.Querier, m move.Move, row ledgerRow, to move.Phase, note string) error {
	now := mg.utc()
	set := `phase = ?, phase_at = ?, phase_release = ?, updated_at = ?`
	args := []any{to.String(), now, mg.release, now}
	switch {
	case to == move.WriteNew && row.phase == move.ReadNew:
		// From now on rows may be written to new only: old goes stale
		// unless the reverse trigger keeps it.
		stale := 1
		if m.Triggers {
			stale = 0
		}
		set += `, old_stale = ?` + clearProgress("reverse")
		args = append(args, stale)
	case to == move.Legacy:
		// Legacy writers no longer keep new: whatever the backfill did is void.
		set += `, failed_rows = 0, verified_at = NULL, mismatches = NULL` + clearProgress("backfill")
		if _, err := q.ExecContext(ctx, q.Rebind(`DELETE FROM `+FailuresTable+` WHERE move = ?`), m.Name); err != nil {
			return err
		}
	}
	// A move whose definition an application's tracker recorded has no
	// ledger row until its first transition: without one the update
	// below would change nothing and the transition would be lost.
	if err := ensureLedger(ctx, q, sqldialect.Of(mg.db), m.Name, mg.release, now); err != nil {
		return fmt.Errorf("ledger row: %w", err)
	}
	if _, err := q.ExecContext(ctx, q.Rebind(`UPDATE `+MovesTable+` SET `+set+` WHERE name = ?`), append(args, m.Name)...); err != nil {
		return err
	}
	var seq int64
	if err := q.GetContext(ctx, &seq, q.Rebind(`SELECT COALESCE(MAX(seq), 0) FROM `+HistoryTable+` WHERE move = ?`), m.Name); err != nil {
		return err
	}
	_, err := q.ExecContext(ctx, q.Rebind(`INSERT INTO `+HistoryTable+` (move, seq, from_phase, to_phase, at, app_release, note) VALUES (?, ?, ?, ?, ?, ?, ?)`),
		m.Name, seq+1, row.phase.String(), to.String(), now, mg.release, note)
	return err
}

func clearProgress(prefix string) string {
	return ", " + prefix + "_cursor = NULL, " + prefix + "_bound = NULL, " + prefix + "_started_at = NULL, " + prefix + "_done_at = NULL, " + prefix + "_rows_done = 0, " + prefix + "_rows_total = 0"
}

// Finalize closes the rollback window of a move standing at write-new with
// every instance acting on it, and records with the registry that releases
// older than the one shipping write-new may no longer join. Contract needs it.
//
// The checks run twice: once before the registry is written (so a refusal
// changes nothing) and again under the move's lock, where the ledger is
// only marked finalized if it still stands at write-new with every instance
// on it; a rollback that won the race leaves the move unfinalized and
// Finalize returns a *GateError (the registry keeps refusing the older
// releases, which only ever narrows who may join).
func (mg *Manager) Finalize(ctx context.Context, name, reason string) (int64, error) {
	m, err := mg.Move(name)
	if err != nil {
		return 0, err
	}
	snap, err := mg.snapshot(ctx)
	if err != nil {
		return 0, fmt.Errorf("dualwrite: finalize %s: %w", name, err)
	}
	row, _, err := readLedger(ctx, mg.db, name)
	if err != nil {
		return 0, fmt.Errorf("dualwrite: finalize %s: %w", name, err)
	}
	if row.FinalizedAt.Valid {
		return row.FinalizedRelease.Int64, nil
	}
	if err := mg.refuse(ctx, mg.input(m, row, snap, mg.db), OpFinalize); err != nil {
		return 0, err
	}
	release := m.Releases.WriteNew
	if release == 0 {
		release = snap.Floor().Release
	}
	if release <= 0 {
		release = mg.release
	}
	if reason == "" {
		reason = "move " + name + " finalized"
	}
	// The registry is written first and outside tandem's lock: on SQLite
	// the lock is the database's only write transaction.
	if release > 0 {
		if err := mg.fin.Finalize(ctx, release, reason); err != nil {
			return 0, fmt.Errorf("dualwrite: finalize %s: %w", name, err)
		}
	}
	err = sqldialect.Of(mg.db).Locked(ctx, mg.db.SQLX(), "move:"+name, mg.lockWait, func(ctx context.Context, q dialect.Querier) error {
		row, _, err := readLedger(ctx, q, name)
		if err != nil {
			return err
		}
		if row.FinalizedAt.Valid {
			release = row.FinalizedRelease.Int64
			return nil
		}
		snap, err := mg.snapshot(ctx)
		if err != nil {
			return err
		}
		if err := mg.refuse(ctx, mg.input(m, row, snap, q), OpFinalize); err != nil {
			return err
		}
		now := mg.utc()
		res, err := q.ExecContext(ctx, q.Rebind(`UPDATE `+MovesTable+` SET finalized_at = ?, finalized_release = ?, updated_at = ? WHERE name = ? AND finalized_at IS NULL AND phase = ?`), now, release, now, name, move.WriteNew.String())
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n != 1 {
			return fmt.Errorf("the ledger row changed under the lock (%d rows updated)", n)
		}
		return nil
	})
	var ge *GateError
	if errors.As(err, &ge) {
		return 0, err
	}
	if err != nil {
		return 0, fmt.Errorf("dualwrite: finalize %s: %w", name, err)
	}
	return release, nil
}

// History is one phase transition as the ledger recorded it.
type History struct {
	Seq     int64     `db:"seq" json:"seq"`
	From    string    `db:"from_phase" json:"from"`
	To      string    `db:"to_phase" json:"to"`
	At      time.Time `db:"at" json:"at"`
	Release int64     `db:"app_release" json:"release"`
	Note    *string   `db:"note" json:"note,omitempty"`
}

// lastTransition reads the move's latest transition; nil when it made none.
func lastTransition(ctx context.Context, q dialect.Querier, name string) (*History, error) {
	var out []History
	err := q.SelectContext(ctx, &out, q.Rebind(`SELECT seq, from_phase, to_phase, at, app_release, note FROM `+HistoryTable+` WHERE move = ? ORDER BY seq DESC LIMIT 1`), name)
	if err != nil || len(out) == 0 {
		return nil, err
	}
	out[0].At = out[0].At.UTC()
	return &out[0], nil
}

func readHistory(ctx context.Context, q dialect.Querier, name string) ([]History, error) {
	var out []History
	err := q.SelectContext(ctx, &out, q.Rebind(`SELECT seq, from_phase, to_phase, at, app_release, note FROM `+HistoryTable+` WHERE move = ? ORDER BY seq`), name)
	return out, err
}
