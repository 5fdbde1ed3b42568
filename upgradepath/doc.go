// Package upgradepath plans an upgrade: from the registry (the releases
// instances run, the API versions they serve) and the ledger (each move's
// recorded definition, its phase, backfill, verify and finalize), the
// ordered steps to a fleet at a target release, and the table of releases
// that may run together at each phase of each move.
//
// A release does not migrate anything when it starts: a build acts on the
// phase the ledger has each move at, capped by the highest phase its
// release ships (dualwrite.Effective), and the operator's commands move
// the ledger. So the path alternates two kinds of step, as a table of
// schema ranges against release ranges has operators do:
//
//   - advance every move as far as its gates let it with the releases the
//     fleet runs, with the backfill and verify read-new needs and the
//     finalize contract needs;
//   - when no move can go further, roll the newest release, up to the
//     target, that ships no phase more than one past where each move
//     stands and may start on every move now (the tracker's rule,
//     dualwrite.CheckRelease); a release that ships several phases at
//     once is rolled when nothing lower lets the moves go on;
//
// and repeats until every instance runs the target and every move is as
// far as the target carries it. The gate rules are dualwrite's own
// (InstanceWait, OpInstanceWait, CheckRelease): the planner applies them
// to the releases the fleet will run, and takes what blocks right now from
// status (FromStatus), never from a rule of its own.
//
// Each step carries the exact command to run. Finalize and contract are
// irreversible. Two kinds of step run under a write freeze (tandem freeze,
// then tandem thaw): the steps into a phase a move declares in its Freeze
// field (a change whose data cannot be kept right both ways while writers
// run: for read-new the backfill, verify and advance run frozen together),
// and a roll between releases that share no version of an API they both
// serve, as the registry saw them: such a roll cannot be rolling, so it is
// an offline window (writes frozen, every instance restarted at once).
//
// Plan and Compatibility only compute; the caller reads the registry and
// the ledger, and runs the steps.
package upgradepath
