// Package dualwrite runs column moves (package move) through their phases
// during a rolling upgrade: legacy -> write-both -> read-new -> write-new ->
// contracted, the release+1/+2/+3 pattern of the OpenStack community.
//
// # Pieces
//
//   - The ledger: tandem_moves (phase, when and at which release it was
//     entered, backfill cursor and progress, failed rows, verification,
//     finalization), tandem_move_history, tandem_move_failures, and
//     tandem_steps, Dragonflow's migration log: every DDL step with its id,
//     release, description, proposed and applied times and SQL.
//   - Definitions: each move's definition and digest, recorded in
//     tandem_move_definitions the first time it is applied (New,
//     NewTracker). It is the truth: a declaration that matches no recorded
//     version is refused with a *DriftError unless recorded on purpose
//     (Amend); one equal to an earlier version (an earlier release of the
//     rollout) starts and acts by the current one; Load rebuilds every
//     recorded move without the application's code.
//   - Manager (operator side): Advance checks the transition's gate and
//     applies its DDL under tandem's database lock; Backfill, Verify,
//     Finalize, Status. A dry run prints the SQL and changes nothing.
//   - Tracker (instance side): the phase this instance acts on, from the
//     ledger and its own build (Effective), with no I/O on the hot path;
//     each operation takes its phase from Tracker.Begin and ends with
//     done; report Tracker.Phases, which accounts for operations still
//     running, with every heartbeat. An operation that may write begins
//     with Tracker.BeginWrite instead, which refuses it while the operator
//     froze writes on the move (a *FrozenError, errors.Is ErrFrozen);
//     reads go on. Report Tracker.FreezeAck with the heartbeat too.
//   - Write freeze (Manager.Freeze, Thaw, FreezeStatus; ReadFreeze): a
//     freeze recorded in the ledger, which every instance refuses writes
//     under and acknowledges once the writes it began before ended; the
//     operator's tandem freeze returns once every instance has.
//   - Router: reads and writes the moved value as a phase requires. Its
//     fragments (Select, Set, Insert, with Args for the placeholders and
//     Finish for a cross-table move's other table) go into the
//     application's own statements, at no query of their own; a
//     Statement keeps such a statement per phase for a hot path, so a
//     call binds only its values; ReadValue and WriteValue are the typed
//     one-statement helpers; Read and Write run a query of their own per
//     value.
//   - Plans: the same moves as a YAML file, for moves the ledger does not
//     know yet (ParsePlan); WritePlan exports Go declarations.
//
// # Gates
//
// Every transition waits until every instance that is not deleted acts on
// the current phase (missing ones included: the operator brings them back
// or deletes them), so no instance ever acts two phases behind the ledger.
// On top of that:
//
//	-> write-both   the move matches the live schema; the expand step adds the column (or table)
//	-> read-new     a backfill that started once everyone wrote both, finished, verified
//	                after it finished with no mismatch, and no failed row; no instance
//	                seen since the backfill started (deleted ones included, see
//	                InstanceHistory) acted on legacy
//	-> write-new    nobody reads old (everyone acts on read-new)
//	-> contracted   nobody writes old (everyone acts on write-new) and the move is finalized
//
// With triggers (Move.Triggers) the database keeps both columns in step
// for any writer, so the instance waits before contract are dropped, and
// the sync triggers being present and unchanged is checked instead.
//
// Until Finalize, a move can go back one phase at a time: write-new ->
// read-new, and read-new -> write-both once old is fresh again. Rows written
// during write-new exist in new only, so without a reverse trigger the way
// back to a phase that reads old needs a reverse backfill (Reverse) first;
// the gate says so. Finalize records with the registry that releases older
// than the one shipping write-new may no longer join, and closes the window.
//
// # Backfill
//
// Keyset batches, each in its own transaction that also saves the cursor;
// the batch size adapts toward a target time per batch; an optional rate
// limit; progress events. The run is bounded by the highest key when it
// started, so it ends under any insert load; later rows are written by
// instances writing both, or by triggers. With a SQL transform a batch is
// one UPDATE (or INSERT ... SELECT across tables); with a Go function rows
// are read, transformed and written, and rows whose transform fails are
// recorded and block read-new.
//
// Metrics: a Manager built WithMetrics exports each move's phase, gate and
// blockers by kind, backfill progress, failed rows and verify mismatches,
// read from the ledger when scraped, and its backfill batches; a Tracker
// WithMetrics on NewTracker, the phase the instance acts on (docs/observability.md).
package dualwrite
