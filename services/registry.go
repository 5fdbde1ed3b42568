package services

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/schema"
)

// Change is the payload published on ChangedSubject.
//
// Event, Instance and At are the notice's first fields and keep their
// names and meaning. The instance's Release, State and Phases, as stored
// once the change committed, were added later so a watcher can follow an
// instance without reading the registry; they are omitted when empty (a
// finalize notice names no instance), so a reader that knows only the
// first three fields decodes every notice as before. Finalized is the
// release a finalize notice recorded. Revision and Record came last, for
// caches that apply notices as deltas (see Cache).
type Change struct {
	Event    string    `json:"event"` // register, state, apis, phases, freeze, delete, finalize, write-freeze
	Instance string    `json:"instance,omitempty"`
	At       time.Time `json:"at"` // just after the change committed
	// Release is the instance's release; 0 for a finalize notice.
	Release int64 `json:"release,omitempty"`
	// State is the instance's stored state after the change: up, draining
	// or error, or deleted for a delete notice (missing is never stored,
	// and a heartbeat ends it).
	State State `json:"state,omitempty"`
	// Phases is, per move, the phase the instance acts on after the
	// change (all of them, not only the one that changed).
	Phases map[string]string `json:"phases,omitempty"`
	// Finalized is the release a finalize notice recorded.
	Finalized int64 `json:"finalized,omitempty"`
	// Revision is the registry revision the change took (see
	// Registry.Revision): a cache at Revision-1 applies it as a delta.
	Revision int64 `json:"revision,omitempty"`
	// Record is the whole instance as the change left it (State deleted
	// for a delete or deregistration), for every event but finalize.
	Record *Instance `json:"record,omitempty"`
}

// changeOf is the notice of event for in as stored after the change, at
// the revision in took.
func changeOf(event string, in Instance) Change {
	rec := in
	return Change{Event: event, Instance: in.ID, Release: in.Release, State: in.State, Phases: in.Phases, Revision: in.Revision, Record: &rec}
}

// Reporter is what an instance needs to take part: the Registry itself for
// nodes with database credentials, a Remote for nodes without.
type Reporter interface {
	Register(ctx context.Context, in Instance, opts ...Option) error
	Heartbeat(ctx context.Context, id string, hb Heartbeat) error
	Deregister(ctx context.Context, id string) error
}

// Source reads the registry. A Cache keeps the instances a Snapshot
// returns: each call must return a snapshot nothing changes afterwards.
type Source interface {
	Snapshot(ctx context.Context) (Snapshot, error)
}

// DefaultMissingAfter is how old a heartbeat may be before its instance is
// shown as missing: MissingAfterFor the 10s heartbeat interval of
// rpcver.WithRegistry's default.
const DefaultMissingAfter = 30 * time.Second

// MissingAfterFor is the missing threshold for heartbeats every interval:
// three intervals, so one lost or late heartbeat never shows an instance
// missing. A fleet that heartbeats less often, to bound the database's
// write load (docs/benchmarks.md), gives every registry it
// (WithMissingAfter) and every tandem command (--missing-after).
func MissingAfterFor(interval time.Duration) time.Duration { return 3 * interval }

// Registry is the database-backed registry.
type Registry struct {
	db           *dialect.DB
	nc           *nats.Conn
	cluster      string // see ClusterTable
	missingAfter time.Duration
	log          *slog.Logger
	now          func() time.Time

	// mu guards the liveness session and the incarnations this process
	// registered through the registry (see incarnation.go).
	mu   sync.Mutex
	live *sqldialect.Session
	held map[string]int64
}

var (
	_ Reporter = (*Registry)(nil)
	_ Source   = (*Registry)(nil)
)

// New returns a registry on db. Its tables must exist (schema.Ensure with
// Tables()); New checks that they do and says how to create them otherwise.
func New(ctx context.Context, db *dialect.DB, opts ...Option) (*Registry, error) {
	r := &Registry{db: db, missingAfter: DefaultMissingAfter, log: slog.New(slog.DiscardHandler), now: time.Now, held: map[string]int64{}}
	if err := applyOptions("New", r, opts, func(o Option) func(*Registry) { return o.registry }); err != nil {
		return nil, err
	}
	// Constructors never create tables (see schema.Check): a missing or
	// older table is refused with the command that ensures it.
	if err := schema.Check(ctx, db, Tables()); err != nil {
		var ne *schema.NotEnsuredError
		if errors.As(err, &ne) {
			return nil, fmt.Errorf("services: %w: %w", ErrNoSchema, err)
		}
		return nil, fmt.Errorf("services: %w", err)
	}
	var err error
	if r.cluster, err = readCluster(ctx, db); err != nil {
		return nil, err
	}
	return r, nil
}

// MissingAfter returns the heartbeat age after which an instance is missing.
func (r *Registry) MissingAfter() time.Duration { return r.missingAfter }

type registerConfig struct {
	replace bool
	// liveness is the token a remote node holds (Serve sets it); empty
	// for a direct registration, which holds a database token itself.
	liveness string
	// probe is the connection Serve pings remote predecessors on.
	probe *nats.Conn
}

type row struct {
	ID             string       `db:"instance_id"`
	Service        string       `db:"service"`
	Host           string       `db:"host"`
	Release        int64        `db:"app_release"`
	APIs           string       `db:"apis"`
	State          string       `db:"state"`
	StartedAt      time.Time    `db:"started_at"`
	HeartbeatAt    time.Time    `db:"heartbeat_at"`
	StateChangedAt time.Time    `db:"state_changed_at"`
	DeletedAt      sql.NullTime `db:"deleted_at"`
	Metadata       string       `db:"metadata"`
	Phases         string       `db:"phases"`
	Incarnation    int64        `db:"incarnation"`
	PID            int64        `db:"pid"`
	Liveness       string       `db:"liveness"`
	Revision       int64        `db:"revision"`
	Freeze         int64        `db:"freeze_ack"`
}

const selectColumns = `instance_id, service, host, app_release, apis, state, started_at, heartbeat_at, state_changed_at, deleted_at, metadata, phases, incarnation, pid, liveness, revision, freeze_ack`

func (r *Registry) instance(w row) (Instance, error) {
	in := Instance{ID: w.ID, Service: w.Service, Host: w.Host, Release: w.Release, State: State(w.State),
		StartedAt: w.StartedAt.UTC(), HeartbeatAt: w.HeartbeatAt.UTC(), Incarnation: w.Incarnation, PID: int(w.PID), Revision: w.Revision, Freeze: w.Freeze}
	if err := unmarshalField(w.APIs, &in.APIs); err != nil {
		return in, fmt.Errorf("instance %s: apis: %w", w.ID, err)
	}
	if err := unmarshalField(w.Metadata, &in.Metadata); err != nil {
		return in, fmt.Errorf("instance %s: metadata: %w", w.ID, err)
	}
	if err := unmarshalField(w.Phases, &in.Phases); err != nil {
		return in, fmt.Errorf("instance %s: phases: %w", w.ID, err)
	}
	if (in.State == StateUp || in.State == StateDraining) && r.now().Sub(in.HeartbeatAt) > r.missingAfter {
		in.State = StateMissing
	}
	return in, nil
}

func unmarshalField(s string, v any) error {
	if s == "" || s == "null" {
		return nil
	}
	return json.Unmarshal([]byte(s), v)
}

func marshalField(v any) string {
	b, _ := json.Marshal(v) // maps of strings and slices of API always marshal
	return string(b)
}

// Register records an instance as up (or the state it gives) as a new
// incarnation of its id. It refuses an invalid instance, a release below
// the finalized floor, and an id whose current incarnation is provably
// alive (a *DuplicateError naming both processes); in every case nothing is
// written.
//
// A predecessor is proven dead when it deregistered or was deleted, when
// its heartbeat lapsed (MissingAfter), or when its liveness token is free:
// each incarnation registered directly holds a database token that ends
// with its process (see sqldialect.Session), one registered through a Remote
// answers on its own NATS subject while its connection lives. A dead
// predecessor is superseded at once, and its record (release, phases,
// registered and last-seen times) is kept in IncarnationsTable.
func (r *Registry) Register(ctx context.Context, in Instance, opts ...Option) error {
	var cfg registerConfig
	if err := applyOptions("Register", &cfg, opts, func(o Option) func(*registerConfig) { return o.register }); err != nil {
		return err
	}
	_, err := r.register(ctx, in, cfg)
	return err
}

// Heartbeat records that an instance is alive, with what it reports now.
// A deleted or unknown instance gets ErrNotFound: it must register again.
// When the heartbeat names an incarnation (hb.Incarnation, or the one this
// registry registered for id), a deleted or superseded one gets a
// *FencedError (ErrFenced): it must stop.
func (r *Registry) Heartbeat(ctx context.Context, id string, hb Heartbeat) error {
	inc := hb.Incarnation
	if inc == 0 {
		inc, _ = r.Incarnation(id)
	}
	return r.heartbeat(ctx, id, inc, hb)
}

func (r *Registry) heartbeat(ctx context.Context, id string, inc int64, hb Heartbeat) error {
	if hb.State != "" && hb.State != StateUp && hb.State != StateDraining && hb.State != StateError {
		return fmt.Errorf("services: heartbeat %s: %w", id, &ValidationError{Field: "state", Value: string(hb.State), Reason: "a heartbeat reports up, draining or error"})
	}
	if hb.APIs != nil {
		for i := range hb.APIs {
			if hb.APIs[i].Oldest.IsZero() {
				hb.APIs[i].Oldest = hb.APIs[i].Current
			}
		}
		if err := validateAPIs(hb.APIs); err != nil {
			return fmt.Errorf("services: heartbeat %s: %w", id, err)
		}
	}
	r.keepToken(ctx, id, inc)
	now := r.now().UTC()
	if done, err := r.quietHeartbeat(ctx, id, inc, hb, now); err != nil || done {
		if err != nil {
			return fmt.Errorf("services: heartbeat %s: %w", id, err)
		}
		return nil
	}
	var (
		event  string
		record Instance
	)
	err := r.tx(ctx, func(tx *sqlxTx) error {
		var old row
		err := tx.GetContext(ctx, &old, tx.Rebind(`SELECT `+selectColumns+` FROM `+InstancesTable+` WHERE instance_id = ?`), id)
		if errors.Is(err, sql.ErrNoRows) {
			return &notFound{id: id}
		}
		if err != nil {
			return err
		}
		prev, err := r.instance(old)
		if err != nil {
			return err
		}
		if err := fencedBy(prev, inc); err != nil {
			return err
		}
		state, apis, phases, freeze := old.State, old.APIs, old.Phases, old.Freeze
		changedAt := old.StateChangedAt
		if hb.State != "" && string(hb.State) != old.State {
			state, changedAt, event = string(hb.State), now, "state"
		}
		if prev.State == StateMissing {
			changedAt, event = now, "state" // back from missing
		}
		if hb.APIs != nil {
			if s := marshalField(sortedAPIs(hb.APIs)); s != old.APIs {
				apis, event = s, "apis"
			}
		}
		if hb.Phases != nil {
			if p := marshalField(hb.Phases); p != old.Phases {
				phases = p
				if event == "" {
					event = "phases" // an acknowledgement can open a move's gate
				}
			}
		}
		if hb.Freeze != 0 && hb.Freeze != old.Freeze {
			freeze = hb.Freeze
			if event == "" {
				event = "freeze" // an acknowledgement a freeze or thaw waits for
			}
		}
		// Only a change takes a revision: a heartbeat that changes nothing
		// but its time is no news to a cache (missing is derived).
		rev := old.Revision
		if event != "" {
			if rev, err = nextRevision(ctx, tx); err != nil {
				return err
			}
		}
		// The guards keep a heartbeat racing an operator's delete, or a
		// successor's register, from bringing the row back to life.
		res, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE `+InstancesTable+` SET heartbeat_at = ?, state = ?, state_changed_at = ?, apis = ?, phases = ?, freeze_ack = ?, revision = ? WHERE instance_id = ? AND state <> ? AND incarnation = ?`),
			now, state, changedAt, apis, phases, freeze, rev, id, string(StateDeleted), old.Incarnation)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			// Gone, or (MySQL without clientFoundRows) unchanged: a
			// heartbeat at the very time of the last one.
			var alive int
			if err := tx.GetContext(ctx, &alive, tx.Rebind(`SELECT COUNT(*) FROM `+InstancesTable+` WHERE instance_id = ? AND state <> ? AND incarnation = ?`), id, string(StateDeleted), old.Incarnation); err != nil {
				return err
			}
			if alive == 0 {
				return &FencedError{ID: id, Incarnation: old.Incarnation, Reason: FencedDeleted}
			}
		}
		if event != "" {
			old.HeartbeatAt, old.State, old.StateChangedAt, old.APIs, old.Phases, old.Freeze, old.Revision = now, state, changedAt, apis, phases, freeze, rev
			record, err = r.instance(old)
		}
		return err
	})
	if err != nil {
		if errors.Is(err, ErrFenced) {
			r.forget(ctx, id, inc)
		}
		return fmt.Errorf("services: heartbeat %s: %w", id, err)
	}
	if event != "" {
		r.announce(changeOf(event, record))
	}
	return nil
}

// quietHeartbeat records a heartbeat that changes nothing but its time in
// one statement, with no transaction: the row must hold exactly what the
// heartbeat reports, belong to incarnation inc (when known), not be
// deleted, and not be missing (coming back is a change). It reports false
// when the row did not match, and the full heartbeat then decides what
// changed, or why it is refused. Most heartbeats of a fleet take this
// path: one write each, and no revision.
func (r *Registry) quietHeartbeat(ctx context.Context, id string, inc int64, hb Heartbeat, now time.Time) (bool, error) {
	q := `UPDATE ` + InstancesTable + ` SET heartbeat_at = ? WHERE instance_id = ? AND state IN (?, ?, ?) AND heartbeat_at >= ?`
	args := []any{now, id, string(StateUp), string(StateDraining), string(StateError), now.Add(-r.missingAfter)}
	if inc != 0 {
		q += ` AND incarnation = ?`
		args = append(args, inc)
	}
	if hb.State != "" {
		q += ` AND state = ?`
		args = append(args, string(hb.State))
	}
	if hb.APIs != nil {
		q += ` AND apis = ?`
		args = append(args, marshalField(sortedAPIs(hb.APIs)))
	}
	if hb.Phases != nil {
		q += ` AND phases = ?`
		args = append(args, marshalField(hb.Phases))
	}
	if hb.Freeze != 0 {
		q += ` AND freeze_ack = ?`
		args = append(args, hb.Freeze)
	}
	res, err := r.db.ExecContext(ctx, r.db.Rebind(q), args...)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return err == nil && n == 1, nil
}

func sortedAPIs(apis []API) []API {
	in := Instance{APIs: append([]API(nil), apis...)}
	in.normalizeAPIsOnly()
	return in.APIs
}

// SetState sets an instance's stored state: up, draining or error (missing
// is derived; use Delete for deleted).
func (r *Registry) SetState(ctx context.Context, id string, st State) error {
	if st != StateUp && st != StateDraining && st != StateError {
		return fmt.Errorf("services: set state of %s: %w", id, &ValidationError{Field: "state", Value: string(st), Reason: "can set up, draining or error; missing is derived from heartbeats and deleted is set by delete"})
	}
	return r.Heartbeat(ctx, id, Heartbeat{State: st})
}

// Deregister is an instance leaving the cluster for good: its row is marked
// deleted and no longer holds the floor or a cap. When this registry
// registered id, only that incarnation is deregistered: a superseded one
// gets a *FencedError and leaves its successor alone.
func (r *Registry) Deregister(ctx context.Context, id string) error {
	inc, _ := r.Incarnation(id)
	return r.deregister(ctx, id, inc)
}

func (r *Registry) deregister(ctx context.Context, id string, inc int64) error {
	err := r.markDeleted(ctx, id, inc)
	if err == nil || errors.Is(err, ErrFenced) {
		r.forget(ctx, id, inc)
	}
	if err != nil {
		return fmt.Errorf("services: deregister %s: %w", id, err)
	}
	return nil
}

// Delete is the operator declaring that an instance will not return (a
// missing or error node); it stops holding the floor and caps. A process
// still running as that instance is fenced: its next heartbeat (or the
// change notice, on NATS) tells it to stop serving.
func (r *Registry) Delete(ctx context.Context, id string) error {
	if err := r.markDeleted(ctx, id, 0); err != nil {
		return fmt.Errorf("services: delete %s: %w", id, err)
	}
	return nil
}

func (r *Registry) markDeleted(ctx context.Context, id string, inc int64) error {
	if err := validID("instance id", id); err != nil {
		return err
	}
	now := r.now().UTC()
	var record Instance
	err := r.tx(ctx, func(tx *sqlxTx) error {
		rev, err := nextRevision(ctx, tx)
		if err != nil {
			return err
		}
		q := `UPDATE ` + InstancesTable + ` SET state = ?, deleted_at = ?, state_changed_at = ?, revision = ? WHERE instance_id = ? AND state <> ?`
		args := []any{string(StateDeleted), now, now, rev, id, string(StateDeleted)}
		if inc != 0 {
			q += ` AND incarnation = ?`
			args = append(args, inc)
		}
		res, err := tx.ExecContext(ctx, tx.Rebind(q), args...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return &notFound{id: id} // rolls the revision back too
		}
		var w row
		if err := tx.GetContext(ctx, &w, tx.Rebind(`SELECT `+selectColumns+` FROM `+InstancesTable+` WHERE instance_id = ?`), id); err != nil {
			return err
		}
		record, err = r.instance(w)
		return err
	})
	if errors.Is(err, ErrNotFound) {
		if inc != 0 {
			if cur, gerr := r.Get(ctx, id); gerr == nil {
				if ferr := fencedBy(cur, inc); ferr != nil {
					return ferr
				}
			}
		}
		return err
	}
	if err != nil {
		return err
	}
	r.log.Info("instance deleted", "id", id)
	r.announce(changeOf("delete", record))
	return nil
}

// List returns instances ordered by service and id; deleted ones only when
// includeDeleted is set.
func (r *Registry) List(ctx context.Context, includeDeleted bool) ([]Instance, error) {
	q := `SELECT ` + selectColumns + ` FROM ` + InstancesTable
	var args []any
	if !includeDeleted {
		q += ` WHERE state <> ?`
		args = append(args, string(StateDeleted))
	}
	q += ` ORDER BY service, instance_id`
	var rows []row
	if err := r.db.SelectContext(ctx, &rows, r.db.Rebind(q), args...); err != nil {
		return nil, fmt.Errorf("services: list: %w", err)
	}
	out := make([]Instance, 0, len(rows))
	for _, w := range rows {
		in, err := r.instance(w)
		if err != nil {
			return nil, fmt.Errorf("services: list: %w", err)
		}
		out = append(out, in)
	}
	return out, nil
}

// Get returns one instance, deleted or not.
func (r *Registry) Get(ctx context.Context, id string) (Instance, error) {
	var w row
	err := r.db.GetContext(ctx, &w, r.db.Rebind(`SELECT `+selectColumns+` FROM `+InstancesTable+` WHERE instance_id = ?`), id)
	if errors.Is(err, sql.ErrNoRows) {
		return Instance{}, fmt.Errorf("services: get: %w", &notFound{id: id})
	}
	if err != nil {
		return Instance{}, fmt.Errorf("services: get %s: %w", id, err)
	}
	return r.instance(w)
}

// Snapshot reads every instance that is not deleted and the finalized
// release. Its Revision is read first: every change up to it is in the
// snapshot (some later ones may be too, each with its own revision).
func (r *Registry) Snapshot(ctx context.Context) (Snapshot, error) {
	rev, err := readRevision(ctx, r.db)
	if err != nil {
		return Snapshot{}, fmt.Errorf("services: snapshot: %w", err)
	}
	ins, err := r.List(ctx, false)
	if err != nil {
		return Snapshot{}, err
	}
	fin, _, err := finalized(ctx, r.db)
	if err != nil {
		return Snapshot{}, fmt.Errorf("services: snapshot: %w", err)
	}
	return Snapshot{Cluster: r.cluster, Instances: ins, Finalized: fin, Revision: rev, TakenAt: r.now().UTC()}, nil
}

// Floor reads the registry and returns the floor with who holds it. The
// database computes the minimum, so only the holders' rows are read.
func (r *Registry) Floor(ctx context.Context) (Floor, error) {
	var min sql.NullInt64
	if err := r.db.GetContext(ctx, &min, r.db.Rebind(`SELECT MIN(app_release) FROM `+InstancesTable+` WHERE state <> ?`), string(StateDeleted)); err != nil {
		return Floor{}, fmt.Errorf("services: floor: %w", err)
	}
	if !min.Valid {
		return Floor{}, nil
	}
	var rows []row
	if err := r.db.SelectContext(ctx, &rows, r.db.Rebind(`SELECT `+selectColumns+` FROM `+InstancesTable+` WHERE state <> ? AND app_release = ? ORDER BY instance_id`), string(StateDeleted), min.Int64); err != nil {
		return Floor{}, fmt.Errorf("services: floor: %w", err)
	}
	s := Snapshot{}
	for _, w := range rows {
		in, err := r.instance(w)
		if err != nil {
			return Floor{}, fmt.Errorf("services: floor: %w", err)
		}
		s.Instances = append(s.Instances, in)
	}
	return s.Floor(), nil
}

// Caps reads the registry and returns every API's cap with who holds it.
func (r *Registry) Caps(ctx context.Context) (map[string]Cap, error) {
	s, err := r.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	return s.Caps(), nil
}

// Finalize forbids instances older than release to register from now on.
// It refuses while a live instance is older than release, naming them.
func (r *Registry) Finalize(ctx context.Context, release int64, reason string) error {
	if release <= 0 {
		return fmt.Errorf("services: finalize: %w", &ValidationError{Field: "release", Value: fmt.Sprint(release), Reason: "must be a positive integer"})
	}
	var rev int64
	err := r.serialized(ctx, func(tx dialect.Querier) error {
		var olds []string
		if err := tx.SelectContext(ctx, &olds, tx.Rebind(`SELECT instance_id FROM `+InstancesTable+` WHERE state <> ? AND app_release < ? ORDER BY instance_id`), string(StateDeleted), release); err != nil {
			return err
		}
		if len(olds) > 0 {
			return &ValidationError{Field: "release", Value: fmt.Sprint(release),
				Reason: fmt.Sprintf("instances %v still run an older release: upgrade them, or delete the ones that will not return", olds)}
		}
		fin, _, err := finalized(ctx, tx)
		if err != nil {
			return err
		}
		if release <= fin {
			return nil // already finalized at or above: idempotent
		}
		if rev, err = nextRevision(ctx, tx); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, tx.Rebind(`INSERT INTO `+GatesTable+` (app_release, reason, finalized_at) VALUES (?, ?, ?)`), release, reason, r.now().UTC())
		return err
	})
	if err != nil {
		return fmt.Errorf("services: finalize %d: %w", release, err)
	}
	if rev != 0 {
		r.announce(Change{Event: "finalize", Revision: rev, Finalized: release})
	}
	return nil
}

// Finalized returns the highest finalized release (0 when none).
func (r *Registry) Finalized(ctx context.Context) (int64, error) {
	fin, _, err := finalized(ctx, r.db)
	if err != nil {
		return 0, fmt.Errorf("services: finalized: %w", err)
	}
	return fin, nil
}

func finalized(ctx context.Context, q dialect.Querier) (int64, string, error) {
	var g struct {
		Release int64  `db:"app_release"`
		Reason  string `db:"reason"`
	}
	err := q.GetContext(ctx, &g, `SELECT app_release, reason FROM `+GatesTable+` ORDER BY app_release DESC LIMIT 1`)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", nil
	}
	return g.Release, g.Reason, err
}

// EventWriteFreeze is the event of a notice that a write freeze or thaw
// was recorded in the ledger (dualwrite's Manager.Freeze and Thaw, tandem
// freeze and thaw): the registry itself did not change, so the notice
// carries no revision and no record. A tracker given the notices
// (dualwrite.WithNotices) refreshes at once on it instead of at its next
// interval; a cache leaves it (one of an older release reads the registry
// again, as for any notice it cannot apply).
const EventWriteFreeze = "write-freeze"

// AnnounceWriteFreeze publishes an EventWriteFreeze notice on
// ChangedSubject when the registry has NATS (WithNATS), and does nothing
// otherwise. A lost notice only delays the trackers to their next refresh.
func (r *Registry) AnnounceWriteFreeze() {
	r.announce(Change{Event: EventWriteFreeze})
}

func (r *Registry) announce(c Change) {
	if r.nc == nil {
		return
	}
	c.At = r.now().UTC()
	b, _ := json.Marshal(c)
	if err := r.nc.Publish(ChangedSubject(r.cluster), b); err != nil {
		// Caches still expire on their TTL; a lost notice only delays them.
		r.log.Warn("change notification not published", "err", err)
	}
}

type notFound struct{ id string }

func (e *notFound) Error() string {
	return fmt.Sprintf("no live instance %q: it was deleted or never registered", e.id)
}
func (e *notFound) Unwrap() error { return ErrNotFound }
