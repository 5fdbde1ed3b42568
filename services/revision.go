package services

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/schema"
)

// Every change of the registry (a registration, a state, API or phase
// change, a deregistration or delete, a finalize) takes the next revision
// in its own transaction: the one row of RevisionTable is incremented and
// the changed instance row records it in its revision column. A heartbeat
// that changes nothing but its time takes none.
//
// Changes that take a revision commit in revision order: the increment
// locks the counter row until its transaction commits, so the change that
// took r+1 cannot commit before the one that took r. Whoever reads the
// counter as r therefore sees every change up to r in what it reads next.
// That is what lets a Cache apply the notices that follow its revision,
// and catch up after a gap by reading only the rows whose revision is
// above its own (Changes) instead of the whole table.

// revisionKey names the counter's row.
const revisionKey = "registry"

func revisionTable() schema.Table {
	return schema.Table{Name: RevisionTable, Migrations: []schema.Migration{{
		Version: 1, Description: "create the registry revision counter",
		Steps: []schema.Step{
			schema.CreateTable{Name: RevisionTable, PrimaryKey: []string{"counter"}, Columns: []schema.Column{
				{Name: "counter", Type: schema.Key},
				{Name: "revision", Type: schema.BigInt},
			}},
			revisionRow{},
		},
	}}}
}

// revisionRow is the migration step that inserts the counter's row at 0
// while the table is empty; a run interrupted before it is healed by the
// next.
type revisionRow struct{}

func (revisionRow) SQL(engine dialect.Name) (string, error) {
	d, derr := sqldialect.For(engine)
	if derr != nil {
		return "", derr
	}
	names := make([]string, 3)
	for i, n := range []string{RevisionTable, "counter", "revision"} {
		q, err := d.Quote(n)
		if err != nil {
			return "", err
		}
		names[i] = q
	}
	// revisionKey is a constant of letters: a literal that needs no escaping.
	return "INSERT INTO " + names[0] + " (" + names[1] + ", " + names[2] + ") VALUES ('" + revisionKey + "', 0)", nil
}

func (revisionRow) Done(ctx context.Context, engine dialect.Name, q dialect.Querier) (bool, error) {
	d, derr := sqldialect.For(engine)
	if derr != nil {
		return false, derr
	}
	ok, err := d.TableExists(ctx, q, RevisionTable)
	if err != nil || !ok {
		return false, err
	}
	var n int
	if err := q.GetContext(ctx, &n, `SELECT COUNT(*) FROM `+RevisionTable); err != nil {
		return false, err
	}
	return n > 0, nil
}

// errNoRevisionRow is returned when the counter's row was deleted.
var errNoRevisionRow = fmt.Errorf("%w: the row of %s is missing; run `tandem schema ensure` to restore it", ErrNoSchema, RevisionTable)

// nextRevision takes the next revision inside tx. Call it before writing
// the changed row: every changing transaction locks the counter first and
// the row second, so two of them never wait on each other in a cycle.
func nextRevision(ctx context.Context, tx dialect.Querier) (int64, error) {
	res, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE `+RevisionTable+` SET revision = revision + 1 WHERE counter = ?`), revisionKey)
	if err != nil {
		return 0, fmt.Errorf("take a revision: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return 0, errNoRevisionRow
	}
	return readRevision(ctx, tx)
}

func readRevision(ctx context.Context, q dialect.Querier) (int64, error) {
	var rev int64
	err := q.GetContext(ctx, &rev, q.Rebind(`SELECT revision FROM `+RevisionTable+` WHERE counter = ?`), revisionKey)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return 0, errNoRevisionRow
		}
		return 0, fmt.Errorf("read the revision: %w", err)
	}
	return rev, nil
}

// Revision returns the registry's current revision: the number of changes
// it has recorded.
func (r *Registry) Revision(ctx context.Context) (int64, error) {
	rev, err := readRevision(ctx, r.db)
	if err != nil {
		return 0, fmt.Errorf("services: revision: %w", err)
	}
	return rev, nil
}

// Delta is what changed in the registry after a revision: enough for a
// cache holding the registry as of Since to hold it as of Revision.
type Delta struct {
	Cluster string `json:"cluster"`
	// Since is the revision asked for; Revision is the registry's
	// revision when the delta was read. Changed may hold changes above
	// Revision too (they committed while it was read); each carries its
	// own Instance.Revision, so applying a row twice is harmless.
	Since    int64 `json:"since"`
	Revision int64 `json:"revision"`
	// Changed holds every instance whose last change is above Since,
	// deleted ones included (State deleted), with missing derived.
	Changed []Instance `json:"changed"`
	// Lapsed lists the instances stored up or draining whose heartbeat is
	// older than MissingAfter: they are missing now, although no change
	// was recorded (a heartbeat that stops records nothing).
	Lapsed    []string  `json:"lapsed"`
	Finalized int64     `json:"finalized"`
	TakenAt   time.Time `json:"taken_at"`
}

// ChangeSource is a Source that can also say what changed after a
// revision; Registry and Remote implement it. A Cache on one catches up
// after a missed notice, and on its TTL, by reading only the changed rows.
type ChangeSource interface {
	Source
	Changes(ctx context.Context, since int64) (Delta, error)
}

var (
	_ ChangeSource = (*Registry)(nil)
	_ ChangeSource = (*Remote)(nil)
)

// Changes returns every instance changed after revision since, and the
// instances whose heartbeat has lapsed. The revision is read first, so
// every change up to it is in what follows.
func (r *Registry) Changes(ctx context.Context, since int64) (Delta, error) {
	if since < 0 {
		return Delta{}, fmt.Errorf("services: changes: %w", &ValidationError{Field: "since", Value: fmt.Sprint(since), Reason: "a revision is 0 or more"})
	}
	rev, err := readRevision(ctx, r.db)
	if err != nil {
		return Delta{}, fmt.Errorf("services: changes: %w", err)
	}
	d := Delta{Cluster: r.cluster, Since: since, Revision: rev, Changed: []Instance{}, Lapsed: []string{}}
	if since >= rev {
		// Nothing changed: no instance row to read.
	} else {
		var rows []row
		if err := r.db.SelectContext(ctx, &rows, r.db.Rebind(`SELECT `+selectColumns+` FROM `+InstancesTable+` WHERE revision > ? ORDER BY revision`), since); err != nil {
			return Delta{}, fmt.Errorf("services: changes: %w", err)
		}
		for _, w := range rows {
			in, err := r.instance(w)
			if err != nil {
				return Delta{}, fmt.Errorf("services: changes: %w", err)
			}
			d.Changed = append(d.Changed, in)
		}
	}
	cutoff := r.now().UTC().Add(-r.missingAfter)
	if err := r.db.SelectContext(ctx, &d.Lapsed, r.db.Rebind(`SELECT instance_id FROM `+InstancesTable+` WHERE state IN (?, ?) AND heartbeat_at < ? ORDER BY instance_id`),
		string(StateUp), string(StateDraining), cutoff); err != nil {
		return Delta{}, fmt.Errorf("services: changes: lapsed heartbeats: %w", err)
	}
	if d.Finalized, _, err = finalized(ctx, r.db); err != nil {
		return Delta{}, fmt.Errorf("services: changes: %w", err)
	}
	d.TakenAt = r.now().UTC()
	return d, nil
}
