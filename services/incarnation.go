package services

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/sqldialect"
)

// An instance id names a role (a pod, a host slot); each process start that
// registers it is a new incarnation, numbered 1, 2, 3, ... per id. The row in
// InstancesTable is the current incarnation; the ones it superseded are kept
// in IncarnationsTable.
//
// How a predecessor is proven dead, so that its successor registers at once
// instead of waiting for its heartbeat to lapse, is recorded per row in
// liveness:
//
//	"lock"        a database token held by the registering process itself
//	              (sqldialect.Session: a PostgreSQL advisory lock or a MySQL
//	              GET_LOCK on a connection of its own, an flock beside a
//	              SQLite file); free means the process is gone.
//	"nats:<subj>" a Remote's subscription on <subj>; "no responders" means
//	              its connection, and so its process, is gone.
//	""            nothing to check (a SQLite database in memory, or a row
//	              registered before incarnations existed): only a
//	              deregistration, a delete or a lapsed heartbeat count.
const livenessLock = "lock"

const livenessNATS = "nats:"

// probeTimeout bounds the ping of a remote predecessor. A holder that
// does not answer in time (but is subscribed) counts as alive.
const probeTimeout = time.Second

func tokenKey(id string, inc int64) string { return fmt.Sprintf("incarnation:%s:%d", id, inc) }

// Incarnation returns the incarnation this registry last registered for
// id, if it registered one. It stays known after a deregistration or a
// fence, so that heartbeats and deregistrations of id from this process
// remain guarded.
func (r *Registry) Incarnation(id string) (int64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	inc, ok := r.held[id]
	return inc, ok
}

// Close releases the liveness tokens of every incarnation this registry
// registered and has not deregistered: to anyone registering their ids
// they now look as dead as after a crash. It does not close the database.
func (r *Registry) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.live == nil {
		return nil
	}
	err := r.live.Close()
	r.live = nil
	return err
}

// tokenGrace is how long a refused registration keeps checking a
// predecessor's token: a killed process's database session or NATS
// connection ends a moment after the process, and its successor often
// starts within that moment.
const tokenGrace = 300 * time.Millisecond

func (r *Registry) register(ctx context.Context, in Instance, cfg registerConfig) (Instance, error) {
	for deadline := time.Now().Add(tokenGrace); ; {
		out, err := r.registerOnce(ctx, in, cfg)
		if !errors.Is(err, ErrDuplicateInstance) || time.Now().After(deadline) {
			return out, err
		}
		select {
		case <-ctx.Done():
			return out, err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (r *Registry) registerOnce(ctx context.Context, in Instance, cfg registerConfig) (Instance, error) {
	if err := in.normalize(); err != nil {
		return in, fmt.Errorf("services: register: %w", err)
	}
	direct := cfg.liveness == ""
	if direct && in.PID == 0 {
		in.PID = os.Getpid()
	}
	now := r.now().UTC()
	in.StartedAt, in.HeartbeatAt = now, now
	var (
		key      string // the token taken for the new incarnation
		replaced int64  // an incarnation of this registry that was superseded
	)
	err := r.serialized(ctx, func(tx dialect.Querier) error {
		fin, reason, err := finalized(ctx, tx)
		if err != nil {
			return err
		}
		if in.Release < fin {
			return &BelowFinalizedError{ID: in.ID, Release: in.Release, Finalized: fin, Reason: reason}
		}
		var old row
		err = tx.GetContext(ctx, &old, tx.Rebind(`SELECT `+selectColumns+` FROM `+InstancesTable+` WHERE instance_id = ?`), in.ID)
		found := err == nil
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		in.Incarnation = 1
		if found {
			prev, err := r.instance(old)
			if err != nil {
				return err
			}
			ended, err := r.predecessorGone(ctx, tx, prev, old.Liveness, cfg)
			if err != nil {
				return err
			}
			if ended == "" {
				return &DuplicateError{ID: in.ID, Holder: claimOf(prev), Claimant: Claim{Host: in.Host, PID: in.PID, Since: now}}
			}
			if err := r.keepHistory(ctx, tx, old, prev, ended, now); err != nil {
				return err
			}
			in.Incarnation = old.Incarnation + 1
			if mine, ok := r.Incarnation(in.ID); ok && mine == old.Incarnation {
				replaced = mine
			}
			r.log.Info("instance superseded", "id", in.ID, "incarnation", old.Incarnation, "by", in.Incarnation, "why", ended)
		}
		// The revision before the row: see nextRevision.
		if in.Revision, err = nextRevision(ctx, tx); err != nil {
			return err
		}
		liveness := cfg.liveness
		if direct {
			key = tokenKey(in.ID, in.Incarnation)
			switch err := r.hold(ctx, key); {
			case err == nil:
				liveness = livenessLock
			case errors.Is(err, sqldialect.ErrNoLiveness):
				key = ""
			default:
				return err
			}
		}
		if !found {
			_, err = tx.ExecContext(ctx, tx.Rebind(`INSERT INTO `+InstancesTable+` (`+selectColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?)`),
				in.ID, in.Service, in.Host, in.Release, marshalField(in.APIs), string(in.State), now, now, now, marshalField(in.Metadata), marshalField(in.Phases),
				in.Incarnation, in.PID, liveness, in.Revision, in.Freeze)
			if sqldialect.Of(r.db).IsUniqueViolation(err) {
				return &DuplicateError{ID: in.ID, Holder: Claim{Host: "(registering concurrently)"}, Claimant: Claim{Host: in.Host, PID: in.PID, Since: now}}
			}
			return err
		}
		_, err = tx.ExecContext(ctx, tx.Rebind(`UPDATE `+InstancesTable+` SET service = ?, host = ?, app_release = ?, apis = ?, state = ?, started_at = ?, heartbeat_at = ?, state_changed_at = ?, deleted_at = NULL, metadata = ?, phases = ?, incarnation = ?, pid = ?, liveness = ?, revision = ?, freeze_ack = ? WHERE instance_id = ?`),
			in.Service, in.Host, in.Release, marshalField(in.APIs), string(in.State), now, now, now, marshalField(in.Metadata), marshalField(in.Phases),
			in.Incarnation, in.PID, liveness, in.Revision, in.Freeze, in.ID)
		return err
	})
	if err != nil {
		if key != "" {
			r.release(context.WithoutCancel(ctx), key)
		}
		return in, fmt.Errorf("services: register %s: %w", in.ID, err)
	}
	if replaced != 0 {
		r.release(context.WithoutCancel(ctx), tokenKey(in.ID, replaced))
	}
	if direct {
		r.mu.Lock()
		r.held[in.ID] = in.Incarnation
		r.mu.Unlock()
	}
	r.log.Info("instance registered", "id", in.ID, "service", in.Service, "release", in.Release, "incarnation", in.Incarnation)
	r.announce(changeOf("register", in))
	return in, nil
}

// predecessorGone says why the id's current incarnation no longer holds
// it, or "" when it may still be alive.
func (r *Registry) predecessorGone(ctx context.Context, tx dialect.Querier, prev Instance, liveness string, cfg registerConfig) (string, error) {
	switch prev.State {
	case StateDeleted:
		return "deleted or deregistered", nil
	case StateMissing:
		return fmt.Sprintf("heartbeat lapsed (last %s ago)", r.now().Sub(prev.HeartbeatAt).Round(time.Second)), nil
	}
	switch {
	case liveness == livenessLock:
		held, err := sqldialect.TokenHeld(ctx, r.db, tx, tokenKey(prev.ID, prev.Incarnation))
		if err != nil && !errors.Is(err, sqldialect.ErrNoLiveness) {
			return "", fmt.Errorf("check the predecessor's liveness token: %w", err)
		}
		if err == nil && !held {
			return "its process ended (its liveness lock was free)", nil
		}
	case strings.HasPrefix(liveness, livenessNATS):
		nc := cfg.probe
		if nc == nil {
			nc = r.nc
		}
		if nc != nil && !answers(ctx, nc, strings.TrimPrefix(liveness, livenessNATS)) {
			return "its process ended (nothing answers on its NATS subject)", nil
		}
	}
	if cfg.replace {
		return "replaced while it looked alive (Replace)", nil
	}
	return "", nil
}

// answers pings a remote incarnation's own subject. Only "no responders"
// proves it gone: a timeout may be a slow network, so it counts as alive.
func answers(ctx context.Context, nc *nats.Conn, subject string) bool {
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	_, err := nc.RequestWithContext(pctx, subject, nil)
	return !errors.Is(err, nats.ErrNoResponders)
}

func (r *Registry) keepHistory(ctx context.Context, tx dialect.Querier, old row, prev Instance, ended string, now time.Time) error {
	state := old.State
	if prev.State == StateMissing {
		state = string(StateMissing)
	}
	_, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO `+IncarnationsTable+` (instance_id, incarnation, service, host, pid, app_release, apis, state, started_at, heartbeat_at, ended_at, ended, metadata, phases) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		old.ID, old.Incarnation, old.Service, old.Host, old.PID, old.Release, old.APIs, state, old.StartedAt, old.HeartbeatAt, now, ended, old.Metadata, old.Phases)
	if sqldialect.Of(r.db).IsUniqueViolation(err) {
		// A row from before incarnations were numbered (0) superseded
		// twice; the first record stays.
		return nil
	}
	return err
}

// fencedBy returns a *FencedError when incarnation inc no longer holds the
// row: the row is deleted, or a newer incarnation holds it. inc 0 checks
// only for deletion.
func fencedBy(cur Instance, inc int64) error {
	if inc != 0 && cur.Incarnation != inc {
		return &FencedError{ID: cur.ID, Incarnation: inc, Reason: FencedSuperseded, By: claimOf(cur)}
	}
	if cur.State == StateDeleted {
		return &FencedError{ID: cur.ID, Incarnation: cur.Incarnation, Reason: FencedDeleted}
	}
	return nil
}

// PastIncarnation is an incarnation a newer process of its id superseded,
// as it last stood.
type PastIncarnation struct {
	Instance
	// EndedAt is when its successor registered; Ended says how the
	// registry knew it was gone.
	EndedAt time.Time `json:"ended_at"`
	Ended   string    `json:"ended"`
}

// PastIncarnations lists every superseded incarnation, oldest first. Their
// Instance.State is StateDeleted, with the state they ended in in Ended's
// record: none of them counts for the floor or a cap, but each may have
// acted on a phase (Phases) between StartedAt and HeartbeatAt.
func (r *Registry) PastIncarnations(ctx context.Context) ([]PastIncarnation, error) {
	var rows []struct {
		row
		EndedAt time.Time `db:"ended_at"`
		Ended   string    `db:"ended"`
	}
	err := r.db.SelectContext(ctx, &rows, `SELECT instance_id, incarnation, service, host, pid, app_release, apis, state, started_at, heartbeat_at, ended_at, ended, metadata, phases FROM `+IncarnationsTable+` ORDER BY ended_at, instance_id, incarnation`)
	if err != nil {
		return nil, fmt.Errorf("services: past incarnations: %w", err)
	}
	out := make([]PastIncarnation, 0, len(rows))
	for _, w := range rows {
		in, err := r.instance(w.row)
		if err != nil {
			return nil, fmt.Errorf("services: past incarnations: %w", err)
		}
		in.State = StateDeleted
		out = append(out, PastIncarnation{Instance: in, EndedAt: w.EndedAt.UTC(), Ended: w.Ended + " (was " + w.State + ")"})
	}
	return out, nil
}

// hold takes a liveness token for a new incarnation of this process.
func (r *Registry) hold(ctx context.Context, key string) error {
	r.mu.Lock()
	if r.live == nil {
		s, err := sqldialect.NewSession(r.db)
		if err != nil {
			r.mu.Unlock()
			return err
		}
		r.live = s
	}
	live := r.live
	r.mu.Unlock()
	return live.Hold(ctx, key)
}

func (r *Registry) release(ctx context.Context, key string) {
	r.mu.Lock()
	live := r.live
	r.mu.Unlock()
	if live == nil {
		return
	}
	if err := live.Release(ctx, key); err != nil {
		// The token ends with the session anyway; a stale one only makes
		// a successor wait for the heartbeat to lapse.
		r.log.Warn("liveness token not released", "key", key, "err", err)
	}
}

// forget releases the liveness token of incarnation inc of id, once it
// deregistered or was fenced. The registry still remembers inc as the one
// it registered, so a later Heartbeat or Deregister of id from this process
// stays guarded and never touches a successor's row.
func (r *Registry) forget(ctx context.Context, id string, inc int64) {
	r.mu.Lock()
	mine := r.held[id] == inc && inc != 0
	r.mu.Unlock()
	if mine {
		r.release(context.WithoutCancel(ctx), tokenKey(id, inc))
	}
}

// keepToken retakes this process's liveness tokens when the database lost
// its session (a restart of the server), before the heartbeat reports.
func (r *Registry) keepToken(ctx context.Context, id string, inc int64) {
	r.mu.Lock()
	live, mine := r.live, inc != 0 && r.held[id] == inc
	r.mu.Unlock()
	if live == nil || !mine {
		return
	}
	if err := live.Keep(ctx); err != nil {
		r.log.Warn("liveness token lost: a successor may supersede this instance", "id", id, "err", err)
	}
}
