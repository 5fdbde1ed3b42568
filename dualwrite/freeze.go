package dualwrite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/schema"
	"github.com/tandem-go/tandem/services"
)

// FreezeTable records every freeze and thaw, one row each, numbered by seq;
// the row with the highest seq is the freeze in force.
const FreezeTable = "tandem_freezes"

// FreezeScope says which moves a freeze or a thaw is about: every move
// (All), or the named ones. Exactly one of the two is given.
type FreezeScope struct {
	All   bool
	Moves []string
}

func (s FreezeScope) String() string {
	if s.All {
		return "every move"
	}
	return "move " + strings.Join(s.Moves, ", ")
}

// FreezeState is the write freeze in force, as the ledger records it. Its
// Seq numbers it: every freeze or thaw that changes what is frozen records
// a new state with the next Seq, and instances acknowledge a state by its
// Seq (services.Heartbeat.Freeze).
type FreezeState struct {
	// Seq is the ledger row of this state; 0 when no freeze was ever
	// recorded.
	Seq int64 `json:"seq"`
	// Action is what recorded it: "freeze" or "thaw" ("" for Seq 0).
	Action string `json:"action"`
	// All freezes writes on every move (and any write begun with
	// BeginWrite, whatever its name).
	All bool `json:"all"`
	// Moves are the frozen moves, sorted; empty when All or thawed.
	Moves []string `json:"moves"`
	// Reason is the operator's reason for the freeze in force; empty when
	// nothing is frozen.
	Reason string `json:"reason"`
	// Since is when the freeze in force began (it stays through freezes
	// of more moves and partial thaws); zero when nothing is frozen.
	Since time.Time `json:"since"`
	// At is when this state was recorded.
	At time.Time `json:"at"`
}

// Frozen says whether anything is frozen.
func (f FreezeState) Frozen() bool { return f.All || len(f.Moves) > 0 }

// Covers says whether writes on the named move are frozen.
func (f FreezeState) Covers(name string) bool {
	return f.All || slices.Contains(f.Moves, name)
}

// Err returns the *FrozenError a write on the named move gets, or nil when
// the move is not frozen.
func (f FreezeState) Err(name string) error {
	if !f.Covers(name) {
		return nil
	}
	return &FrozenError{Move: name, All: f.All, Moves: slices.Clone(f.Moves), Reason: f.Reason, Since: f.Since, Seq: f.Seq}
}

// freezeRow is one row of tandem_freezes.
type freezeRow struct {
	Seq    int64        `db:"seq"`
	Action string       `db:"action"`
	Scope  string       `db:"scope"`
	All    int64        `db:"frozen_all"`
	Moves  string       `db:"frozen_moves"`
	Reason string       `db:"reason"`
	Since  sql.NullTime `db:"since"`
	At     time.Time    `db:"at"`
	Host   string       `db:"host"`
}

const freezeCols = `seq, action, scope, frozen_all, frozen_moves, reason, since, at, host`

func (r freezeRow) state() (FreezeState, error) {
	f := FreezeState{Seq: r.Seq, Action: r.Action, All: r.All != 0, Reason: r.Reason, At: r.At.UTC(), Moves: []string{}}
	if r.Since.Valid {
		f.Since = r.Since.Time.UTC()
	}
	if r.Moves != "" {
		if err := json.Unmarshal([]byte(r.Moves), &f.Moves); err != nil {
			return f, fmt.Errorf("freeze %d: frozen moves: %w", r.Seq, err)
		}
	}
	return f, nil
}

// ReadFreeze reads the freeze in force. It only reads: a database whose
// ledger has no freeze table yet (tandem schema ensure not run since) has
// never been frozen, and gets the zero state.
func ReadFreeze(ctx context.Context, db *dialect.DB) (FreezeState, error) {
	ok, err := sqldialect.Of(db).TableExists(ctx, db, FreezeTable)
	if err != nil || !ok {
		return FreezeState{Moves: []string{}}, err
	}
	return readFreeze(ctx, db)
}

func readFreeze(ctx context.Context, q dialect.Querier) (FreezeState, error) {
	var r freezeRow
	err := q.GetContext(ctx, &r, `SELECT `+freezeCols+` FROM `+FreezeTable+` ORDER BY seq DESC LIMIT 1`)
	if errors.Is(err, sql.ErrNoRows) {
		return FreezeState{Moves: []string{}}, nil
	}
	if err != nil {
		return FreezeState{}, err
	}
	return r.state()
}

// FreezeHistory returns every freeze and thaw the ledger records, oldest
// first.
func FreezeHistory(ctx context.Context, q dialect.Querier) ([]FreezeState, error) {
	var rows []freezeRow
	if err := q.SelectContext(ctx, &rows, `SELECT `+freezeCols+` FROM `+FreezeTable+` ORDER BY seq`); err != nil {
		return nil, fmt.Errorf("dualwrite: freeze history: %w", err)
	}
	out := make([]FreezeState, 0, len(rows))
	for _, r := range rows {
		f, err := r.state()
		if err != nil {
			return nil, fmt.Errorf("dualwrite: freeze history: %w", err)
		}
		out = append(out, f)
	}
	return out, nil
}

// checkScope refuses a scope that names nothing, names moves and every
// move at once, or names a move the Manager does not know.
func (mg *Manager) checkScope(op string, s FreezeScope) (FreezeScope, error) {
	bad := func(reason string) error {
		return fmt.Errorf("dualwrite: %s: %w", op, &FreezeInputError{Op: op, Reason: reason})
	}
	switch {
	case s.All && len(s.Moves) > 0:
		return s, bad("name moves or every move, not both (--move NAME ... or --all)")
	case !s.All && len(s.Moves) == 0:
		return s, bad("say which writes: name the moves (--move NAME ...) or every move (--all)")
	}
	out := FreezeScope{All: s.All}
	for _, n := range s.Moves {
		if _, err := mg.Move(n); err != nil {
			return s, fmt.Errorf("dualwrite: %s: %w", op, err)
		}
		if !slices.Contains(out.Moves, n) {
			out.Moves = append(out.Moves, n)
		}
	}
	slices.Sort(out.Moves)
	return out, nil
}

// Freeze records a write freeze on the moves of scope, with the operator's
// reason (required). Every instance's tracker sees it within its refresh
// interval (at once with WithNotices, when the Manager's registry is a
// *services.Registry with NATS: it announces the freeze) and refuses new writes on those moves with a *FrozenError
// (BeginWrite), while reads go on; each acknowledges it with its heartbeat
// once the writes it began before have ended (see FreezeStatus).
//
// A freeze adds to the one in force: the moves frozen are the union, the
// reason is the latest, Since stays when the first began. A freeze that
// changes nothing (the moves are frozen already, for the same reason)
// records nothing and returns the state in force: running it again is a
// no-op. Concurrent freezes and thaws are serialized by a database lock.
func (mg *Manager) Freeze(ctx context.Context, scope FreezeScope, reason string) (FreezeState, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return FreezeState{}, fmt.Errorf("dualwrite: freeze: %w", &FreezeInputError{Op: "freeze", Reason: "give the reason an instance's refused writes will carry (--reason TEXT)"})
	}
	if len(reason) > 1000 {
		return FreezeState{}, fmt.Errorf("dualwrite: freeze: %w", &FreezeInputError{Op: "freeze", Reason: "the reason is longer than 1000 bytes"})
	}
	scope, err := mg.checkScope("freeze", scope)
	if err != nil {
		return FreezeState{}, err
	}
	return mg.recordFreeze(ctx, "freeze", scope, func(cur FreezeState, now time.Time) FreezeState {
		next := cur
		next.Moves = slices.Clone(cur.Moves)
		if scope.All {
			next.All, next.Moves = true, []string{}
		} else if !cur.All {
			for _, n := range scope.Moves {
				if !slices.Contains(next.Moves, n) {
					next.Moves = append(next.Moves, n)
				}
			}
			slices.Sort(next.Moves)
		}
		next.Reason = reason
		if !cur.Frozen() {
			next.Since = now
		}
		return next
	})
}

// Thaw lifts the freeze on the moves of scope (--all lifts all of it).
// Instances acknowledge a thaw as they do a freeze. Thawing what is not
// frozen records nothing. A freeze of every move is lifted whole: a thaw
// naming moves is refused with a *FreezeInputError, because the other moves
// would stay frozen unnamed.
func (mg *Manager) Thaw(ctx context.Context, scope FreezeScope) (FreezeState, error) {
	scope, err := mg.checkScope("thaw", scope)
	if err != nil {
		return FreezeState{}, err
	}
	var refused error
	st, err := mg.recordFreeze(ctx, "thaw", scope, func(cur FreezeState, now time.Time) FreezeState {
		next := cur
		switch {
		case scope.All:
			next.All, next.Moves = false, []string{}
		case cur.All:
			refused = &FreezeInputError{Op: "thaw", Reason: "every move is frozen (since " + cur.Since.Format(time.RFC3339) + "): lift the whole freeze (tandem thaw --all)"}
			return cur
		default:
			next.Moves = slices.DeleteFunc(slices.Clone(cur.Moves), func(n string) bool { return slices.Contains(scope.Moves, n) })
		}
		if !next.Frozen() {
			next.Reason, next.Since = "", time.Time{}
		}
		return next
	})
	if refused != nil {
		return st, fmt.Errorf("dualwrite: thaw: %w", refused)
	}
	return st, err
}

// recordFreeze computes the next state from the one in force, under the
// freeze lock, and records it when it differs.
func (mg *Manager) recordFreeze(ctx context.Context, action string, scope FreezeScope, next func(cur FreezeState, now time.Time) FreezeState) (FreezeState, error) {
	if err := schema.Check(ctx, mg.db, Tables()); err != nil {
		return FreezeState{}, fmt.Errorf("dualwrite: %s: %w", action, err)
	}
	var out FreezeState
	recorded := false
	err := sqldialect.Of(mg.db).Locked(ctx, mg.db.SQLX(), "freeze", mg.lockWait, func(ctx context.Context, q dialect.Querier) error {
		cur, err := readFreeze(ctx, q)
		if err != nil {
			return err
		}
		now := mg.utc()
		n := next(cur, now)
		if n.All == cur.All && slices.Equal(n.Moves, cur.Moves) && n.Reason == cur.Reason {
			out = cur
			return nil
		}
		n.Seq, n.Action, n.At = cur.Seq+1, action, now
		scopeJSON, _ := json.Marshal(scope.Moves)
		if scope.All {
			scopeJSON = []byte(`"*"`)
		}
		movesJSON, _ := json.Marshal(n.Moves)
		var since any
		if n.Frozen() {
			since = n.Since
		}
		all := 0
		if n.All {
			all = 1
		}
		if _, err := q.ExecContext(ctx, q.Rebind(`INSERT INTO `+FreezeTable+` (`+freezeCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			n.Seq, action, string(scopeJSON), all, string(movesJSON), n.Reason, since, now, hostname()); err != nil {
			return err
		}
		out, recorded = n, true
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("dualwrite: %s: %w", action, err)
	}
	mg.log.Info("dualwrite: "+action, "scope", scope.String(), "seq", out.Seq, "frozen_all", out.All, "frozen_moves", out.Moves)
	if a, ok := mg.src.(writeFreezeAnnouncer); ok && recorded {
		a.AnnounceWriteFreeze()
	}
	return out, nil
}

// writeFreezeAnnouncer is a registry that announces a recorded freeze or
// thaw on NATS (a *services.Registry: AnnounceWriteFreeze does nothing
// without NATS), so trackers WithNotices refresh at once.
type writeFreezeAnnouncer interface{ AnnounceWriteFreeze() }

func hostname() string {
	host, _ := os.Hostname()
	if len(host) > 120 {
		host = host[:120]
	}
	if host == "" {
		host = "unknown"
	}
	return host
}

// FreezeAck is one instance's acknowledgement of the freeze in force.
type FreezeAck struct {
	Instance services.Instance
	// Acked is the freeze state (Seq) the instance last acknowledged; 0
	// when it never acknowledged one.
	Acked int64
}

// FreezeStatus is the freeze in force and who acknowledged it.
type FreezeStatus struct {
	FreezeState
	// Acked are the instances (not deleted) that acknowledged this state
	// or a later one; Pending those that did not yet, missing and error
	// ones included: such an instance cannot acknowledge, so it is brought
	// back or deleted (tandem services delete ID).
	Acked   []FreezeAck
	Pending []FreezeAck
}

// Everywhere says whether every instance that is not deleted acknowledged
// the state in force: frozen (or thawed) everywhere.
func (s FreezeStatus) Everywhere() bool { return len(s.Pending) == 0 }

// FreezeStatus reads the freeze in force and, from the registry
// (WithRegistry), which instances acknowledged it. It only reads.
func (mg *Manager) FreezeStatus(ctx context.Context) (FreezeStatus, error) {
	st, err := ReadFreeze(ctx, mg.db)
	if err != nil {
		return FreezeStatus{}, fmt.Errorf("dualwrite: freeze status: %w", err)
	}
	out := FreezeStatus{FreezeState: st, Acked: []FreezeAck{}, Pending: []FreezeAck{}}
	if mg.src == nil {
		return out, nil
	}
	snap, err := mg.src.Snapshot(ctx)
	if err != nil {
		return out, fmt.Errorf("dualwrite: freeze status: %w", err)
	}
	return FreezeAcks(st, snap), nil
}

// FreezeAcks sorts a snapshot's instances (deleted ones left out) into
// those that acknowledged st and those that did not.
func FreezeAcks(st FreezeState, snap services.Snapshot) FreezeStatus {
	out := FreezeStatus{FreezeState: st, Acked: []FreezeAck{}, Pending: []FreezeAck{}}
	for _, in := range snap.Instances {
		if in.State == services.StateDeleted {
			continue
		}
		a := FreezeAck{Instance: in, Acked: in.Freeze}
		if in.Freeze >= st.Seq {
			out.Acked = append(out.Acked, a)
		} else {
			out.Pending = append(out.Pending, a)
		}
	}
	return out
}
