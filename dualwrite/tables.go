package dualwrite

import "github.com/tandem-go/tandem/schema"

// The ledger's tables.
const (
	MovesTable    = "tandem_moves"
	HistoryTable  = "tandem_move_history"
	FailuresTable = "tandem_move_failures"
	StepsTable    = "tandem_steps"
	// DefinitionsTable keeps every recorded version of each move's
	// definition (see Definition).
	DefinitionsTable = "tandem_move_definitions"
	// BackupsTable records the copies of the database taken before a
	// step that cannot be undone (see Backup).
	BackupsTable = "tandem_backups"
)

// Tables returns the ledger tables, for schema.Ensure.
func Tables() []schema.Table {
	ts := schema.Timestamp
	progress := func(prefix string) []schema.Column {
		return []schema.Column{
			{Name: prefix + "_cursor", Type: schema.Text, Null: true},
			{Name: prefix + "_bound", Type: schema.Text, Null: true},
			{Name: prefix + "_started_at", Type: ts, Null: true},
			{Name: prefix + "_done_at", Type: ts, Null: true},
			{Name: prefix + "_rows_done", Type: schema.BigInt, Default: "0"},
			{Name: prefix + "_rows_total", Type: schema.BigInt, Default: "0"},
		}
	}
	moves := []schema.Column{
		{Name: "name", Type: schema.Key},
		{Name: "phase", Type: schema.Key},
		{Name: "phase_at", Type: ts},
		{Name: "phase_release", Type: schema.BigInt, Default: "0"},
		// old_stale: rows were written new-only (write-new without a
		// reverse trigger), so old may not be read until a reverse
		// backfill refreshed it.
		{Name: "old_stale", Type: schema.BigInt, Default: "0"},
	}
	moves = append(moves, progress("backfill")...)
	moves = append(moves, progress("reverse")...)
	moves = append(moves,
		// failed_rows is no longer written: the count is derived from
		// tandem_move_failures (see ledgerCols).
		schema.Column{Name: "failed_rows", Type: schema.BigInt, Default: "0"},
		schema.Column{Name: "verified_at", Type: ts, Null: true},
		schema.Column{Name: "mismatches", Type: schema.BigInt, Null: true},
		schema.Column{Name: "finalized_at", Type: ts, Null: true},
		schema.Column{Name: "finalized_release", Type: schema.BigInt, Null: true},
		// lease_owner records the running backfill's or verify's runner
		// (see Runner); its lock, not lease_until (no longer set), says
		// whether it lives.
		schema.Column{Name: "lease_owner", Type: schema.Key, Null: true},
		schema.Column{Name: "lease_until", Type: ts, Null: true},
		schema.Column{Name: "updated_at", Type: ts},
	)
	return []schema.Table{
		{Name: MovesTable, Migrations: []schema.Migration{{Version: 1, Description: "move ledger", Steps: []schema.Step{
			schema.CreateTable{Name: MovesTable, Columns: moves, PrimaryKey: []string{"name"}},
		}}}},
		{Name: HistoryTable, Migrations: []schema.Migration{{Version: 1, Description: "phase history", Steps: []schema.Step{
			schema.CreateTable{Name: HistoryTable, Columns: []schema.Column{
				{Name: "move", Type: schema.Key},
				{Name: "seq", Type: schema.BigInt},
				{Name: "from_phase", Type: schema.Key},
				{Name: "to_phase", Type: schema.Key},
				{Name: "at", Type: ts},
				{Name: "app_release", Type: schema.BigInt, Default: "0"},
				{Name: "note", Type: schema.Text, Null: true},
			}, PrimaryKey: []string{"move", "seq"}},
		}}}},
		{Name: FailuresTable, Migrations: []schema.Migration{{Version: 1, Description: "rows a transform could not convert", Steps: []schema.Step{
			schema.CreateTable{Name: FailuresTable, Columns: []schema.Column{
				{Name: "move", Type: schema.Key},
				{Name: "row_key", Type: schema.Key},
				{Name: "error", Type: schema.Text},
				{Name: "failed_at", Type: ts},
			}, PrimaryKey: []string{"move", "row_key"}},
		}}}},
		{Name: StepsTable, Migrations: []schema.Migration{{Version: 1, Description: "DDL step log", Steps: []schema.Step{
			schema.CreateTable{Name: StepsTable, Columns: []schema.Column{
				{Name: "id", Type: schema.Key},
				{Name: "move", Type: schema.Key},
				{Name: "app_release", Type: schema.BigInt, Default: "0"},
				{Name: "description", Type: schema.Text},
				{Name: "proposed_at", Type: ts},
				{Name: "applied_at", Type: ts, Null: true},
				{Name: "sql_text", Type: schema.Text},
			}, PrimaryKey: []string{"id"}},
		}}}},
		{Name: DefinitionsTable, Migrations: []schema.Migration{{Version: 1, Description: "recorded move definitions", Steps: []schema.Step{
			schema.CreateTable{Name: DefinitionsTable, Columns: []schema.Column{
				{Name: "move", Type: schema.Key},
				{Name: "version", Type: schema.BigInt},
				{Name: "digest", Type: schema.Key},
				{Name: "canonical", Type: schema.Text},
				{Name: "recorded_at", Type: ts},
				{Name: "app_release", Type: schema.BigInt, Default: "0"},
				{Name: "change_note", Type: schema.Text, Null: true},
			}, PrimaryKey: []string{"move", "version"}},
		}}}},
		{Name: FreezeTable, Migrations: []schema.Migration{{Version: 1, Description: "write freezes and thaws", Steps: []schema.Step{
			schema.CreateTable{Name: FreezeTable, Columns: []schema.Column{
				{Name: "seq", Type: schema.BigInt},
				{Name: "action", Type: schema.Key},
				// scope is what the command named: a JSON list of moves,
				// or "*" for every move.
				{Name: "scope", Type: schema.Text},
				// frozen_all and frozen_moves are the state after it.
				{Name: "frozen_all", Type: schema.BigInt, Default: "0"},
				{Name: "frozen_moves", Type: schema.Text},
				{Name: "reason", Type: schema.Text},
				{Name: "since", Type: ts, Null: true},
				{Name: "at", Type: ts},
				{Name: "host", Type: schema.Key},
			}, PrimaryKey: []string{"seq"}},
		}}}},
		{Name: BackupsTable, Migrations: []schema.Migration{{Version: 1, Description: "backups taken before irreversible steps", Steps: []schema.Step{
			schema.CreateTable{Name: BackupsTable, Columns: []schema.Column{
				{Name: "move", Type: schema.Key},
				{Name: "seq", Type: schema.BigInt},
				{Name: "before_phase", Type: schema.Key},
				{Name: "path", Type: schema.Text},
				{Name: "host", Type: schema.Key},
				{Name: "bytes", Type: schema.BigInt},
				{Name: "tool", Type: schema.Key},
				{Name: "taken_at", Type: ts},
				{Name: "app_release", Type: schema.BigInt, Default: "0"},
			}, PrimaryKey: []string{"move", "seq"}},
		}}}},
	}
}
