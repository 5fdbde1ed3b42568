package dualwrite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tandem-go/tandem/dialect"
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
func definitionsReady(ctx context.Context, q dialect.Querier, d dialect.Dialect) (bool, error) {
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
	if ok, err := definitionsReady(ctx, db, db.Dialect); err != nil || !ok {
		return nil, err
	}
	return readDefinitions(ctx, db)
}

// DefinitionHistory returns every recorded version of a move's definition,
// oldest first; empty for a move never recorded.
func DefinitionHistory(ctx context.Context, q dialect.Querier, d dialect.Dialect, name string) ([]Definition, error) {
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

// recordMove records m's definition when the ledger has none, checks it
// against the recorded one otherwise, and records an amendment when why
// is set (amend) and every change is safe at the move's phase. The move's
// ledger row is read on q, under the move's lock when the caller holds it.
func recordMove(ctx context.Context, q dialect.Querier, d dialect.Dialect, m move.Move, release int64, now time.Time, source string, amendCmd func(string) string, amend *string) error {
	canon := Canonical(m)
	def, ok, err := readDefinition(ctx, q, m.Name)
	if err != nil {
		return err
	}
	if !ok {
		err := insertDefinition(ctx, q, Definition{Move: m.Name, Version: 1, Digest: digestOf(canon), Canonical: string(canon), RecordedAt: now, Release: release})
		if err == nil || !d.IsUniqueViolation(err) {
			return err
		}
		// Another runner recorded it first: compare with theirs.
		if def, _, err = readDefinition(ctx, q, m.Name); err != nil {
			return err
		}
	}
	row, err := ledgerOrLegacy(ctx, q, d, m.Name)
	if err != nil {
		return err
	}
	err = compareDefinition(m, def, row, source, amendCmd)
	var de *DriftError
	if !errors.As(err, &de) || amend == nil {
		return err
	}
	de.Amending = true
	if de.Refused() {
		return de
	}
	if bytes.Equal([]byte(def.Canonical), canon) {
		return nil
	}
	note := changeNote(de.Fields, *amend)
	if err := insertDefinition(ctx, q, Definition{Move: m.Name, Version: def.Version + 1, Digest: digestOf(canon), Canonical: string(canon), RecordedAt: now, Release: release, Change: note}); err != nil {
		return fmt.Errorf("record amendment: %w", err)
	}
	if ok, err := d.TableExists(ctx, q, HistoryTable); err != nil || !ok {
		return err
	}
	var seq int64
	if err := q.GetContext(ctx, &seq, q.Rebind(`SELECT COALESCE(MAX(seq), 0) FROM `+HistoryTable+` WHERE move = ?`), m.Name); err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, q.Rebind(`INSERT INTO `+HistoryTable+` (move, seq, from_phase, to_phase, at, app_release, note) VALUES (?, ?, ?, ?, ?, ?, ?)`),
		m.Name, seq+1, row.phase.String(), row.phase.String(), now, release, note)
	return err
}

// ledgerOrLegacy reads a move's ledger row, or a legacy one when the move
// or the whole ledger has none yet.
func ledgerOrLegacy(ctx context.Context, q dialect.Querier, d dialect.Dialect, name string) (ledgerRow, error) {
	if ok, err := d.TableExists(ctx, q, MovesTable); err != nil || !ok {
		return ledgerRow{Name: name, Phase: move.Legacy.String()}, err
	}
	row, _, err := readLedger(ctx, q, name)
	return row, err
}

// goAmendCommand is how a Go declaration records an intended change.
func goAmendCommand(name string) string {
	return fmt.Sprintf("pass dualwrite.Amend(%q, \"why\") to dualwrite.New, or `tandem moves apply --plan FILE --amend %s` with the plan exported from the same declaration", name, name)
}

// recordDeclared records the definitions of moves the ledger does not
// know and compares the others, for a Tracker: no DDL, and
// nothing at all on a database where tandem's ledger does not exist yet.
func recordDeclared(ctx context.Context, db *dialect.DB, moves []move.Move, release int64) error {
	ok, err := definitionsReady(ctx, db, db.Dialect)
	if err != nil || !ok {
		return err
	}
	for _, m := range moves {
		// Under the move's lock, like every write of a definition: on
		// PostgreSQL a duplicate insert would abort the lock holder's
		// transaction.
		err := db.Dialect.Locked(ctx, db.DB, "move:"+m.Name, time.Minute, func(ctx context.Context, q dialect.Querier) error {
			return recordMove(ctx, q, db.Dialect, m, release, time.Now().UTC(), fmt.Sprintf("the Go declaration of release %d", release), goAmendCommand, nil)
		})
		if err != nil {
			return err
		}
	}
	return nil
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
	if ok, err := definitionsReady(ctx, db, db.Dialect); err != nil || !ok {
		return nil, err
	}
	def, ok, err := readDefinition(ctx, db, name)
	if err != nil || !ok {
		return nil, err
	}
	return &DefinitionRef{Version: def.Version, Digest: def.Digest, RecordedAt: def.RecordedAt}, nil
}
