package sqldialect

import (
	"context"
	"strings"

	"github.com/tandem-go/tandem/dialect"
)

// MySQL and MariaDB: within one table, BEFORE triggers SET NEW, so the row
// is written once. Across tables, a trigger may not write a table the
// statement that fired it is already writing (error 1442), so:
//
//   - the source table's AFTER INSERT/UPDATE triggers write the new table,
//     and the new table's AFTER triggers write the source row;
//   - each of those writes, but the first fill of a new row, runs only
//     inside an IF that first reads the other table and finds the pair
//     inconsistent. A trigger fired by the other
//     table's trigger reads the row that trigger is writing, finds it
//     consistent, and never reaches the write that would raise 1442;
//   - deleting a source row deletes its new row first (BEFORE DELETE, so a
//     foreign key without ON DELETE CASCADE does not block old writers);
//     the new table's AFTER DELETE trigger would then clear old in the very
//     row being deleted, which MySQL refuses with 1442: that error, and only
//     that one, is caught there, since the row is going away anyway.
//
// Each CREATE TRIGGER is one statement with a BEGIN ... END body, sent as is
// through database/sql: no DELIMITER.

func (g *trigGen) mysql() []TriggerObject {
	if g.s.CrossTable() {
		return g.mysqlCross()
	}
	o, n := g.o, g.n
	newO, newN := "NEW."+o, "NEW."+n
	// The stored-program interpreter pays for every statement and every
	// comparison on every row, so the common path (one writer, one side
	// changed) is a single IF.
	return []TriggerObject{
		g.mysqlTrigger("1", g.s.Table, "BEFORE", "INSERT", `BEGIN
  IF `+newN+` IS NULL AND `+newO+` IS NOT NULL THEN
    SET `+newN+` = `+g.fwd(newO)+`;
  ELSEIF `+newO+` IS NULL AND `+newN+` IS NOT NULL THEN
    SET `+newO+` = `+g.bwd(newN)+`;
  END IF;
END`),
		g.mysqlTrigger("2", g.s.Table, "BEFORE", "UPDATE", `BEGIN
  IF NOT (`+newO+` <=> OLD.`+o+`) AND `+newN+` <=> OLD.`+n+` THEN
    SET `+newN+` = `+g.fwd(newO)+`;
  ELSEIF NOT (`+newN+` <=> OLD.`+n+`) AND `+newO+` <=> OLD.`+o+` AND NOT (`+newN+` <=> `+g.fwd(newO)+`) THEN
    SET `+newO+` = `+g.bwd(newN)+`;
  END IF;
END`),
	}
}

func (g *trigGen) mysqlCross() []TriggerObject {
	t, o, nt, n := g.t, g.o, g.nt, g.n
	newO, newN := "NEW."+o, "NEW."+n
	ntN, tO := nt+"."+n, t+"."+o
	ntKeyNew := match(nt, g.nk, "NEW", g.k)
	tKeyNew := match(t, g.k, "NEW", g.nk)
	// The new row is written by one INSERT ... ON DUPLICATE KEY UPDATE,
	// never after a read of the new table that finds no row: under
	// REPEATABLE READ such a read locks the gap where the row would go,
	// and two writers creating neighbouring keys then each wait for the
	// other's gap lock to insert, a deadlock (1213) for one of them.
	insertNew := `INSERT INTO ` + nt + ` (` + list("", g.nk) + `, ` + n + `) VALUES (` + list("NEW", g.k) + `, ` + g.fwd(newO) + `) ON DUPLICATE KEY UPDATE `
	writeNew := `    IF ` + g.fwd(newO) + ` IS NOT NULL THEN
      ` + insertNew + n + ` = VALUES(` + n + `);
    ELSE
      UPDATE ` + nt + ` SET ` + ntN + ` = NULL WHERE ` + ntKeyNew + `;
    END IF;`
	fill := newO + ` IS NOT NULL`
	if f := g.fwd(newO); f != newO {
		fill += ` AND ` + f + ` IS NOT NULL`
	}
	return []TriggerObject{
		// A new value already in the new table wins over the old one.
		g.mysqlTrigger("1", g.s.Table, "AFTER", "INSERT", `BEGIN
  IF `+fill+` THEN
    `+insertNew+n+` = COALESCE(`+n+`, VALUES(`+n+`));
  END IF;
END`),
		g.mysqlTrigger("2", g.s.Table, "AFTER", "UPDATE", `BEGIN
  IF NOT (`+newO+` <=> OLD.`+o+`) AND NOT EXISTS (SELECT 1 FROM `+nt+` WHERE `+ntKeyNew+` AND (`+ntN+` <=> `+g.fwd(newO)+` OR `+newO+` <=> `+g.bwd(ntN)+`)) THEN
`+writeNew+`
  END IF;
END`),
		g.mysqlTrigger("3", g.s.Table, "BEFORE", "DELETE", `BEGIN
  DELETE FROM `+nt+` WHERE `+match(nt, g.nk, "OLD", g.k)+`;
END`),
		g.mysqlTrigger("4", g.s.NewTable, "BEFORE", "INSERT", `BEGIN
  IF `+newN+` IS NULL THEN
    SET `+newN+` = (SELECT `+g.fwd(tO)+` FROM `+t+` WHERE `+tKeyNew+`);
  END IF;
END`),
		g.mysqlTrigger("5", g.s.NewTable, "AFTER", "INSERT", `BEGIN
  IF `+newN+` IS NOT NULL AND EXISTS (SELECT 1 FROM `+t+` WHERE `+tKeyNew+` AND `+tO+` IS NULL) THEN
    UPDATE `+t+` SET `+tO+` = `+g.bwd(newN)+` WHERE `+tKeyNew+`;
  END IF;
END`),
		g.mysqlTrigger("6", g.s.NewTable, "AFTER", "UPDATE", `BEGIN
  IF NOT (`+newN+` <=> OLD.`+n+`) AND EXISTS (SELECT 1 FROM `+t+` WHERE `+tKeyNew+` AND NOT (`+g.fwd(tO)+` <=> `+newN+` OR `+tO+` <=> `+g.bwd(newN)+`)) THEN
    UPDATE `+t+` SET `+tO+` = `+g.bwd(newN)+` WHERE `+tKeyNew+`;
  END IF;
END`),
		g.mysqlTrigger("7", g.s.NewTable, "AFTER", "DELETE", `BEGIN
  DECLARE CONTINUE HANDLER FOR 1442 BEGIN END;
  IF EXISTS (SELECT 1 FROM `+t+` WHERE `+match(t, g.k, "OLD", g.nk)+` AND `+tO+` IS NOT NULL) THEN
    UPDATE `+t+` SET `+tO+` = NULL WHERE `+match(t, g.k, "OLD", g.nk)+`;
  END IF;
END`),
	}
}

func (g *trigGen) mysqlTrigger(suffix, table, timing, event, body string) TriggerObject {
	name := g.name(suffix)
	return TriggerObject{
		Name:      name,
		Kind:      TriggerKindTrigger,
		Table:     table,
		Create:    "CREATE TRIGGER " + g.quote(name) + " " + timing + " " + event + " ON " + g.quote(table) + " FOR EACH ROW\n" + body,
		Drop:      "DROP TRIGGER IF EXISTS " + g.quote(name),
		Canonical: mysqlCanonical(table, timing, event, body),
	}
}

func mysqlCanonical(table, timing, event, body string) string {
	return NormalizeSQL(timing + " " + event + " ON " + table + " FOR EACH ROW " + body)
}

func mysqlListTriggers(ctx context.Context, q dialect.Querier, d Dialect) ([]InstalledTrigger, error) {
	rows, err := q.QueryxContext(ctx, `
SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_STATEMENT
FROM information_schema.TRIGGERS
WHERE TRIGGER_SCHEMA = DATABASE() AND TRIGGER_NAME LIKE 'tandem%'`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []InstalledTrigger
	for rows.Next() {
		var name, table, timing, event, body string
		if err := rows.Scan(&name, &table, &timing, &event, &body); err != nil {
			return nil, err
		}
		out = append(out, InstalledTrigger{
			Name: name, Kind: TriggerKindTrigger, Table: table,
			Canonical: mysqlCanonical(table, timing, event, body),
			Drop:      "DROP TRIGGER IF EXISTS `" + strings.ReplaceAll(name, "`", "``") + "`",
		})
	}
	return out, rows.Err()
}
