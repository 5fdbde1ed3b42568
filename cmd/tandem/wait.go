package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/services"
)

func init() {
	extraCommands = append(extraCommands, func(a *app) *cobra.Command { return a.waitCommand() })
}

// Defaults of tandem wait.
const (
	defaultWaitTimeout  = 10 * time.Minute
	defaultWaitInterval = 2 * time.Second
	// stillWaitingEvery is how often an unchanged wait says it is still
	// waiting.
	stillWaitingEvery = 30 * time.Second
)

// waitFlags is what `tandem wait` was asked.
type waitFlags struct {
	move     string
	phase    string
	gateOpen bool
	acked    bool
	frozen   bool
	thawed   bool
	floor    int64
	service  string
	timeout  time.Duration
	interval time.Duration
}

// waitCondition is one condition tandem wait can wait for.
type waitCondition struct {
	// Kind is "phase", "gate_open", "acked", "floor", "frozen" or
	// "thawed".
	Kind    string  `json:"kind"`
	Move    *string `json:"move"`
	Phase   *string `json:"phase"`
	Floor   *int64  `json:"floor"`
	Service *string `json:"service"`
	text    string  // for a person: "move price_cents at read-new"
	never   string  // "move price_cents can never be at read-new"
}

// waitState is what one look at the ledger and the registry found.
type waitState struct {
	Met bool `json:"met"`
	// Never says why the condition can never hold as things stand; null
	// while it may (never is the same, for the code).
	Never *string `json:"never"`
	never string
	// attention says why only someone acting can make it hold (exit 5):
	// the instances left are missing, in error or do not follow freezes.
	attention string
	// Now is what holds now, for a person.
	Now string `json:"now"`
	// What the condition is about, as far as it applies (null otherwise).
	Phase     *string       `json:"phase"`
	Finalized *bool         `json:"finalized"`
	NextGate  *gateJSON     `json:"next_gate"`
	Floor     *floorJSON    `json:"floor"`
	Lagging   []laggingJSON `json:"lagging"`
	Instances *int          `json:"instances"`
	// Freeze is the write freeze and who acknowledged it, for --frozen
	// and --thawed (null otherwise).
	Freeze *freezeJSON     `json:"freeze"`
	detail func() []string // lines for a person under Now
}

// laggingJSON is an instance that does not act yet on the phase its move
// stands at.
type laggingJSON struct {
	ID      string `json:"id"`
	Service string `json:"service"`
	Host    string `json:"host"`
	Release int64  `json:"release"`
	State   string `json:"state"`
	Move    string `json:"move"`
	Acts    string `json:"acts"`
	Want    string `json:"want"`
	CanAct  string `json:"can_act"`
}

// waitEvent is a "waiting" event: the condition and what holds now.
type waitEvent struct {
	Condition waitCondition `json:"condition"`
	State     waitState     `json:"state"`
	WaitedNS  int64         `json:"waited_ns"`
}

// waitResult is the "result" event.
type waitResult struct {
	// Outcome is "met" (exit 0), "timeout" (exit 3), "never" (exit 2:
	// the condition can never hold as things stand) or "attention" (exit
	// 5: only someone acting can make it hold, as for a freeze that a
	// missing instance has not acknowledged).
	Outcome   string        `json:"outcome"`
	Condition waitCondition `json:"condition"`
	State     waitState     `json:"state"`
	WaitedNS  int64         `json:"waited_ns"`
	Message   string        `json:"message"`
}

func (a *app) waitCommand() *cobra.Command {
	var f waitFlags
	cmd := &cobra.Command{
		Use:   "wait (--move NAME --phase P | --move NAME --gate-open | --acked [--move NAME] | --floor R [--service S] | --frozen [--move NAME] | --thawed [--move NAME])",
		Short: "Block until a move reaches a phase, its next gate opens, every instance acknowledges, the floor reaches a release, or a write freeze or thaw is acknowledged everywhere",
		Long: `Block until one condition holds, or --timeout passes, the way kubectl
rollout status does, so a script can chain rollout steps on exit codes:

  --move NAME --phase P   the move stands at phase P in the ledger
  --move NAME --gate-open the gate of the move's next phase is open
                          (tandem moves advance NAME would go through)
  --acked [--move NAME]   every instance that is not deleted acts on the
                          phase its move stands at (each move, or NAME)
  --floor R [--service S] the release floor (among S's instances) is R or
                          higher: every instance not deleted runs R or newer
  --frozen [--move NAME]  writes are frozen (on NAME) and every instance not
                          deleted has acknowledged the freeze in force
  --thawed [--move NAME]  writes are not frozen (on NAME) and every instance
                          not deleted has acknowledged the thaw

It only reads: the ledger and the registry are read every --interval, and
at once when the registry announces a change on NATS (--nats; ledger
changes are not announced, so a phase is seen within one interval).
Progress goes to stderr each time what it sees changes (and every 30s);
the result goes to stdout. With --json, stdout is a stream: a "waiting"
event each time what it sees changes, then one "result" event.

Exit codes: 0 the condition holds; 3 --timeout passed first; 2 it can
never hold as things stand (bad flags, an unknown move, a contracted move
or a finalized one asked for an earlier phase, a contracted move's next
gate, --frozen while nothing is frozen, --thawed while the freeze is in
force); 5 for --frozen or --thawed when the only instances left to
acknowledge are missing, in error or do not follow freezes; 4 the database
or NATS unreachable; 130 interrupted. A floor can
always still rise (a newer release may register), so --floor never exits 2.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cond, err := f.condition(cmd)
			if err != nil {
				return err
			}
			return a.wait(cmd.Context(), cond, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.move, "move", "", "the move (with --phase, --gate-open, or --acked for one move)")
	fl.StringVar(&f.phase, "phase", "", "wait until the move stands at this phase")
	fl.BoolVar(&f.gateOpen, "gate-open", false, "wait until the gate of the move's next phase is open")
	fl.BoolVar(&f.acked, "acked", false, "wait until every instance acts on the phase each move stands at")
	fl.Int64Var(&f.floor, "floor", 0, "wait until the release floor is at least this release")
	fl.BoolVar(&f.frozen, "frozen", false, "wait until writes are frozen (on --move) and every instance has acknowledged the freeze")
	fl.BoolVar(&f.thawed, "thawed", false, "wait until writes are not frozen (on --move) and every instance has acknowledged the thaw")
	fl.StringVar(&f.service, "service", "", "with --floor: the floor among this service's instances")
	fl.DurationVar(&f.timeout, "timeout", defaultWaitTimeout, "give up after this long, exit 3 (0: wait without limit)")
	fl.DurationVar(&f.interval, "interval", defaultWaitInterval, "how often to read the ledger and the registry (at least 100ms)")
	return cmd
}

// condition checks the flags, before anything is opened, and says what to
// wait for.
func (f waitFlags) condition(cmd *cobra.Command) (waitCondition, error) {
	bad := func(format string, args ...any) (waitCondition, error) {
		return waitCondition{}, &usageError{fmt.Errorf("wait: "+format, args...)}
	}
	changed := cmd.Flags().Changed
	var kinds []string
	for _, k := range []string{"phase", "gate-open", "acked", "floor", "frozen", "thawed"} {
		if changed(k) {
			kinds = append(kinds, "--"+k)
		}
	}
	switch {
	case len(kinds) == 0:
		return bad("say what to wait for: --move NAME --phase P, --move NAME --gate-open, --acked, --floor R, --frozen or --thawed (see tandem wait --help)")
	case len(kinds) > 1:
		return bad("%s: wait for one condition at a time (run tandem wait once for each)", strings.Join(kinds, " and "))
	case f.timeout < 0:
		return bad("--timeout %s: want 0 (no limit) or more", f.timeout)
	case f.interval < 100*time.Millisecond:
		return bad("--interval %s: want at least 100ms", f.interval)
	case changed("service") && !changed("floor"):
		return bad("--service goes with --floor (the floor among that service's instances)")
	case changed("move") && changed("floor"):
		return bad("--move does not go with --floor: the floor is the registry's, not a move's")
	}
	c := waitCondition{}
	if f.move != "" {
		c.Move = &f.move
	}
	switch kinds[0] {
	case "--phase":
		if f.move == "" {
			return bad("--phase needs --move NAME (tandem wait --move NAME --phase %s)", f.phase)
		}
		p, err := move.ParsePhase(f.phase)
		if err != nil {
			return waitCondition{}, &usageError{fmt.Errorf("wait --phase: %w", err)}
		}
		s := p.String()
		c.Kind, c.Phase, c.text = "phase", &s, fmt.Sprintf("move %s at %s", f.move, s)
		c.never = fmt.Sprintf("move %s can never be at %s", f.move, s)
	case "--gate-open":
		if f.move == "" {
			return bad("--gate-open needs --move NAME (tandem wait --move NAME --gate-open)")
		}
		c.Kind, c.text = "gate_open", fmt.Sprintf("the next gate of move %s open", f.move)
		c.never = fmt.Sprintf("the next gate of move %s can never open", f.move)
	case "--acked":
		c.Kind, c.text = "acked", "every instance acting on the phase each move stands at"
		if f.move != "" {
			c.text = "every instance acting on the phase move " + f.move + " stands at"
		}
	case "--frozen":
		c.Kind, c.text, c.never = "frozen", "writes frozen everywhere", "writes can never be frozen everywhere"
		if f.move != "" {
			c.text, c.never = "writes on move "+f.move+" frozen everywhere", "writes on move "+f.move+" can never be frozen everywhere"
		}
	case "--thawed":
		c.Kind, c.text, c.never = "thawed", "writes thawed everywhere", "writes can never be thawed everywhere"
		if f.move != "" {
			c.text, c.never = "writes on move "+f.move+" thawed everywhere", "writes on move "+f.move+" can never be thawed everywhere"
		}
	case "--floor":
		if f.floor < 1 {
			return bad("--floor %d: a release is at least 1", f.floor)
		}
		c.Kind, c.Floor, c.text = "floor", &f.floor, fmt.Sprintf("the release floor at %d or higher", f.floor)
		if f.service != "" {
			c.Service = &f.service
			c.text = fmt.Sprintf("the release floor of service %s at %d or higher", f.service, f.floor)
		}
	}
	return c, nil
}

// waiter reads what a condition is about; it only reads.
type waiter struct {
	a    *app
	db   *dialect.DB
	reg  *services.Registry
	mg   *dualwrite.Manager
	cond waitCondition
}

func (a *app) wait(ctx context.Context, cond waitCondition, f waitFlags) error {
	db, err := a.openDB(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	reg, err := services.New(ctx, db, services.WithLogger(a.logger()), services.WithMissingAfter(a.missingAfter))
	if errors.Is(err, services.ErrInvalid) {
		return &usageError{fmt.Errorf("--missing-after %s: %w; for example: tandem --missing-after 90s wait ...", a.missingAfter, err)}
	}
	if err != nil {
		return err
	}
	w := &waiter{a: a, db: db, reg: reg, cond: cond}
	if cond.Kind != "floor" {
		if w.mg, err = a.readManager(ctx, db, reg); err != nil {
			return err
		}
		if cond.Move != nil {
			if _, err := w.mg.Move(*cond.Move); err != nil {
				return movesError(err)
			}
		}
	}
	// Registry notices wake the wait at once; without NATS it polls.
	kick := make(chan struct{}, 1)
	if a.natsURL != "" {
		nc, err := a.connectNATS()
		if err != nil {
			return err
		}
		defer nc.Close()
		sub, err := nc.Subscribe(services.ChangedSubject(reg.Cluster()), func(*nats.Msg) {
			select {
			case kick <- struct{}{}:
			default:
			}
		})
		if err != nil {
			return &natsError{url: dialect.RedactURL(a.natsURL), err: err}
		}
		defer sub.Unsubscribe() //nolint:errcheck // the connection closes next
		a.logger().Debug("wait: woken by registry notices", "subject", sub.Subject)
	}
	return w.loop(ctx, f, kick)
}

func (w *waiter) loop(ctx context.Context, f waitFlags, kick <-chan struct{}) error {
	a := w.a
	start := time.Now()
	var deadline <-chan time.Time
	if f.timeout > 0 {
		t := time.NewTimer(f.timeout)
		defer t.Stop()
		deadline = t.C
	}
	tick := time.NewTicker(f.interval)
	defer tick.Stop()
	var ev *eventWriter
	if a.json {
		ev = a.events()
	}
	var last string
	var lastShown time.Time
	timedOut := false
	for {
		st, err := w.look(ctx)
		if err != nil {
			return err
		}
		st.Never = strOrNil(st.never)
		waited := time.Since(start)
		a.logger().Debug("wait: looked", "condition", w.cond.Kind, "met", st.Met, "now", st.Now, "waited", waited)
		switch {
		case st.Met:
			return w.result(ev, "met", st, waited, fmt.Sprintf("%s (waited %s)", st.Now, waited.Round(time.Millisecond)), nil)
		case st.never != "":
			msg := fmt.Sprintf("%s: %s", w.cond.never, st.never)
			return w.result(ev, "never", st, waited, msg, refused(msg))
		case st.attention != "":
			msg := fmt.Sprintf("%s: %s", w.cond.text, st.attention)
			return w.result(ev, "attention", st, waited, msg, &outcomeError{exit: exitAttention, code: codeAttention, reason: msg, reported: true})
		case timedOut:
			msg := fmt.Sprintf("timed out after %s waiting for %s: %s", f.timeout, w.cond.text, st.Now)
			return w.result(ev, "timeout", st, waited, msg, &outcomeError{exit: exitBlocked, code: codeTimeout, reason: msg, reported: true})
		}
		if st.Now != last || time.Since(lastShown) >= stillWaitingEvery {
			if ev != nil {
				if err := ev.emit("waiting", waitEvent{Condition: w.cond, State: st, WaitedNS: waited.Nanoseconds()}); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(a.stderr, "waiting for %s (%s): %s\n", w.cond.text, waited.Round(time.Second), st.Now)
				if st.Now != last && st.detail != nil {
					for _, l := range st.detail() {
						fmt.Fprintf(a.stderr, "  %s\n", l)
					}
				}
			}
			last, lastShown = st.Now, time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			timedOut = true // one last look, then the verdict
		case <-tick.C:
		case <-kick:
		}
	}
}

// result prints the outcome: a "result" event, or a line on stdout; then
// returns then (the exit code's verdict).
func (w *waiter) result(ev *eventWriter, outcome string, st waitState, waited time.Duration, msg string, then error) error {
	if ev != nil {
		if err := ev.emit("result", waitResult{Outcome: outcome, Condition: w.cond, State: st, WaitedNS: waited.Nanoseconds(), Message: msg}); err != nil {
			return err
		}
		return then
	}
	fmt.Fprintln(w.a.stdout, upperFirst(msg))
	return then
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// look reads, once, what the condition is about.
func (w *waiter) look(ctx context.Context) (waitState, error) {
	if w.cond.Kind == "floor" {
		snap, err := w.reg.Snapshot(ctx)
		if err != nil {
			return waitState{}, err
		}
		return floorState(snap, w.cond), nil
	}
	if w.cond.Kind == "frozen" || w.cond.Kind == "thawed" {
		fs, err := w.mg.FreezeStatus(ctx)
		if err != nil {
			return waitState{}, err
		}
		return freezeState(fs, w.cond, w.a.missingAfter), nil
	}
	st, err := w.mg.Status(ctx)
	if err != nil {
		return waitState{}, err
	}
	var moves []dualwrite.MoveStatus
	for _, m := range st.Moves {
		if w.cond.Move == nil || m.Name == *w.cond.Move {
			moves = append(moves, m)
		}
	}
	switch w.cond.Kind {
	case "phase":
		return phaseState(moves[0], *w.cond.Phase), nil
	case "gate_open":
		return gateState(moves[0]), nil
	}
	return ackedState(moves), nil
}

func phaseState(m dualwrite.MoveStatus, want string) waitState {
	p := m.Phase.String()
	fin := m.Finalized
	st := waitState{Phase: &p, Finalized: &fin, Lagging: []laggingJSON{}}
	target, _ := move.ParsePhase(want)
	st.Met = m.Phase == target
	st.Now = "move " + m.Name + " is at " + p
	if m.Next != nil {
		g := gateView(*m.Next)
		st.NextGate = &g
		st.Now += nextText(m)
	}
	switch {
	case st.Met:
	case m.Phase == move.Contracted:
		st.never = "it is contracted: the old column is dropped and a move never leaves contracted"
	case m.Finalized && target < m.Phase:
		st.never = fmt.Sprintf("it is at %s and finalized at release %d: the rollback window is closed, it never goes back to %s", p, m.FinalizedRelease, want)
	}
	st.detail = blockerLines(m)
	return st
}

func gateState(m dualwrite.MoveStatus) waitState {
	p := m.Phase.String()
	fin := m.Finalized
	st := waitState{Phase: &p, Finalized: &fin, Lagging: []laggingJSON{}}
	st.Now = "move " + m.Name + " is at " + p
	if m.Next == nil {
		st.never = "move " + m.Name + " is contracted: it has no next phase"
		return st
	}
	g := gateView(*m.Next)
	st.NextGate = &g
	st.Met = m.Next.Open
	st.Now += nextText(m)
	st.detail = blockerLines(m)
	return st
}

// nextText says, after "move X is at P", where its next gate stands.
func nextText(m dualwrite.MoveStatus) string {
	if m.Next.Open {
		return "; " + m.Next.To.String() + " is open"
	}
	var kinds []string
	for _, b := range m.Next.Blockers {
		if !slices.Contains(kinds, string(b.Kind)) {
			kinds = append(kinds, string(b.Kind))
		}
	}
	return fmt.Sprintf("; %s is blocked by %s", m.Next.To, strings.Join(kinds, ", "))
}

func blockerLines(m dualwrite.MoveStatus) func() []string {
	return func() []string {
		if m.Next == nil || m.Next.Open {
			return nil
		}
		var out []string
		for _, b := range m.Next.Blockers {
			out = append(out, fmt.Sprintf("[%s] %s", b.Kind, b.Message))
		}
		return out
	}
}

func ackedState(moves []dualwrite.MoveStatus) waitState {
	st := waitState{Lagging: []laggingJSON{}}
	ids := map[string]bool{}
	for _, m := range moves {
		for _, in := range m.Instances {
			ids[in.ID] = true
			if in.Acts != m.Phase.String() {
				st.Lagging = append(st.Lagging, laggingJSON{ID: in.ID, Service: in.Service, Host: in.Host, Release: in.Release,
					State: in.State, Move: m.Name, Acts: in.Acts, Want: m.Phase.String(), CanAct: in.CanAct})
			}
		}
	}
	n := len(ids)
	st.Instances = &n
	st.Met = len(st.Lagging) == 0
	switch {
	case len(moves) == 0:
		st.Now = "no move is recorded: nothing to acknowledge"
	case n == 0:
		st.Now = "no instance is registered: nothing to acknowledge"
	case st.Met:
		st.Now = fmt.Sprintf("%d instance(s) act on the phase of each of %d move(s)", n, len(moves))
	default:
		behind := map[string]bool{}
		for _, l := range st.Lagging {
			behind[l.ID] = true
		}
		st.Now = fmt.Sprintf("%d of %d instance(s) do not act yet on their move's phase", len(behind), n)
	}
	st.detail = func() []string {
		var out []string
		for _, l := range st.Lagging {
			line := fmt.Sprintf("%s (%s on %s, release %d, %s) acts on %s for move %s, which is at %s", l.ID, l.Service, l.Host, l.Release, l.State, l.Acts, l.Move, l.Want)
			if p, err := move.ParsePhase(l.CanAct); err == nil {
				if w, _ := move.ParsePhase(l.Want); p < w {
					line += fmt.Sprintf("; its release acts at most on %s: roll it to a newer release, or delete it if it will not return (tandem services delete %s)", l.CanAct, l.ID)
				}
			}
			out = append(out, line)
		}
		return out
	}
	return st
}

func floorState(snap services.Snapshot, c waitCondition) waitState {
	if c.Service != nil {
		var ins []services.Instance
		for _, in := range snap.Instances {
			if in.Service == *c.Service {
				ins = append(ins, in)
			}
		}
		snap.Instances = ins
	}
	f := snap.Floor()
	st := waitState{Floor: floorOf(f), Lagging: []laggingJSON{}}
	n := 0
	for _, in := range snap.Instances {
		if in.State != services.StateDeleted {
			n++
		}
	}
	st.Instances = &n
	of := ""
	if c.Service != nil {
		of = " of service " + *c.Service
	}
	if f.Release == 0 {
		st.Now = "no instance" + of + " is registered: there is no floor"
		return st
	}
	st.Met = f.Release >= *c.Floor
	var holders []string
	for _, h := range f.Holders {
		holders = append(holders, fmt.Sprintf("%s (%s)", h.ID, h.State))
	}
	st.Now = fmt.Sprintf("the floor%s is release %d, held by %s", of, f.Release, strings.Join(holders, ", "))
	return st
}

// freezeState is a look at the freeze for --frozen and --thawed: met when
// the freeze in force is the one asked for and every instance not deleted
// acknowledged it; never when it is the opposite, which only another
// freeze or thaw changes.
func freezeState(fs dualwrite.FreezeStatus, c waitCondition, after time.Duration) waitState {
	v := freezeView(fs, after)
	st := waitState{Freeze: &v, Lagging: []laggingJSON{}}
	n := len(fs.Acked) + len(fs.Pending)
	st.Instances = &n
	frozen := fs.Frozen()
	what := "writes"
	if c.Move != nil {
		frozen = fs.Covers(*c.Move)
		what = "writes on move " + *c.Move
	}
	want := c.Kind == "frozen"
	state := map[bool]string{true: "frozen", false: "not frozen"}[frozen]
	switch {
	case frozen != want && want:
		st.never = what + " are not frozen: freeze them first (tandem freeze " + freezeFlagsOf(c) + ` --reason TEXT)`
	case frozen != want:
		st.never = fmt.Sprintf("%s are frozen (freeze state %d, since %s: %s): thaw them first (tandem thaw %s)", what, fs.Seq, fs.Since.Format(time.RFC3339), fs.Reason, freezeFlagsOf(c))
	}
	st.Met = frozen == want && fs.Everywhere()
	if r := freezePending(fs, after); !st.Met && frozen == want && len(r.up) == 0 && r.exit == exitAttention {
		st.attention = fmt.Sprintf("%s cannot acknowledge (missing, in error, or not following freezes): bring them back or roll them to a release that follows freezes, or delete the ones that will not return (%s)", strings.Join(r.gone, ", "), r.next)
	}
	if st.Met {
		st.Now = fmt.Sprintf("%s are %s and every instance (%d) acknowledged freeze state %d", what, state, n, fs.Seq)
	} else {
		st.Now = fmt.Sprintf("%s are %s (freeze state %d); %d of %d instance(s) have not acknowledged it", what, state, fs.Seq, len(fs.Pending), n)
	}
	st.detail = func() []string {
		out := make([]string, 0, len(v.Pending))
		for _, p := range v.Pending {
			out = append(out, p.Message)
		}
		return out
	}
	return st
}

func freezeFlagsOf(c waitCondition) string {
	if c.Move != nil {
		return "--move " + *c.Move
	}
	return "--all"
}
