package main

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/services"
)

// The types of this file are the JSON contract (docs/cli-json.md): every
// --json output is built from them, never from a package's own structs,
// so a change inside a package cannot change what scripts read. Keys are
// snake_case, lists are [] when empty, null means "not known" or "none",
// times are RFC 3339 in UTC.

// rfc3339 is a time that marshals as RFC 3339 in UTC, or null when zero.
type rfc3339 time.Time

func (t rfc3339) MarshalJSON() ([]byte, error) {
	tt := time.Time(t)
	if tt.IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + tt.UTC().Format(time.RFC3339Nano) + `"`), nil
}

// String is the time as RFC 3339 (seconds), "-" for none.
func (t *rfc3339) String() string {
	if t == nil || time.Time(*t).IsZero() {
		return "-"
	}
	return time.Time(*t).UTC().Format(time.RFC3339)
}

// ago is how long ago t was, for people; "-" for none.
func (t *rfc3339) ago() string {
	if t == nil {
		return "-"
	}
	return ago(time.Time(*t))
}

// timeOrNil is t as RFC 3339, or null when t is nil or zero.
func timeOrNil(t *time.Time) *rfc3339 {
	if t == nil || t.IsZero() {
		return nil
	}
	r := rfc3339(*t)
	return &r
}

func ts(t time.Time) *rfc3339 { return timeOrNil(&t) }

// nonNil returns s, or an empty slice for nil, so it marshals as [].
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// apiJSON is one API an instance serves.
type apiJSON struct {
	Name    string `json:"name"`
	Current string `json:"current"`
	Oldest  string `json:"oldest"`
}

// instanceJSON is one registered instance.
type instanceJSON struct {
	ID          string            `json:"id"`
	Service     string            `json:"service"`
	Host        string            `json:"host"`
	Release     int64             `json:"release"`
	State       string            `json:"state"`
	APIs        []apiJSON         `json:"apis"`
	Phases      map[string]string `json:"phases"`
	Metadata    map[string]string `json:"metadata"`
	StartedAt   *rfc3339          `json:"started_at"`
	HeartbeatAt *rfc3339          `json:"heartbeat_at"`
	Incarnation int64             `json:"incarnation"`
	PID         int               `json:"pid"`
	// Freeze is the write freeze state the instance acknowledged last
	// (tandem freeze, tandem thaw); 0 for none.
	Freeze int64 `json:"freeze"`
}

func instanceView(in services.Instance) instanceJSON {
	out := instanceJSON{ID: in.ID, Service: in.Service, Host: in.Host, Release: in.Release, State: string(in.State),
		APIs: []apiJSON{}, Phases: in.Phases, Metadata: in.Metadata, StartedAt: ts(in.StartedAt), HeartbeatAt: ts(in.HeartbeatAt),
		Incarnation: in.Incarnation, PID: in.PID, Freeze: in.Freeze}
	for _, a := range in.APIs {
		out.APIs = append(out.APIs, apiJSON{Name: a.Name, Current: a.Current.String(), Oldest: a.Oldest.String()})
	}
	if out.Phases == nil {
		out.Phases = map[string]string{}
	}
	if out.Metadata == nil {
		out.Metadata = map[string]string{}
	}
	return out
}

func instancesView(ins []services.Instance) []instanceJSON {
	out := make([]instanceJSON, 0, len(ins))
	for _, in := range ins {
		out = append(out, instanceView(in))
	}
	return out
}

// floorJSON is the release floor; null in its document when no instance
// is registered (there is no floor).
type floorJSON struct {
	Release int64          `json:"release"`
	Since   *rfc3339       `json:"since"`
	Holders []instanceJSON `json:"holders"`
}

func floorOf(f services.Floor) *floorJSON {
	if f.Release == 0 {
		return nil
	}
	return &floorJSON{Release: f.Release, Since: ts(f.Since), Holders: instancesView(f.Holders)}
}

// capJSON is the version cap of one API.
type capJSON struct {
	API     string         `json:"api"`
	Version string         `json:"version"`
	Since   *rfc3339       `json:"since"`
	Holders []instanceJSON `json:"holders"`
}

func capsView(m map[string]services.Cap) []capJSON {
	out := make([]capJSON, 0, len(m))
	for _, c := range m {
		out = append(out, capJSON{API: c.API, Version: c.Version.String(), Since: ts(c.Since), Holders: instancesView(c.Holders)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].API < out[j].API })
	return out
}

// blockerInstanceJSON is an instance a blocker names.
type blockerInstanceJSON struct {
	ID      string `json:"id"`
	Service string `json:"service"`
	Host    string `json:"host"`
	Release int64  `json:"release"`
	State   string `json:"state"`
	// Phase is what the instance acts on for the move; null when the
	// blocker is not about a move's phase.
	Phase  *string `json:"phase"`
	CanAct *string `json:"can_act"`
}

// blockerJSON is one thing that blocks a step: the same shape in status,
// moves list, moves advance, backfill, verify and finalize.
type blockerJSON struct {
	Kind string `json:"kind"`
	// Move is null for what blocks every move (an instance missing).
	Move      *string               `json:"move"`
	Instances []blockerInstanceJSON `json:"instances"`
	// Rows counts the rows concerned (left to backfill, failed,
	// mismatching); 0 when the blocker is not about rows.
	Rows int64 `json:"rows"`
	// NextCommand is the command that clears it (or, when waiting clears
	// it, the command to run again); null when none can.
	NextCommand *string `json:"next_command"`
	// Exit is what this blocker alone makes the command exit with: 3 when
	// waiting clears it, 5 when someone must act, 2 when it can never
	// clear as things stand.
	Exit    int    `json:"exit"`
	Message string `json:"message"`
}

func strOrNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// blockerView is b, a blocker of move name (empty for none) in a gate of
// op ("" for a phase transition) at phase from.
func blockerView(name, op string, from move.Phase, b dualwrite.Blocker) blockerJSON {
	out := blockerJSON{Kind: string(b.Kind), Move: strOrNil(name), Instances: []blockerInstanceJSON{}, Rows: b.Rows, Message: b.Message}
	for _, in := range b.Instances {
		out.Instances = append(out.Instances, blockerInstanceJSON{ID: in.ID, Service: in.Service, Host: in.Host, Release: in.Release,
			State: in.State, Phase: strOrNil(in.Acts), CanAct: strOrNil(in.CanAct)})
	}
	out.Exit, out.NextCommand = classify(name, op, from, b)
	return out
}

// classify says what a blocker makes the command exit with, and what to
// run about it.
func classify(name, op string, from move.Phase, b dualwrite.Blocker) (int, *string) {
	cmd := func(format string, args ...any) *string { s := fmt.Sprintf(format, args...); return &s }
	if op != "" && b.Kind != dualwrite.BlockInstances && b.Kind != dualwrite.BlockTriggers && b.Kind != dualwrite.BlockRegistry {
		// The operation runs at another phase: advancing the move gets
		// there, unless the move is past it for good.
		if op == dualwrite.OpReverseBackfill || from == move.Contracted || (op == dualwrite.OpBackfill && from >= move.WriteNew) {
			return exitBadInput, nil
		}
		return exitAttention, cmd("tandem moves advance %s", name)
	}
	switch b.Kind {
	case dualwrite.BlockInstances:
		for _, in := range b.Instances {
			if in.State == string(services.StateMissing) || in.State == string(services.StateError) {
				return exitAttention, cmd("tandem services delete %s", in.ID)
			}
		}
		// Instances still rolling: the same command succeeds once they act
		// on the phase.
		if op != "" {
			return exitBlocked, cmd("tandem moves %s %s", opCommand(op), name)
		}
		return exitBlocked, cmd("tandem moves advance %s", name)
	case dualwrite.BlockFinalized:
		return exitBadInput, nil
	case dualwrite.BlockBackfill:
		if b.Retry {
			return exitBlocked, cmd("tandem moves advance %s", name)
		}
		return exitAttention, cmd("tandem moves backfill %s", name)
	case dualwrite.BlockVerify:
		return exitAttention, cmd("tandem moves verify %s", name)
	case dualwrite.BlockFinalize:
		return exitAttention, cmd("tandem moves finalize %s", name)
	case dualwrite.BlockStaleOld:
		return exitAttention, cmd("tandem moves backfill %s --reverse", name)
	case dualwrite.BlockFailedRows:
		return exitAttention, cmd("tandem moves verify %s", name)
	case dualwrite.BlockMismatches, dualwrite.BlockOldWriters:
		return exitAttention, cmd("tandem moves backfill %s --restart", name)
	case dualwrite.BlockTriggers:
		if b.NextCommand != "" {
			return exitAttention, &b.NextCommand
		}
		return exitAttention, cmd("tandem triggers install %s", name)
	case dualwrite.BlockInterrupted:
		if b.NextCommand != "" {
			return exitAttention, &b.NextCommand
		}
		return exitAttention, cmd("tandem moves advance %s", name)
	}
	if b.NextCommand != "" {
		return exitAttention, &b.NextCommand
	}
	return exitAttention, nil
}

func opCommand(op string) string {
	switch op {
	case dualwrite.OpReverseBackfill:
		return "backfill --reverse"
	}
	return op
}

func blockersView(name, op string, from move.Phase, bs []dualwrite.Blocker) []blockerJSON {
	out := make([]blockerJSON, 0, len(bs))
	for _, b := range bs {
		out = append(out, blockerView(name, op, from, b))
	}
	return out
}

// verdict is the exit of a set of blockers: 2 if any can never clear,
// else 5 if any needs someone to act, else 3; message is the error text.
func verdict(bs []blockerJSON, message string) error {
	exits := make([]int, len(bs))
	for i, b := range bs {
		exits[i] = b.Exit
	}
	switch {
	case slices.Contains(exits, exitBadInput):
		return refused(message)
	case slices.Contains(exits, exitAttention):
		return attention(message)
	case len(bs) > 0:
		return blocked(message)
	}
	return nil
}

// gateJSON is the check before one step.
type gateJSON struct {
	Move string `json:"move"`
	// Op is null for a phase transition, else what was checked:
	// "backfill", "reverse-backfill", "verify" or "finalize".
	Op       *string       `json:"op"`
	From     string        `json:"from"`
	To       string        `json:"to"`
	Open     bool          `json:"open"`
	Blockers []blockerJSON `json:"blockers"`
}

func gateView(g dualwrite.Gate) gateJSON {
	return gateJSON{Move: g.Move, Op: strOrNil(g.Op), From: g.From.String(), To: g.To.String(), Open: g.Open,
		Blockers: blockersView(g.Move, g.Op, g.From, g.Blockers)}
}

// gateDoc is printed when a backfill, verify or finalize is refused.
type gateDoc struct {
	Gate gateJSON `json:"gate"`
}
