package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/services"
)

func init() {
	extraCommands = append(extraCommands,
		func(a *app) *cobra.Command { return a.freezeCommand() },
		func(a *app) *cobra.Command { return a.thawCommand() })
}

// freezeJSON is the write freeze in force and who acknowledged it, in
// status, freeze, thaw and wait --frozen/--thawed.
type freezeJSON struct {
	// Seq numbers the state (0: no freeze was ever recorded); instances
	// acknowledge it by this number.
	Seq    int64    `json:"seq"`
	Frozen bool     `json:"frozen"`
	All    bool     `json:"all"`
	Moves  []string `json:"moves"`
	// Reason and Since are null when nothing is frozen.
	Reason     *string  `json:"reason"`
	Since      *rfc3339 `json:"since"`
	RecordedAt *rfc3339 `json:"recorded_at"`
	// Everywhere: every instance not deleted acknowledged this state.
	Everywhere   bool                `json:"everywhere"`
	Acknowledged []string            `json:"acknowledged"`
	Pending      []freezePendingJSON `json:"pending"`
}

// freezePendingJSON is an instance that has not acknowledged the state.
type freezePendingJSON struct {
	ID      string `json:"id"`
	Service string `json:"service"`
	Host    string `json:"host"`
	Release int64  `json:"release"`
	State   string `json:"state"`
	// Acked is the state it acknowledged last (0: none).
	Acked       int64    `json:"acked"`
	HeartbeatAt *rfc3339 `json:"heartbeat_at"`
	// NextCommand is what to do about it: delete a missing or error
	// instance that will not return (it cannot acknowledge); null for one
	// that is up, which acknowledges within a refresh and a heartbeat.
	NextCommand *string `json:"next_command"`
	Message     string  `json:"message"`
}

// silent says whether an instance that is up and has not acknowledged the
// freeze state in force has gone on heartbeating for longer than after
// (the fleet's --missing-after) since that state, or since it started if
// later: a tracker that follows freezes acknowledges within a refresh and
// a heartbeat, so this one does not follow them (its release has no
// freeze support, or a write it began never ends). Waiting will not fix
// it.
func silent(p dualwrite.FreezeAck, st dualwrite.FreezeState, after time.Duration) bool {
	from := st.At
	if p.Instance.StartedAt.After(from) {
		from = p.Instance.StartedAt
	}
	return !from.IsZero() && p.Instance.HeartbeatAt.Sub(from) > after
}

func freezeView(st dualwrite.FreezeStatus, after time.Duration) freezeJSON {
	out := freezeJSON{Seq: st.Seq, Frozen: st.Frozen(), All: st.All, Moves: nonNil(st.Moves), RecordedAt: ts(st.At),
		Everywhere: st.Everywhere(), Acknowledged: []string{}, Pending: []freezePendingJSON{}}
	if st.Frozen() {
		out.Reason, out.Since = strOrNil(st.Reason), ts(st.Since)
	}
	for _, a := range st.Acked {
		out.Acknowledged = append(out.Acknowledged, a.Instance.ID)
	}
	for _, p := range st.Pending {
		in := p.Instance
		v := freezePendingJSON{ID: in.ID, Service: in.Service, Host: in.Host, Release: in.Release, State: string(in.State), Acked: p.Acked, HeartbeatAt: ts(in.HeartbeatAt)}
		switch {
		case in.State == services.StateMissing, in.State == services.StateError:
			v.NextCommand = strOrNil("tandem services delete " + in.ID)
			v.Message = fmt.Sprintf("%s (%s on %s, release %d) is %s, last heartbeat %s: it cannot acknowledge; bring it back, or delete it if it will not return: tandem services delete %s",
				in.ID, in.Service, in.Host, in.Release, in.State, in.HeartbeatAt.Format(time.RFC3339), in.ID)
		case silent(p, st.FreezeState, after):
			v.NextCommand = strOrNil("tandem services delete " + in.ID)
			v.Message = fmt.Sprintf("%s (%s on %s, release %d, %s) has sent heartbeats for more than %s since freeze state %d without acknowledging it: it does not follow freezes (a release without freeze support, or a write it began that never ends); roll it to a release that does, or delete it: tandem services delete %s",
				in.ID, in.Service, in.Host, in.Release, in.State, after, st.Seq, in.ID)
		default:
			v.Message = fmt.Sprintf("%s (%s on %s, release %d, %s) has not acknowledged yet (it acknowledged state %d): it does within its tracker's refresh and its next heartbeat once its writes begun before have ended; an instance whose release has no freeze support never does: roll it, or delete it (tandem services delete %s)",
				in.ID, in.Service, in.Host, in.Release, in.State, p.Acked, in.ID)
		}
		out.Pending = append(out.Pending, v)
	}
	return out
}

// text says, for a person, what the freeze is and who has not
// acknowledged it.
func (f freezeJSON) text(w io.Writer, indent string) {
	switch {
	case f.Seq == 0:
		fmt.Fprintf(w, "%sWrites: not frozen (no freeze was ever recorded)\n", indent)
		return
	case f.Frozen:
		what := "every move"
		if !f.All {
			what = "move " + strings.Join(f.Moves, ", ")
		}
		fmt.Fprintf(w, "%sWrites: frozen on %s since %s (freeze state %d): %s\n", indent, what, f.Since.String(), f.Seq, deref(f.Reason))
	default:
		fmt.Fprintf(w, "%sWrites: thawed at %s (freeze state %d)\n", indent, f.RecordedAt.String(), f.Seq)
	}
	verb := "frozen"
	if !f.Frozen {
		verb = "thawed"
	}
	switch {
	case f.Everywhere && len(f.Acknowledged) == 0:
		fmt.Fprintf(w, "%s  no instance is registered: nothing to acknowledge\n", indent)
		return
	case f.Everywhere && f.Frozen:
		what, thaw := "every write begun with BeginWrite", "--all"
		if !f.All {
			what, thaw = "writes on move "+strings.Join(f.Moves, ", "), "--move "+strings.Join(f.Moves, " --move ")
		}
		fmt.Fprintf(w, "%s  acknowledged by every instance (%d): frozen everywhere: %s are refused (dualwrite.ErrFrozen, RPC code 423) and reads go on, until tandem thaw %s\n",
			indent, len(f.Acknowledged), what, thaw)
		return
	case f.Everywhere:
		fmt.Fprintf(w, "%s  acknowledged by every instance (%d): %s everywhere\n", indent, len(f.Acknowledged), verb)
		return
	}
	fmt.Fprintf(w, "%s  NOT %s everywhere: %d of %d instance(s) have not acknowledged:\n", indent, verb, len(f.Pending), len(f.Pending)+len(f.Acknowledged))
	for _, p := range f.Pending {
		fmt.Fprintf(w, "%s  - %s\n", indent, p.Message)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// freezeDoc is `tandem freeze --json` and `tandem thaw --json`.
type freezeDoc struct {
	// Changed: this command recorded a new state; false when it was in
	// force already (running it again is a no-op).
	Changed bool       `json:"changed"`
	Freeze  freezeJSON `json:"freeze"`
	// Waited says whether the command waited for the acknowledgements
	// (false with --no-wait).
	Waited   bool  `json:"waited"`
	WaitedNS int64 `json:"waited_ns"`
}

type freezeFlags struct {
	moves    []string
	all      bool
	reason   string
	wait     bool
	noWait   bool
	timeout  time.Duration
	interval time.Duration
}

func (f *freezeFlags) add(cmd *cobra.Command, thaw bool) {
	fl := cmd.Flags()
	verb := "freeze"
	if thaw {
		verb = "thaw"
	}
	fl.StringSliceVar(&f.moves, "move", nil, "the move whose writes to "+verb+" (repeat, or comma-separate, for several)")
	fl.BoolVar(&f.all, "all", false, verb+" writes on every move")
	fl.BoolVar(&f.wait, "wait", true, "wait until every instance that is not deleted has acknowledged (the default)")
	fl.BoolVar(&f.noWait, "no-wait", false, "record it and return at once; tandem wait --"+map[bool]string{false: "frozen", true: "thawed"}[thaw]+" waits later")
	fl.DurationVar(&f.timeout, "timeout", defaultWaitTimeout, "with --wait, give up after this long, exit 3 (0: wait without limit)")
	fl.DurationVar(&f.interval, "interval", defaultWaitInterval, "how often to read the registry while waiting (at least 100ms)")
}

// scope checks the flags before anything is opened.
func (f *freezeFlags) scope(cmd *cobra.Command, op string) (dualwrite.FreezeScope, error) {
	bad := func(format string, args ...any) (dualwrite.FreezeScope, error) {
		return dualwrite.FreezeScope{}, &usageError{fmt.Errorf(op+": "+format, args...)}
	}
	for _, m := range f.moves {
		if strings.TrimSpace(m) == "" {
			return bad("--move: an empty move name (tandem moves list shows the moves)")
		}
	}
	switch {
	case f.all && len(f.moves) > 0:
		return bad("--move and --all: name moves or every move, not both (tandem %s --all, or tandem %s --move %s)", op, op, f.moves[0])
	case !f.all && len(f.moves) == 0:
		return bad("say which writes: --move NAME (repeat for several) or --all; for example: tandem %s --all", opExample(op))
	case cmd.Flags().Changed("wait") && f.noWait && f.wait:
		return bad("--wait and --no-wait: choose one")
	case f.timeout < 0:
		return bad("--timeout %s: want 0 (no limit) or more", f.timeout)
	case f.interval < 100*time.Millisecond:
		return bad("--interval %s: want at least 100ms", f.interval)
	}
	if f.noWait {
		f.wait = false
	}
	return dualwrite.FreezeScope{All: f.all, Moves: f.moves}, nil
}

func opExample(op string) string {
	if op == "freeze" {
		return `freeze --reason "offline upgrade"`
	}
	return op
}

func (a *app) freezeCommand() *cobra.Command {
	var f freezeFlags
	cmd := &cobra.Command{
		Use:   "freeze (--move NAME ... | --all) --reason TEXT [--wait|--no-wait] [--timeout D]",
		Short: "Freeze writes on moves (or all) in every instance, while reads go on; waits until every instance has acknowledged",
		Long: `Record a write freeze in the ledger: every instance's tracker sees it within
its refresh interval and refuses new writes on the frozen moves (--all: every
write begun with BeginWrite) with dualwrite.ErrFrozen carrying the reason,
which an RPC server answers with code 423; reads go on. Each instance
acknowledges the freeze with its heartbeat once the writes it began before
have ended, and this command returns once every instance that is not deleted
has acknowledged: from then on no write commits on a frozen move until the
thaw (tandem thaw). A freeze adds to the one in force; running it again is a
no-op that waits for the acknowledgements again.

A missing or error instance cannot acknowledge: bring it back, or delete it
if it will not return (tandem services delete ID). The command never says
"frozen everywhere" while one has not acknowledged.

Exit codes: 0 frozen everywhere (with --no-wait: recorded); 2 bad input (no
reason, an unknown move, --move with --all); 3 --timeout passed while
instances that are up have not acknowledged yet (tandem wait --frozen waits
again); 5 --timeout passed and a missing or error instance has not
acknowledged (delete it or bring it back); 4 unreachable.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			scope, err := f.scope(cmd, "freeze")
			if err != nil {
				return err
			}
			if strings.TrimSpace(f.reason) == "" {
				return &usageError{fmt.Errorf(`freeze: --reason TEXT is required: it is what every refused write carries; for example: tandem freeze %s --reason "offline upgrade to release 43"`, scopeFlags(scope))}
			}
			return a.freezeOrThaw(cmd.Context(), "freeze", scope, f)
		},
	}
	f.add(cmd, false)
	cmd.Flags().StringVar(&f.reason, "reason", "", "why writes are frozen: every refused write carries it (required)")
	return cmd
}

func (a *app) thawCommand() *cobra.Command {
	var f freezeFlags
	cmd := &cobra.Command{
		Use:   "thaw (--move NAME ... | --all) [--wait|--no-wait] [--timeout D]",
		Short: "Lift a write freeze; waits until every instance has acknowledged the thaw",
		Long: `Lift the write freeze on the named moves (--all: the whole freeze). Each
instance's tracker sees the thaw within its refresh interval and writes
resume; it acknowledges with its next heartbeat, and this command returns
once every instance that is not deleted has. Thawing what is not frozen is a
no-op. A freeze of every move is lifted whole (tandem thaw --all).

Exit codes: as tandem freeze.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			scope, err := f.scope(cmd, "thaw")
			if err != nil {
				return err
			}
			return a.freezeOrThaw(cmd.Context(), "thaw", scope, f)
		},
	}
	f.add(cmd, true)
	return cmd
}

func scopeFlags(s dualwrite.FreezeScope) string {
	if s.All {
		return "--all"
	}
	return "--move " + strings.Join(s.Moves, " --move ")
}

func (a *app) freezeOrThaw(ctx context.Context, op string, scope dualwrite.FreezeScope, f freezeFlags) error {
	reg, db, done, err := a.registry(ctx)
	if err != nil {
		return err
	}
	defer done()
	mg, err := a.readManager(ctx, db, reg)
	if err != nil {
		return err
	}
	var before dualwrite.FreezeState
	if before, err = dualwrite.ReadFreeze(ctx, db); err != nil {
		return err
	}
	var st dualwrite.FreezeState
	if op == "freeze" {
		st, err = mg.Freeze(ctx, scope, f.reason)
	} else {
		st, err = mg.Thaw(ctx, scope)
	}
	if errors.Is(err, dualwrite.ErrFreezeInput) || errors.Is(err, dualwrite.ErrUnknownMove) {
		return &usageError{err}
	}
	if err != nil {
		return err
	}
	changed := st.Seq != before.Seq
	start := time.Now()
	fs, err := mg.FreezeStatus(ctx)
	if err != nil {
		return err
	}
	doc := freezeDoc{Changed: changed, Waited: f.wait}
	if f.wait && !fs.Everywhere() {
		fs, err = a.awaitFreeze(ctx, db, reg, mg, f, op)
		doc.WaitedNS = time.Since(start).Nanoseconds()
		doc.Freeze = freezeView(fs, a.missingAfter)
		if err != nil {
			var oc *outcomeError
			if errors.As(err, &oc) {
				_ = a.emit(doc, func(w io.Writer) { doc.text(w, op) }, nil)
			}
			return err
		}
	}
	doc.Freeze = freezeView(fs, a.missingAfter)
	return a.emit(doc, func(w io.Writer) { doc.text(w, op) }, nil)
}

func (d freezeDoc) text(w io.Writer, op string) {
	past := map[string]string{"freeze": "Froze", "thaw": "Thawed"}[op]
	what := "writes on every move"
	if !d.Freeze.All && d.Freeze.Frozen {
		what = "writes on move " + strings.Join(d.Freeze.Moves, ", ")
	}
	switch {
	case !d.Changed:
		fmt.Fprintf(w, "Nothing to record: the freeze in force (state %d) already is what tandem %s asks.\n", d.Freeze.Seq, op)
	case op == "freeze":
		fmt.Fprintf(w, "%s %s (freeze state %d).\n", past, what, d.Freeze.Seq)
	default:
		fmt.Fprintf(w, "%s (freeze state %d).\n", past, d.Freeze.Seq)
	}
	d.Freeze.text(w, "")
	if !d.Freeze.Everywhere && !d.Waited {
		fmt.Fprintf(w, "Not waited for (--no-wait): tandem wait --%s waits until every instance has acknowledged.\n", map[bool]string{true: "frozen", false: "thawed"}[d.Freeze.Frozen])
	}
}

// awaitFreeze polls the registry (woken by its NATS notices when --nats is
// set) until every instance acknowledged the freeze state in force, or
// --timeout passes: exit 3 when only instances that are up are pending,
// 5 when a missing or error one is (it cannot acknowledge).
func (a *app) awaitFreeze(ctx context.Context, db *dialect.DB, reg *services.Registry, mg *dualwrite.Manager, f freezeFlags, op string) (dualwrite.FreezeStatus, error) {
	kick := make(chan struct{}, 1)
	if a.natsURL != "" {
		nc, err := a.connectNATS()
		if err != nil {
			return dualwrite.FreezeStatus{}, err
		}
		defer nc.Close()
		sub, err := nc.Subscribe(services.ChangedSubject(reg.Cluster()), func(*nats.Msg) {
			select {
			case kick <- struct{}{}:
			default:
			}
		})
		if err != nil {
			return dualwrite.FreezeStatus{}, &natsError{url: dialect.RedactURL(a.natsURL), err: err}
		}
		defer sub.Unsubscribe() //nolint:errcheck // the connection closes next
	}
	var deadline <-chan time.Time
	if f.timeout > 0 {
		t := time.NewTimer(f.timeout)
		defer t.Stop()
		deadline = t.C
	}
	tick := time.NewTicker(f.interval)
	defer tick.Stop()
	last := -1
	timedOut := false
	for {
		fs, err := mg.FreezeStatus(ctx)
		if err != nil {
			return fs, err
		}
		if fs.Everywhere() {
			return fs, nil
		}
		if r := freezePending(fs, a.missingAfter); timedOut || len(r.up) == 0 {
			// Past the timeout, or only instances left that waiting
			// cannot bring (missing, in error, or not following freezes).
			return fs, freezeTimeout(fs, a.missingAfter, f.timeout, timedOut, op)
		}
		if len(fs.Pending) != last && !a.json {
			ids := make([]string, len(fs.Pending))
			for i, p := range fs.Pending {
				ids[i] = fmt.Sprintf("%s (%s)", p.Instance.ID, p.Instance.State)
			}
			fmt.Fprintf(a.stderr, "waiting for %d instance(s) to acknowledge freeze state %d: %s\n", len(ids), fs.Seq, strings.Join(ids, ", "))
			for _, p := range freezeView(fs, a.missingAfter).Pending {
				if p.NextCommand != nil { // missing or in error: waiting alone will not do
					fmt.Fprintf(a.stderr, "  %s\n", p.Message)
				}
			}
			last = len(fs.Pending)
		}
		select {
		case <-ctx.Done():
			return fs, ctx.Err()
		case <-deadline:
			timedOut = true
		case <-tick.C:
		case <-kick:
		}
	}
}

// pendingRule is what the instances that have not acknowledged the freeze
// state in force call for, the one rule of tandem freeze and thaw past
// --timeout and of status's freeze-pending blocker: a missing or error
// instance cannot acknowledge, so someone must act (5: bring it back, or
// delete it); instances that are up acknowledge within a refresh and a
// heartbeat, so waiting clears it (3: tandem wait --frozen, or --thawed).
type pendingRule struct {
	cond     string   // "frozen" or "thawed": what tandem wait waits for
	gone, up []string // the pending instances missing or in error, and the others
	exit     int
	next     string
}

func freezePending(fs dualwrite.FreezeStatus, after time.Duration) pendingRule {
	r := pendingRule{cond: map[bool]string{true: "frozen", false: "thawed"}[fs.Frozen()]}
	for _, p := range fs.Pending {
		switch p.Instance.State {
		case services.StateMissing, services.StateError:
			r.gone = append(r.gone, p.Instance.ID)
		default:
			if silent(p, fs.FreezeState, after) {
				r.gone = append(r.gone, p.Instance.ID)
			} else {
				r.up = append(r.up, p.Instance.ID)
			}
		}
	}
	if len(r.gone) > 0 {
		r.exit, r.next = exitAttention, "tandem services delete "+r.gone[0]
	} else {
		r.exit, r.next = exitBlocked, "tandem wait --"+r.cond
	}
	return r
}

// freezeTimeout is the verdict of a wait for acknowledgements that timed
// out, or that only instances waiting cannot bring are left for: 5 when
// such an instance is pending (missing, in error, or not following
// freezes), else 3.
func freezeTimeout(fs dualwrite.FreezeStatus, after, timeout time.Duration, timedOut bool, op string) error {
	r := freezePending(fs, after)
	if r.exit == exitAttention {
		when := "after " + timeout.String()
		if !timedOut {
			when = "without waiting longer"
		}
		return &outcomeError{exit: exitAttention, code: codeAttention, reason: fmt.Sprintf("%s: %s, not %s everywhere: %s cannot acknowledge (missing, in error, or not following freezes); bring them back or roll them to a release that follows freezes, or delete the ones that will not return (%s), then tandem wait --%s",
			op, when, r.cond, strings.Join(r.gone, ", "), r.next, r.cond)}
	}
	// Not reported: the document says who, this line says what next.
	return &outcomeError{exit: exitBlocked, code: codeTimeout,
		reason: fmt.Sprintf("%s: timed out after %s, not %s everywhere: %s have not acknowledged yet; wait again: %s", op, timeout, r.cond, strings.Join(r.up, ", "), r.next)}
}

// freezeBlockers is status's blocker for a freeze or thaw that an
// instance not deleted has not acknowledged (none when every one has: a
// freeze in force everywhere is a state, not a blocker). Its exit and
// next command are the rule tandem freeze uses past --timeout.
func freezeBlockers(fs dualwrite.FreezeStatus, after time.Duration) []blockerJSON {
	if fs.Everywhere() {
		return nil
	}
	r := freezePending(fs, after)
	b := blockerJSON{Kind: string(dualwrite.BlockFreezePending), Instances: []blockerInstanceJSON{}, Exit: r.exit, NextCommand: strOrNil(r.next)}
	var who []string
	for _, p := range fs.Pending {
		in := p.Instance
		b.Instances = append(b.Instances, blockerInstanceJSON{ID: in.ID, Service: in.Service, Host: in.Host, Release: in.Release, State: string(in.State)})
		who = append(who, fmt.Sprintf("%s (%s on %s, release %d, %s, acknowledged state %d)", in.ID, in.Service, in.Host, in.Release, in.State, p.Acked))
	}
	what := "writes on every move are frozen"
	switch {
	case !fs.Frozen():
		what = "writes are thawed"
	case !fs.All:
		what = "writes on move " + strings.Join(fs.Moves, ", ") + " are frozen"
	}
	since := ""
	if fs.Frozen() {
		since = " since " + fs.Since.UTC().Format(time.RFC3339) + ": " + fs.Reason
	}
	msg := fmt.Sprintf("%s (freeze state %d%s), but %d of %d instance(s) have not acknowledged it: %s; ",
		what, fs.Seq, since, len(fs.Pending), len(fs.Pending)+len(fs.Acked), strings.Join(who, ", "))
	if fs.Frozen() {
		msg += "a write they began may still commit, so writes are not frozen everywhere yet"
	} else {
		msg += "they may still refuse writes the thaw lifted, so writes are not thawed everywhere yet"
	}
	if r.exit == exitAttention {
		msg += fmt.Sprintf("; %s cannot acknowledge (missing or in error): bring them back, or delete the ones that will not return: %s", strings.Join(r.gone, ", "), r.next)
	} else {
		msg += "; they acknowledge within their tracker's refresh and a heartbeat: " + r.next
	}
	b.Message = msg
	return []blockerJSON{b}
}
