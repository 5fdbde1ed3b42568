package main

import (
	"errors"

	"github.com/tandem-go/tandem/dualwrite"
)

// A backfill or verify under --json is a stream: one "progress" event a
// batch, then one "result" event that says how it ended. A run that fails
// (exit 1, 4 or 130) ends with the error object on stderr instead.

// backfillEnd and verifyEnd are the "result" event of a backfill and of a
// verify. Outcome is "done"; "failed_rows" (a backfill left rows it could
// not transform) or "mismatches" (verify found rows that differ), exit 5;
// "refused" (a gate is closed: see gate), exit 2, 3 or 5 as its blockers
// say; "busy" (another runner holds the move: see holder), exit 3.
// Backfill or Verify is what the run did, null when it did not run.
type backfillEnd struct {
	Outcome  string              `json:"outcome"`
	Backfill *backfillResultJSON `json:"backfill"`
	refusal
}

type verifyEnd struct {
	Outcome string            `json:"outcome"`
	Verify  *verifyResultJSON `json:"verify"`
	refusal
}

// refusal is why a stream's run was refused: null gate and holder when
// it ran.
type refusal struct {
	Gate *gateJSON `json:"gate"`
	// Holder is the live runner a "busy" refusal names; null when it has
	// not recorded itself yet, or the run was not refused as busy.
	Holder  *runnerJSON `json:"holder"`
	Message string      `json:"message"`
}

// streamCmd is the running backfill or verify's event stream, nil without
// --json.
func (a *app) stream() *eventWriter {
	if !a.json {
		return nil
	}
	return a.events()
}

// progress writes a progress event for each batch; the library's final
// call (Finished) is left to the result event, which says it all.
func (e *eventWriter) progress(p dualwrite.Progress) {
	if p.Finished && p.BatchRows == 0 {
		return
	}
	_ = e.emit("progress", progressView(p))
}

// streamRefusal ends a stream whose run was refused: a closed gate or a
// busy runner, reported as the "result" event with its verdict; any other
// error goes through movesError.
func (a *app) streamRefusal(ev *eventWriter, op string, err error) error {
	var ge *dualwrite.GateError
	var be *dualwrite.BusyError
	res := refusal{Message: err.Error()}
	var outcome string
	var then error
	switch {
	case errors.As(err, &ge):
		g := gateView(ge.Gate)
		outcome, res.Gate = "refused", &g
		then = verdict(g.Blockers, ge.Error())
	case errors.As(err, &be):
		outcome = "busy"
		if h := be.Holder; h != nil {
			res.Holder = &runnerJSON{Op: h.Op, Host: h.Host, PID: h.PID, Since: ts(h.Since), Alive: true}
		}
		then = busy(be.Error())
	default:
		return movesError(err)
	}
	if ev == nil {
		a.printText(err.Error())
		return then
	}
	var end any = backfillEnd{Outcome: outcome, refusal: res}
	if op == dualwrite.OpVerify {
		end = verifyEnd{Outcome: outcome, refusal: res}
	}
	if err := ev.emit("result", end); err != nil {
		return err
	}
	return then
}
