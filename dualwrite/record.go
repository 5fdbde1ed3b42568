package dualwrite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/move"
)

const definitionCols = `move, version, digest, canonical, recorded_at, app_release, change_note`

type definitionRow struct {
	Move       string         `db:"move"`
	Version    int64          `db:"version"`
	Digest     string         `db:"digest"`
	Canonical  string         `db:"canonical"`
	RecordedAt time.Time      `db:"recorded_at"`
	Release    int64          `db:"app_release"`
	Change     sql.NullString `db:"change_note"`
}

func (r definitionRow) def() Definition {
	return Definition{Move: r.Move, Version: r.Version, Digest: r.Digest, Canonical: r.Canonical,
		RecordedAt: r.RecordedAt.UTC(), Release: r.Release, Change: r.Change.String}
}

// definitionsReady reports whether the definitions table exists; a read
// on a database tandem never set up finds no definition and writes nothing.
func definitionsReady(ctx context.Context, q dialect.Querier, d sqldialect.Dialect) (bool, error) {
	return d.TableExists(ctx, q, DefinitionsTable)
}

// readDefinition returns a move's latest recorded definition.
func readDefinition(ctx context.Context, q dialect.Querier, name string) (Definition, bool, error) {
	var r definitionRow
	err := q.GetContext(ctx, &r, q.Rebind(`SELECT `+definitionCols+` FROM `+DefinitionsTable+` WHERE move = ? ORDER BY version DESC LIMIT 1`), name)
	if errors.Is(err, sql.ErrNoRows) {
		return Definition{}, false, nil
	}
	if err != nil {
		return Definition{}, false, fmt.Errorf("read definition of %s: %w", name, err)
	}
	return r.def(), true, nil
}

// readDefinitions returns every move's latest definition, in the order the
// moves were first recorded.
func readDefinitions(ctx context.Context, q dialect.Querier) ([]Definition, error) {
	var rows []definitionRow
	err := q.SelectContext(ctx, &rows, `SELECT d.move, d.version, d.digest, d.canonical, d.recorded_at, d.app_release, d.change_note
FROM `+DefinitionsTable+` d JOIN `+DefinitionsTable+` f ON f.move = d.move AND f.version = 1
WHERE d.version = (SELECT MAX(version) FROM `+DefinitionsTable+` l WHERE l.move = d.move)
ORDER BY f.recorded_at, d.move`)
	if err != nil {
		return nil, fmt.Errorf("read definitions: %w", err)
	}
	out := make([]Definition, len(rows))
	for i, r := range rows {
		out[i] = r.def()
	}
	return out, nil
}

// RecordedDefinitions returns the latest recorded definition of every
// move, in the order the moves were first recorded; none on a database
// whose ledger has no definitions table yet. It only reads.
func RecordedDefinitions(ctx context.Context, db *dialect.DB) ([]Definition, error) {
	if ok, err := definitionsReady(ctx, db, sqldialect.Of(db)); err != nil || !ok {
		return nil, err
	}
	return readDefinitions(ctx, db)
}

// DefinitionHistory returns every recorded version of a move's definition,
// oldest first; empty for a move never recorded.
func DefinitionHistory(ctx context.Context, q dialect.Querier, engine dialect.Name, name string) ([]Definition, error) {
	d, derr := sqldialect.For(engine)
	if derr != nil {
		return nil, derr
	}
	if ok, err := definitionsReady(ctx, q, d); err != nil || !ok {
		return nil, err
	}
	var rows []definitionRow
	if err := q.SelectContext(ctx, &rows, q.Rebind(`SELECT `+definitionCols+` FROM `+DefinitionsTable+` WHERE move = ? ORDER BY version`), name); err != nil {
		return nil, fmt.Errorf("read definitions of %s: %w", name, err)
	}
	out := make([]Definition, len(rows))
	for i, r := range rows {
		out[i] = r.def()
	}
	return out, nil
}

func insertDefinition(ctx context.Context, q dialect.Querier, def Definition) error {
	var change any
	if def.Change != "" {
		change = def.Change
	}
	_, err := q.ExecContext(ctx, q.Rebind(`INSERT INTO `+DefinitionsTable+` (`+definitionCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`),
		def.Move, def.Version, def.Digest, def.Canonical, def.RecordedAt, def.Release, change)
	return err
}

// compareDefinition returns a *DriftError when m differs from def.
func compareDefinition(m move.Move, def Definition, row ledgerRow, source string, amendCmd func(string) string) error {
	canon := Canonical(m)
	if digestOf(canon) == def.Digest {
		return nil
	}
	changes, err := diffDefinitions([]byte(def.Canonical), canon)
	if err != nil {
		return err
	}
	if len(changes) == 0 {
		// Same fields, other bytes (a definition recorded by another
		// build's encoder): nothing differs that matters.
		return nil
	}
	de := &DriftError{Move: m.Name, Source: source, Phase: row.phase, Version: def.Version, Fields: judge(changes, row)}
	if !de.Refused() && amendCmd != nil {
		de.Command = amendCmd(m.Name)
	}
	return de
}

// declaredAs is what recordMove found for a declaration: the recorded
// version it equals, and the ledger's current definition, which governs
// what the process does. Declared below Current.Version is a known older
// declaration: a process of an earlier release of the rollout, which may
// start and acts by the current definition.
type declaredAs struct {
	Declared int64
	Current  Definition
}

// older reports whether this is a known older declaration.
func (r declaredAs) older() bool { return r.Declared != 0 && r.Declared < r.Current.Version }

// olderVersion returns the earlier recorded version of a move whose
// digest is digest, if any.
func olderVersion(ctx context.Context, q dialect.Querier, name, digest string, below int64) (int64, bool, error) {
	var v int64
	err := q.GetContext(ctx, &v, q.Rebind(`SELECT version FROM `+DefinitionsTable+` WHERE move = ? AND digest = ? AND version < ? ORDER BY version DESC LIMIT 1`), name, digest, below)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read definitions of %s: %w", name, err)
	}
	return v, true, nil
}

// checkDeclared compares m with the move's current definition def: nil
// and the version m equals when it is the current one or an earlier
// recorded one, the *DriftError against the current one when it matches
// no recorded version.
func checkDeclared(ctx context.Context, q dialect.Querier, m move.Move, def Definition, row ledgerRow, source string, amendCmd func(string) string) (declaredAs, error) {
	err := compareDefinition(m, def, row, source, amendCmd)
	if err == nil {
		return declaredAs{Declared: def.Version, Current: def}, nil
	}
	var de *DriftError
	if !errors.As(err, &de) {
		return declaredAs{}, err
	}
	v, ok, oerr := olderVersion(ctx, q, m.Name, Digest(m), def.Version)
	if oerr != nil {
		return declaredAs{}, oerr
	}
	if !ok {
		return declaredAs{}, err
	}
	return declaredAs{Declared: v, Current: def}, nil
}

// recordMove records m's definition when the ledger has none, checks it
// against the recorded ones otherwise (see checkDeclared), and records an
// amendment when why is set (amend) and every change is safe at the move's
// phase. The move's ledger row is read on q, under the move's lock when
// the caller holds it.
func recordMove(ctx context.Context, q dialect.Querier, d sqldialect.Dialect, m move.Move, release int64, now time.Time, source string, amendCmd func(string) string, amend *string) (declaredAs, error) {
	canon := Canonical(m)
	def, ok, err := readDefinition(ctx, q, m.Name)
	if err != nil {
		return declaredAs{}, err
	}
	if !ok {
		first := Definition{Move: m.Name, Version: 1, Digest: digestOf(canon), Canonical: string(canon), RecordedAt: now, Release: release}
		err := insertDefinition(ctx, q, first)
		if err == nil {
			return declaredAs{Declared: 1, Current: first}, nil
		}
		if !d.IsUniqueViolation(err) {
			return declaredAs{}, err
		}
		// Another runner recorded it first: compare with theirs.
		if def, _, err = readDefinition(ctx, q, m.Name); err != nil {
			return declaredAs{}, err
		}
	}
	row, err := ledgerOrLegacy(ctx, q, d, m.Name)
	if err != nil {
		return declaredAs{}, err
	}
	if amend == nil {
		return checkDeclared(ctx, q, m, def, row, source, amendCmd)
	}
	// Amending compares with the current definition only: declaring an
	// earlier version again on purpose records it as a new one.
	err = compareDefinition(m, def, row, source, amendCmd)
	var de *DriftError
	if !errors.As(err, &de) {
		return declaredAs{Declared: def.Version, Current: def}, err
	}
	de.Amending = true
	if de.Refused() {
		return declaredAs{}, de
	}
	if bytes.Equal([]byte(def.Canonical), canon) {
		return declaredAs{Declared: def.Version, Current: def}, nil
	}
	next := Definition{Move: m.Name, Version: def.Version + 1, Digest: digestOf(canon), Canonical: string(canon), RecordedAt: now, Release: release, Change: changeNote(de.Fields, *amend)}
	if err := recordAmendment(ctx, q, d, next, row.phase); err != nil {
		return declaredAs{}, fmt.Errorf("record amendment: %w", err)
	}
	return declaredAs{Declared: next.Version, Current: next}, nil
}

// recordAmendment inserts an amended definition and its history row (a
// transition from the move's phase to itself, with the change as note) in
// one transaction on every engine: a failure between them leaves neither.
func recordAmendment(ctx context.Context, q dialect.Querier, d sqldialect.Dialect, def Definition, at move.Phase) error {
	return dialect.InTx(ctx, q, func(q dialect.Querier) error {
		if err := insertDefinition(ctx, q, def); err != nil {
			return err
		}
		if ok, err := d.TableExists(ctx, q, HistoryTable); err != nil || !ok {
			return err
		}
		var seq int64
		if err := q.GetContext(ctx, &seq, q.Rebind(`SELECT COALESCE(MAX(seq), 0) FROM `+HistoryTable+` WHERE move = ?`), def.Move); err != nil {
			return err
		}
		_, err := q.ExecContext(ctx, q.Rebind(`INSERT INTO `+HistoryTable+` (move, seq, from_phase, to_phase, at, app_release, note) VALUES (?, ?, ?, ?, ?, ?, ?)`),
			def.Move, seq+1, at.String(), at.String(), def.RecordedAt, def.Release, def.Change)
		return err
	})
}

// ledgerOrLegacy reads a move's ledger row, or a legacy one when the move
// or the whole ledger has none yet.
func ledgerOrLegacy(ctx context.Context, q dialect.Querier, d sqldialect.Dialect, name string) (ledgerRow, error) {
	if ok, err := d.TableExists(ctx, q, MovesTable); err != nil || !ok {
		return ledgerRow{Name: name, Phase: move.Legacy.String()}, err
	}
	row, _, err := readLedger(ctx, q, name)
	return row, err
}

// goAmendCommand is how a Go declaration records an intended change.
func goAmendCommand(name string) string {
	return fmt.Sprintf("pass dualwrite.WithAmend(%q, \"why\") to dualwrite.New, or `tandem moves apply --plan FILE --amend %s` with the plan exported from the same declaration", name, name)
}

// recordDeclared records the definitions of moves the ledger does not
// know and checks the others, for a Tracker: no DDL, and nothing at all on
// a database where tandem's ledger does not exist yet (nil then). It
// returns what each move was found declared as, in the order of moves.
func recordDeclared(ctx context.Context, db *dialect.DB, moves []move.Move, release int64) ([]declaredAs, error) {
	ok, err := definitionsReady(ctx, db, sqldialect.Of(db))
	if err != nil || !ok {
		return nil, err
	}
	out := make([]declaredAs, len(moves))
	for i, m := range moves {
		// Under the move's lock, like every write of a definition: on
		// PostgreSQL a duplicate insert would abort the lock holder's
		// transaction.
		err := sqldialect.Of(db).Locked(ctx, db.SQLX(), "move:"+m.Name, time.Minute, func(ctx context.Context, q dialect.Querier) error {
			var err error
			out[i], err = recordMove(ctx, q, sqldialect.Of(db), m, release, time.Now().UTC(), fmt.Sprintf("the Go declaration of release %d", release), goAmendCommand, nil)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// governing returns the move a process whose declaration m is a known
// older one acts on: the ledger's current definition cur, with m's Go
// transforms where cur has the same transform. Where it has another one
// that needs Go, this build does not carry it: forwardGo or backwardGo
// says so, and a backfill or verify needing it is refused (see
// Manager.CheckTransform) rather than run with the old function.
func governing(m move.Move, cur Definition) (g move.Move, forwardGo, backwardGo bool, err error) {
	g, err = MoveFromDefinition([]byte(cur.Canonical))
	if err != nil {
		return g, false, false, err
	}
	changes, err := diffDefinitions([]byte(cur.Canonical), Canonical(m))
	if err != nil {
		return g, false, false, err
	}
	sameFwd, sameBwd := true, true
	for _, c := range changes {
		sameFwd = sameFwd && !strings.HasPrefix(c.Field, "forward")
		sameBwd = sameBwd && !strings.HasPrefix(c.Field, "backward")
	}
	needFwd, needBwd := cur.NeedsGo()
	if sameFwd {
		g.Forward.Go = m.Forward.Go
	}
	if sameBwd {
		g.Backward.Go = m.Backward.Go
	}
	return g, needFwd && !sameFwd, needBwd && !sameBwd, nil
}

// DefinitionRef names a recorded definition, for status.
type DefinitionRef struct {
	Version    int64     `json:"version"`
	Digest     string    `json:"digest"`
	RecordedAt time.Time `json:"recorded_at"`
}

// recordedRef reads which definition the ledger records for a move; nil
// when none (or no definitions table yet).
func recordedRef(ctx context.Context, db *dialect.DB, name string) (*DefinitionRef, error) {
	if ok, err := definitionsReady(ctx, db, sqldialect.Of(db)); err != nil || !ok {
		return nil, err
	}
	def, ok, err := readDefinition(ctx, db, name)
	if err != nil || !ok {
		return nil, err
	}
	return &DefinitionRef{Version: def.Version, Digest: def.Digest, RecordedAt: def.RecordedAt}, nil
}
