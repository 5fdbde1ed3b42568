package sqldialect

import (
	"context"
	"strings"

	"github.com/tandem-go/tandem/dialect"
)

// SQLite cannot assign NEW, so every trigger is an AFTER trigger that
// updates the row again, guarded by WHEN. An UPDATE issued by one trigger
// fires the others (recursive_triggers only stops a trigger from firing
// itself); the guards find the pair consistent and stay quiet, so each
// writer's statement costs at most one extra write per row.

func (g *trigGen) sqlite() []TriggerObject {
	if g.s.CrossTable() {
		return g.sqliteCross()
	}
	t, o, n := g.t, g.o, g.n
	key := match("", g.k, "NEW", g.k)
	newO, newN := "NEW."+o, "NEW."+n
	oldChanged := newO + " IS NOT OLD." + o
	// One trigger per event: SQLite runs a trigger program per row for each
	// trigger that matches, WHEN included, so fewer triggers cost less. Every
	// step of a WHEN costs on every row, and the trigger programs are
	// compiled again with every statement that fires them, so each
	// condition is ordered for the common writers (an old release inserting
	// or updating old only) and no condition is evaluated twice on their
	// path.
	return []TriggerObject{
		// One statement fills whichever side is missing; the other keeps
		// its value (COALESCE), so the row is written once more at most.
		// The condition is "exactly one side is NULL", written so that an
		// insert of old only passes it in two tests.
		g.sqliteTrigger("1", g.s.Table, "AFTER INSERT ON "+t,
			newN+" IS NULL AND "+newO+" IS NOT NULL OR "+newO+" IS NULL AND "+newN+" IS NOT NULL",
			"UPDATE "+t+" SET "+n+" = COALESCE("+newN+", "+g.fwd(newO)+"), "+o+" = COALESCE("+newO+", "+g.bwd(newN)+") WHERE "+key+";"),
		// The update this trigger makes does not fire it again
		// (recursive_triggers is off by default; when it is on, the second
		// pass finds the pair consistent). The update trigger 1 makes does
		// fire it, and WHEN recognises the side just derived: new =
		// forward(old), or old = backward(new) (see the package
		// documentation). WHEN picks the direction; one statement writes it,
		// the other column keeping its value.
		//
		// Order matters for cost, not for the result: "new unchanged" comes
		// first, so that a writer of old only is accepted in three tests and
		// trigger 1's fill of new, the most frequent write this trigger
		// sees, is turned down in two (new changed, new = forward(old)).
		g.sqliteTrigger("2", g.s.Table, "AFTER UPDATE OF "+o+", "+n+" ON "+t,
			"("+newN+" IS OLD."+n+" AND "+oldChanged+" AND "+newO+" IS NOT "+g.bwd(newN)+") OR ("+
				newN+" IS NOT "+g.fwd(newO)+" AND "+newO+" IS OLD."+o+" AND "+newN+" IS NOT OLD."+n+")",
			"UPDATE "+t+" SET "+n+" = CASE WHEN "+oldChanged+" THEN "+g.fwd(newO)+" ELSE "+newN+" END, "+
				o+" = CASE WHEN "+oldChanged+" THEN "+newO+" ELSE "+g.bwd(newN)+" END WHERE "+key+";"),
	}
}

// sqliteCross keeps a column of another table in sync. The source table's
// triggers write the new table (creating its row when missing), the new
// table's triggers write the source row back; deleting a source row deletes
// its new row, deleting a new row clears old.
func (g *trigGen) sqliteCross() []TriggerObject {
	t, o, nt, n := g.t, g.o, g.nt, g.n
	newO := "NEW." + o
	ntKeyNew := match(nt, g.nk, "NEW", g.k) // new-table row of the source row NEW
	ntKeyOld := match(nt, g.nk, "OLD", g.k) // ... of the deleted source row
	tKeyNew := match(t, g.k, "NEW", g.nk)   // source row of the new-table row NEW
	tKeyOld := match(t, g.k, "OLD", g.nk)   // ... of the deleted new-table row
	insertNew := "INSERT INTO " + nt + " (" + list("", g.nk) + ", " + n + ") SELECT " + list("NEW", g.k) + ", " + g.fwd(newO) +
		" WHERE " + g.fwd(newO) + " IS NOT NULL AND NOT EXISTS (SELECT 1 FROM " + nt + " WHERE " + ntKeyNew + ");"
	ntN := nt + "." + n
	tO := t + "." + o
	return []TriggerObject{
		g.sqliteTrigger("1", g.s.Table, "AFTER INSERT ON "+t, newO+" IS NOT NULL",
			"UPDATE "+nt+" SET "+n+" = "+g.fwd(newO)+" WHERE "+ntKeyNew+" AND "+ntN+" IS NULL;\n  "+insertNew),
		g.sqliteTrigger("2", g.s.Table, "AFTER UPDATE OF "+o+" ON "+t, newO+" IS NOT OLD."+o,
			"UPDATE "+nt+" SET "+n+" = "+g.fwd(newO)+" WHERE "+ntKeyNew+" AND NOT ("+ntN+" IS "+g.fwd(newO)+" OR "+newO+" IS "+g.bwd(ntN)+");\n  "+insertNew),
		g.sqliteTrigger("3", g.s.Table, "AFTER DELETE ON "+t, "",
			"DELETE FROM "+nt+" WHERE "+ntKeyOld+";"),
		g.sqliteTrigger("4", g.s.NewTable, "AFTER INSERT ON "+nt,
			"NEW."+n+" IS NULL AND EXISTS (SELECT 1 FROM "+t+" WHERE "+tKeyNew+" AND "+tO+" IS NOT NULL)",
			"UPDATE "+nt+" SET "+n+" = (SELECT "+g.fwd(tO)+" FROM "+t+" WHERE "+tKeyNew+") WHERE "+match(nt, g.nk, "NEW", g.nk)+";"),
		g.sqliteTrigger("5", g.s.NewTable, "AFTER INSERT ON "+nt, "NEW."+n+" IS NOT NULL",
			"UPDATE "+t+" SET "+o+" = "+g.bwd("NEW."+n)+" WHERE "+tKeyNew+" AND "+tO+" IS NULL;"),
		g.sqliteTrigger("6", g.s.NewTable, "AFTER UPDATE OF "+n+" ON "+nt, "NEW."+n+" IS NOT OLD."+n,
			"UPDATE "+t+" SET "+o+" = "+g.bwd("NEW."+n)+" WHERE "+tKeyNew+" AND NOT ("+g.fwd(tO)+" IS NEW."+n+" OR "+tO+" IS "+g.bwd("NEW."+n)+");"),
		g.sqliteTrigger("7", g.s.NewTable, "AFTER DELETE ON "+nt, "",
			"UPDATE "+t+" SET "+o+" = NULL WHERE "+tKeyOld+" AND "+tO+" IS NOT NULL;"),
	}
}

func (g *trigGen) sqliteTrigger(suffix, table, event, when, body string) TriggerObject {
	name := g.quote(g.name(suffix))
	var b strings.Builder
	b.WriteString("CREATE TRIGGER " + name + " " + event + " FOR EACH ROW\n")
	if when != "" {
		b.WriteString("WHEN " + when + "\n")
	}
	b.WriteString("BEGIN\n  " + body + "\nEND")
	create := b.String()
	return TriggerObject{
		Name:      g.name(suffix),
		Kind:      TriggerKindTrigger,
		Table:     table,
		Create:    create,
		Drop:      "DROP TRIGGER IF EXISTS " + name,
		Canonical: NormalizeSQL(create),
	}
}

func sqliteListTriggers(ctx context.Context, q dialect.Querier, d Dialect) ([]InstalledTrigger, error) {
	rows, err := q.QueryxContext(ctx, `SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'tandem%'`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []InstalledTrigger
	for rows.Next() {
		var it InstalledTrigger
		if err := rows.Scan(&it.Name, &it.Table, &it.Canonical); err != nil {
			return nil, err
		}
		it.Kind = TriggerKindTrigger
		it.Drop = "DROP TRIGGER IF EXISTS " + sqliteQuoteAny(it.Name)
		out = append(out, it)
	}
	return out, rows.Err()
}

// sqliteQuoteAny quotes a name read from the catalog, which may be one
// tandem would refuse to generate; doubling the quote is SQLite's escape.
func sqliteQuoteAny(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
