package main

import (
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/demo"
	"github.com/tandem-go/tandem/migfile"
	"github.com/tandem-go/tandem/schema"
	"github.com/tandem-go/tandem/triggers"
)

// The JSON documents of the commands other than status, services and
// moves list (docs/cli-json.md shows each).

// schemaTableJSON is what `schema ensure` did (or would do) to one table.
type schemaTableJSON struct {
	Table  string   `json:"table"`
	From   int      `json:"from_version"` // 0: the table did not exist
	To     int      `json:"to_version"`
	Healed bool     `json:"healed"` // an interrupted migration was completed
	SQL    []string `json:"sql"`
}

// schemaDoc is `tandem schema ensure --json`.
type schemaDoc struct {
	DryRun bool              `json:"dry_run"`
	Tables []schemaTableJSON `json:"tables"`
}

func schemaView(results []schema.Result, dryRun bool) schemaDoc {
	out := schemaDoc{DryRun: dryRun, Tables: []schemaTableJSON{}}
	for _, r := range results {
		out.Tables = append(out.Tables, schemaTableJSON{Table: r.Table, From: r.From, To: r.To, Healed: r.Healed, SQL: nonNil(r.SQL)})
	}
	return out
}

// appliedJSON is what `moves apply` did to one move.
type appliedJSON struct {
	Move string `json:"move"`
	// Action is "recorded", "unchanged", "amended" or "earlier" (the plan
	// declares an earlier recorded version: the ledger's governs).
	Action  string `json:"action"`
	Version int64  `json:"version"`
	// DeclaredVersion is, for "earlier", the version the plan equals;
	// null otherwise.
	DeclaredVersion *int64  `json:"declared_version"`
	Digest          string  `json:"digest"`
	Change          *string `json:"change"` // for "amended"; null otherwise
}

// applyDoc is `tandem moves apply --json`.
type applyDoc struct {
	DryRun bool          `json:"dry_run"`
	Moves  []appliedJSON `json:"moves"`
}

func applyView(out []applied, dryRun bool) applyDoc {
	doc := applyDoc{DryRun: dryRun, Moves: []appliedJSON{}}
	for _, a := range out {
		j := appliedJSON{Move: a.Move, Action: a.Action, Version: a.Version, Digest: a.Digest, Change: strOrNil(a.Change)}
		if a.Action == "earlier" {
			d := a.Declared
			j.DeclaredVersion = &d
		}
		doc.Moves = append(doc.Moves, j)
	}
	return doc
}

// definitionJSON is one recorded version of a move's definition.
type definitionJSON struct {
	Move    string `json:"move"`
	Version int64  `json:"version"`
	Digest  string `json:"digest"`
	// Definition is the canonical JSON the digest is taken of, as a string.
	Definition string   `json:"definition"`
	RecordedAt *rfc3339 `json:"recorded_at"`
	Release    int64    `json:"release"` // 0: the recorder set no release
	Change     *string  `json:"change"`  // null for the first version
}

func definitionView(d dualwrite.Definition) definitionJSON {
	return definitionJSON{Move: d.Move, Version: d.Version, Digest: d.Digest, Definition: d.Canonical, RecordedAt: ts(d.RecordedAt),
		Release: d.Release, Change: strOrNil(d.Change)}
}

// shownJSON is one move of `moves show`: its current definition and every
// recorded version.
type shownJSON struct {
	definitionJSON
	History []definitionJSON `json:"history"`
}

// showDoc is `tandem moves show --json`.
type showDoc struct {
	Moves []shownJSON `json:"moves"`
}

// stepJSON is one DDL step of a transition.
type stepJSON struct {
	ID          string   `json:"id"`
	Description string   `json:"description"`
	SQL         []string `json:"sql"`
	Skipped     bool     `json:"skipped"` // already done
	Healed      bool     `json:"healed"`  // an interrupted run was completed
}

func stepsView(steps []dualwrite.Step) []stepJSON {
	out := make([]stepJSON, 0, len(steps))
	for _, s := range steps {
		out = append(out, stepJSON{ID: s.ID, Description: s.Description, SQL: nonNil(s.SQL), Skipped: s.Skipped, Healed: s.Healed})
	}
	return out
}

// transitionDoc is `tandem moves advance --json`.
type transitionDoc struct {
	Move   string `json:"move"`
	From   string `json:"from"`
	To     string `json:"to"`
	DryRun bool   `json:"dry_run"`
	// Done: the move is at To now; Changed: this run moved it.
	Done    bool `json:"done"`
	Changed bool `json:"changed"`
	// Already: the move was at To before (nothing to do). Expected is,
	// when the command was asked for "the next phase", the phase it
	// started from; null for --to.
	Already  bool    `json:"already"`
	Expected *string `json:"expected"`
	// ByOther: another runner moved the move after this command started;
	// Other is that transition (null when unknown).
	ByOther bool         `json:"by_other"`
	Other   *historyJSON `json:"other"`
	Gate    gateJSON     `json:"gate"`
	Steps   []stepJSON   `json:"steps"`
	// Irreversible: the step cannot be undone (the contract), so it is
	// confirmed on a terminal or with --yes.
	Irreversible bool `json:"irreversible"`
	// Backup is the copy --backup took first (a dry run: the one it would
	// take, with seq, bytes and taken_at null); null without --backup.
	Backup *backupJSON `json:"backup"`
}

func transitionView(tr dualwrite.Transition) transitionDoc {
	out := transitionDoc{Move: tr.Move, From: tr.From.String(), To: tr.To.String(), DryRun: tr.DryRun, Done: tr.Done, Changed: tr.Changed,
		Already: tr.Already, ByOther: tr.ByOther, Gate: gateView(tr.Gate), Steps: stepsView(tr.Steps)}
	if out.Gate.Move == "" {
		// No gate was computed (the move was already there): say so in
		// the gate's own terms rather than with empty strings.
		out.Gate = gateJSON{Move: tr.Move, From: tr.From.String(), To: tr.To.String(), Open: true, Blockers: []blockerJSON{}}
	}
	if tr.Expected != nil {
		e := tr.Expected.String()
		out.Expected = &e
	}
	if tr.Other != nil {
		h := historyView(*tr.Other)
		out.Other = &h
	}
	return out
}

// finalizeDoc is `tandem moves finalize --json`.
type finalizeDoc struct {
	Move             string `json:"move"`
	FinalizedRelease int64  `json:"finalized_release"`
}

// sqlDoc is `tandem moves sql --json`.
type sqlDoc struct {
	Move    string     `json:"move"`
	Phase   string     `json:"phase"`
	Dialect string     `json:"dialect"`
	Steps   []stepJSON `json:"steps"`  // [] when entering the phase changes no schema
	Format  string     `json:"format"` // plain, goose or migrate
	Files   []fileJSON `json:"files"`  // [] for plain printed to stdout
}

// fileJSON is one migration file of `tandem moves sql --format`.
type fileJSON struct {
	Name    string  `json:"name"`
	Path    *string `json:"path"` // null when printed, not written
	Content string  `json:"content"`
}

func filesView(files []migfile.File, paths []string) []fileJSON {
	out := make([]fileJSON, len(files))
	for i, f := range files {
		out[i] = fileJSON{Name: f.Name, Content: f.Content}
		if i < len(paths) {
			out[i].Path = &paths[i]
		}
	}
	return out
}

// progressJSON is one "progress" event of a backfill or verify.
type progressJSON struct {
	Move      string  `json:"move"`
	Op        string  `json:"op"`   // "backfill", "reverse-backfill" or "verify"
	Mode      string  `json:"mode"` // "sql" or "go"
	Batch     int     `json:"batch"`
	BatchRows int     `json:"batch_rows"`
	BatchSize int     `json:"batch_size"`
	BatchNS   int64   `json:"batch_ns"`
	Done      int64   `json:"done"`
	Total     int64   `json:"total"` // an estimate for a backfill; 0 when not known
	Failed    int64   `json:"failed"`
	Percent   float64 `json:"percent"`
	ElapsedNS int64   `json:"elapsed_ns"`
	RowsPerS  float64 `json:"rows_per_s"`
}

func progressView(p dualwrite.Progress) progressJSON {
	return progressJSON{Move: p.Move, Op: p.Op, Mode: p.Mode, Batch: p.Batch, BatchRows: p.BatchRows, BatchSize: p.BatchSize,
		BatchNS: p.BatchTime.Nanoseconds(), Done: p.Done, Total: p.Total, Failed: p.Failed, Percent: p.Percent(),
		ElapsedNS: p.Elapsed.Nanoseconds(), RowsPerS: p.RowsPerS}
}

// backfillResultJSON is the "result" event of `moves backfill --json`.
type backfillResultJSON struct {
	Move          string  `json:"move"`
	Op            string  `json:"op"`
	Mode          string  `json:"mode"`
	Rows          int64   `json:"rows"` // rows this run went through
	Done          int64   `json:"done"` // rows done over every run
	Total         int64   `json:"total"`
	Failed        int64   `json:"failed"`
	Batches       int     `json:"batches"`
	ElapsedNS     int64   `json:"elapsed_ns"`
	RowsPerS      float64 `json:"rows_per_s"`
	P50BatchNS    int64   `json:"p50_batch_ns"`
	P99BatchNS    int64   `json:"p99_batch_ns"`
	MaxBatchNS    int64   `json:"max_batch_ns"`
	Resumed       bool    `json:"resumed"`
	Complete      bool    `json:"complete"`
	LastBatchSize int     `json:"last_batch_size"`
}

func backfillResultView(r dualwrite.BackfillResult) backfillResultJSON {
	return backfillResultJSON{Move: r.Move, Op: r.Op, Mode: r.Mode, Rows: r.Rows, Done: r.Done, Total: r.Total, Failed: r.Failed,
		Batches: r.Batches, ElapsedNS: r.Elapsed.Nanoseconds(), RowsPerS: r.RowsPerS, P50BatchNS: r.P50Batch.Nanoseconds(),
		P99BatchNS: r.P99Batch.Nanoseconds(), MaxBatchNS: r.MaxBatch.Nanoseconds(), Resumed: r.Resumed, Complete: r.Complete,
		LastBatchSize: r.LastBatch}
}

// mismatchJSON is a row where new differs from transform(old). Values
// are as the driver returned them.
type mismatchJSON struct {
	Key  []any `json:"key"`
	Old  any   `json:"old"`
	New  any   `json:"new"`
	Want any   `json:"want"`
}

type failedRowJSON struct {
	Key      string   `json:"key"`
	Error    string   `json:"error"`
	FailedAt *rfc3339 `json:"failed_at"`
}

// verifyResultJSON is the "result" event of `moves verify --json`.
type verifyResultJSON struct {
	Move       string          `json:"move"`
	Mode       string          `json:"mode"`
	Checked    int64           `json:"checked"`
	Mismatches int64           `json:"mismatches"`
	Listed     []mismatchJSON  `json:"listed"`
	Failed     int64           `json:"failed"`
	FailedRows []failedRowJSON `json:"failed_rows"`
	At         *rfc3339        `json:"at"`
	ElapsedNS  int64           `json:"elapsed_ns"`
}

func verifyResultView(r dualwrite.VerifyResult) verifyResultJSON {
	out := verifyResultJSON{Move: r.Move, Mode: r.Mode, Checked: r.Checked, Mismatches: r.Mismatches, Listed: []mismatchJSON{},
		Failed: r.Failed, FailedRows: []failedRowJSON{}, At: ts(r.At), ElapsedNS: r.Elapsed.Nanoseconds()}
	for _, m := range r.Listed {
		out.Listed = append(out.Listed, mismatchJSON{Key: jsonValues(m.Key), Old: jsonValue(m.Old), New: jsonValue(m.New), Want: jsonValue(m.Want)})
	}
	for _, f := range r.FailedRows {
		out.FailedRows = append(out.FailedRows, failedRowJSON{Key: f.Key, Error: f.Error, FailedAt: ts(f.FailedAt)})
	}
	return out
}

// jsonValue makes a driver value readable in JSON: bytes as text.
func jsonValue(v any) any {
	if b, ok := v.([]byte); ok {
		return string(b)
	}
	return v
}

func jsonValues(vs []any) []any {
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = jsonValue(v)
	}
	return out
}

// triggerObjectJSON is one generated trigger or trigger function.
type triggerObjectJSON struct {
	Name   string  `json:"name"`
	Kind   string  `json:"kind"`
	Table  *string `json:"table"` // null for a function
	Create string  `json:"create"`
	Drop   string  `json:"drop"`
}

// triggersSQLDoc is `tandem triggers sql --json`.
type triggersSQLDoc struct {
	Move    string              `json:"move"`
	Dialect string              `json:"dialect"`
	Tables  map[string][]string `json:"tables"` // the columns each table must have
	Objects []triggerObjectJSON `json:"objects"`
}

func triggersSQLView(set triggers.Set) triggersSQLDoc {
	out := triggersSQLDoc{Move: set.Move, Dialect: string(set.Dialect), Tables: set.Tables, Objects: []triggerObjectJSON{}}
	if out.Tables == nil {
		out.Tables = map[string][]string{}
	}
	for _, o := range set.Objects {
		out.Objects = append(out.Objects, triggerObjectJSON{Name: o.Name, Kind: string(o.Kind), Table: strOrNil(o.Table), Create: o.Create, Drop: o.Drop})
	}
	return out
}

// triggersResultDoc is `tandem triggers install|drop --json`.
type triggersResultDoc struct {
	Move      string   `json:"move"`
	Dialect   string   `json:"dialect"`
	DryRun    bool     `json:"dry_run"`
	Changed   bool     `json:"changed"`
	Created   []string `json:"created"`
	Replaced  []string `json:"replaced"`
	Unchanged []string `json:"unchanged"`
	Dropped   []string `json:"dropped"`
	SQL       []string `json:"sql"`
}

func triggersResultView(r triggers.Result) triggersResultDoc {
	return triggersResultDoc{Move: r.Move, Dialect: string(r.Dialect), DryRun: r.DryRun, Changed: r.Changed(), Created: nonNil(r.Created),
		Replaced: nonNil(r.Replaced), Unchanged: nonNil(r.Unchanged), Dropped: nonNil(r.Dropped), SQL: nonNil(r.SQL)}
}

type triggerStatusJSON struct {
	Name  string  `json:"name"`
	Kind  string  `json:"kind"`
	Table *string `json:"table"`
	State string  `json:"state"` // "ok", "missing", "changed" or "unexpected"
}

// triggersCheckDoc is `tandem triggers check --json`.
type triggersCheckDoc struct {
	Move    string `json:"move"`
	Dialect string `json:"dialect"`
	Phase   string `json:"phase"`
	// Want is what the phase needs: "as generated", "none", or "none or
	// as generated".
	Want       string              `json:"want"`
	AsExpected bool                `json:"as_expected"`
	Summary    string              `json:"summary"`
	Objects    []triggerStatusJSON `json:"objects"`
	Blocker    *blockerJSON        `json:"blocker"` // null when as expected
}

func triggersCheckView(chk dualwrite.TriggerCheck) triggersCheckDoc {
	out := triggersCheckDoc{Move: chk.Move, Dialect: string(chk.Dialect), Phase: chk.Phase.String(), Want: chk.Want, AsExpected: chk.AsExpected,
		Summary: chk.Summary, Objects: []triggerStatusJSON{}}
	for _, o := range chk.Objects {
		out.Objects = append(out.Objects, triggerStatusJSON{Name: o.Name, Kind: string(o.Kind), Table: strOrNil(o.Table), State: string(o.State)})
	}
	if chk.Blocker != nil {
		b := blockerView(chk.Move, "", chk.Phase, *chk.Blocker)
		out.Blocker = &b
	}
	return out
}

// demoDoc is `tandem demo --json`.
type demoDoc struct {
	OK            bool   `json:"ok"`
	Engine        string `json:"engine"`
	ElapsedNS     int64  `json:"elapsed_ns"`
	Chaos         bool   `json:"chaos"`
	Seed          uint64 `json:"seed"`
	Requests      int64  `json:"requests"`
	RPCRequests   int64  `json:"rpc_requests"`
	DBRequests    int64  `json:"db_requests"`
	Failed        int64  `json:"failed"`
	Retries       int64  `json:"retries"`
	WritesChecked int64  `json:"writes_checked"`
	ReadsChecked  int64  `json:"reads_checked"`
	SeedsChecked  int64  `json:"seeds_checked"`
	LostWrites    int64  `json:"lost_writes"`
	LateRefused   int64  `json:"late_refused"`
	WrongReads    int64  `json:"wrong_reads"`
	FailedWrites  int64  `json:"failed_writes"`
	GhostWrites   int64  `json:"ghost_writes"`
	// Histories is the linearizability check of every key's history.
	Histories    demoHistoriesJSON `json:"histories"`
	NATSInFlight int64             `json:"nats_in_flight"`
	Kills        int               `json:"kills"`
	NATSRestarts int               `json:"nats_restarts"`
	Moves        []demoMoveJSON    `json:"moves"`
	// Freeze is the rollout's step that ran under a write freeze; null
	// when the run never reached it.
	Freeze   *demoFreezeJSON `json:"freeze"`
	Problems []string        `json:"problems"`
}

type demoFreezeJSON struct {
	Move   string `json:"move"`
	From   string `json:"from"`
	To     string `json:"to"`
	Reason string `json:"reason"`
	AtNS   int64  `json:"at_ns"`    // after the start, when it was recorded
	AckNS  int64  `json:"acked_ns"` // until every instance acknowledged it
	HeldNS int64  `json:"held_ns"`  // until the thaw was acknowledged
	// RefusedWrites were refused with dualwrite.ErrFrozen (code 423 over
	// RPC): not failures. Reads of the move's table were answered.
	RefusedWrites int64 `json:"refused_writes"`
	Reads         int64 `json:"reads"`
	// AppliedWhileFrozen: writes applied between the acknowledgement and
	// the thaw; any fails the run.
	AppliedWhileFrozen int64 `json:"applied_while_frozen"`
}

type demoHistoriesJSON struct {
	Keys          int      `json:"keys"`
	Operations    int      `json:"operations"`
	UnknownWrites int      `json:"unknown_writes"`
	Linearizable  bool     `json:"linearizable"`
	Failures      []string `json:"failures"`  // keys whose history is not linearizable
	Undecided     []string `json:"undecided"` // keys the checker could not decide in time
}

type demoMoveJSON struct {
	Name     string            `json:"name"`
	Table    string            `json:"table"`
	Triggers bool              `json:"triggers"`
	Phase    string            `json:"phase"`
	Entered  []demoEnteredJSON `json:"entered"`
}

type demoEnteredJSON struct {
	Phase string `json:"phase"`
	AtNS  int64  `json:"at_ns"` // after the start
}

func demoView(s demo.Summary) demoDoc {
	out := demoDoc{OK: s.OK(), Engine: s.Engine, ElapsedNS: s.Elapsed.Nanoseconds(), Chaos: s.Chaos, Seed: s.Seed, Requests: s.Requests,
		RPCRequests: s.RPCRequests, DBRequests: s.DBRequests, Failed: s.Failed, Retries: s.Retries, WritesChecked: s.WritesChecked,
		ReadsChecked: s.ReadsChecked, SeedsChecked: s.SeedsChecked, LostWrites: s.LostWrites, LateRefused: s.LateRefused,
		WrongReads: s.WrongReads, FailedWrites: s.FailedWrites, GhostWrites: s.GhostWrites, NATSInFlight: s.NATSInFlight,
		Kills: s.Kills, NATSRestarts: s.NATSRestarts, Moves: []demoMoveJSON{}, Problems: nonNil(s.Problems),
		Histories: demoHistoriesJSON{Keys: s.Histories.Keys, Operations: s.Histories.Operations, UnknownWrites: s.Histories.UnknownWrites,
			Linearizable: s.Histories.Linearizable, Failures: []string{}, Undecided: nonNil(s.Histories.Undecided)}}
	for _, f := range s.Histories.Failures {
		out.Histories.Failures = append(out.Histories.Failures, f.Key)
	}
	for _, m := range s.Moves {
		mv := demoMoveJSON{Name: m.Name, Table: m.Table, Triggers: m.Triggers, Phase: m.Phase.String(), Entered: []demoEnteredJSON{}}
		for _, e := range m.Entered {
			mv.Entered = append(mv.Entered, demoEnteredJSON{Phase: e.Phase.String(), AtNS: e.At.Nanoseconds()})
		}
		out.Moves = append(out.Moves, mv)
	}
	if f := s.Freeze; f != nil {
		out.Freeze = &demoFreezeJSON{Move: f.Move, From: f.From.String(), To: f.To.String(), Reason: f.Reason, AtNS: f.At.Nanoseconds(),
			AckNS: f.Acked.Nanoseconds(), HeldNS: f.Held.Nanoseconds(), RefusedWrites: f.RefusedWrites, Reads: f.Reads, AppliedWhileFrozen: f.AppliedWhileFrozen}
	}
	return out
}
