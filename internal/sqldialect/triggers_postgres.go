package sqldialect

import (
	"context"
	"sort"
	"strings"

	"github.com/tandem-go/tandem/dialect"
)

// PostgreSQL: plpgsql functions. Within one table a BEFORE row trigger
// assigns NEW, so the row is written once. Across tables the source
// table's AFTER trigger writes the new table (AFTER, so that the new table's
// triggers read the source row as written and find the pair consistent),
// and deletes go first from the new table in a BEFORE DELETE trigger, so a
// foreign key without ON DELETE CASCADE does not block old writers.

const pgBodyTag = "$tandem$"

func (g *trigGen) postgres() []TriggerObject {
	if g.s.CrossTable() {
		return g.postgresCross()
	}
	o, n := g.o, g.n
	newO, newN := "NEW."+o, "NEW."+n
	// One function per event: no TG_OP dispatch on the hot path, and the
	// update trigger only fires when old or new is in the SET list.
	ins := `
BEGIN
  IF ` + newN + ` IS NULL AND ` + newO + ` IS NOT NULL THEN
    ` + newN + ` := ` + g.fwd(newO) + `;
  ELSIF ` + newO + ` IS NULL AND ` + newN + ` IS NOT NULL THEN
    ` + newO + ` := ` + g.bwd(newN) + `;
  END IF;
  RETURN NEW;
END
`
	upd := `
BEGIN
  IF ` + newO + ` IS DISTINCT FROM OLD.` + o + ` AND ` + newN + ` IS NOT DISTINCT FROM OLD.` + n + ` THEN
    ` + newN + ` := ` + g.fwd(newO) + `;
  ELSIF ` + newN + ` IS DISTINCT FROM OLD.` + n + ` AND ` + newO + ` IS NOT DISTINCT FROM OLD.` + o + ` AND ` + newN + ` IS DISTINCT FROM ` + g.fwd(newO) + ` THEN
    ` + newO + ` := ` + g.bwd(newN) + `;
  END IF;
  RETURN NEW;
END
`
	f1, f2 := g.pgFunction("f1", ins), g.pgFunction("f2", upd)
	return []TriggerObject{
		f1, f2,
		g.pgTrigger("1", g.s.Table, "BEFORE", []string{"INSERT"}, nil, f1.Name),
		g.pgTrigger("2", g.s.Table, "BEFORE", []string{"UPDATE"}, []string{g.s.Old, g.s.New}, f2.Name),
	}
}

func (g *trigGen) postgresCross() []TriggerObject {
	t, o, nt, n := g.t, g.o, g.nt, g.n
	newO := "NEW." + o
	ntN, tO := nt+"."+n, t+"."+o
	ntKeyNew := match(nt, g.nk, "NEW", g.k)
	src := `
BEGIN
  IF TG_OP = 'DELETE' THEN
    DELETE FROM ` + nt + ` WHERE ` + match(nt, g.nk, "OLD", g.k) + `;
    RETURN OLD;
  END IF;
  IF TG_OP = 'INSERT' THEN
    IF ` + newO + ` IS NULL THEN
      RETURN NULL;
    END IF;
    UPDATE ` + nt + ` SET ` + n + ` = ` + g.fwd(newO) + ` WHERE ` + ntKeyNew + ` AND ` + ntN + ` IS NULL;
  ELSE
    IF ` + newO + ` IS NOT DISTINCT FROM OLD.` + o + ` THEN
      RETURN NULL;
    END IF;
    UPDATE ` + nt + ` SET ` + n + ` = ` + g.fwd(newO) + ` WHERE ` + ntKeyNew + ` AND NOT (` + ntN + ` IS NOT DISTINCT FROM ` + g.fwd(newO) + ` OR ` + newO + ` IS NOT DISTINCT FROM ` + g.bwd(ntN) + `);
  END IF;
  IF NOT FOUND THEN
    INSERT INTO ` + nt + ` (` + list("", g.nk) + `, ` + n + `) SELECT ` + list("NEW", g.k) + `, ` + g.fwd(newO) + ` WHERE ` + g.fwd(newO) + ` IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ` + nt + ` WHERE ` + ntKeyNew + `);
  END IF;
  RETURN NULL;
END
`
	tKeyNew := match(t, g.k, "NEW", g.nk)
	newN := "NEW." + n
	dst := `
BEGIN
  IF TG_WHEN = 'BEFORE' THEN
    IF ` + newN + ` IS NULL THEN
      ` + newN + ` := (SELECT ` + g.fwd(tO) + ` FROM ` + t + ` WHERE ` + tKeyNew + `);
    END IF;
    RETURN NEW;
  END IF;
  IF TG_OP = 'DELETE' THEN
    -- Only a writer's own delete clears old: a delete cascading from the
    -- source row (this move's trigger or a foreign key) runs deeper.
    IF pg_trigger_depth() = 1 THEN
      UPDATE ` + t + ` SET ` + o + ` = NULL WHERE ` + match(t, g.k, "OLD", g.nk) + ` AND ` + tO + ` IS NOT NULL;
    END IF;
    RETURN NULL;
  END IF;
  IF TG_OP = 'INSERT' THEN
    IF ` + newN + ` IS NOT NULL THEN
      UPDATE ` + t + ` SET ` + o + ` = ` + g.bwd(newN) + ` WHERE ` + tKeyNew + ` AND ` + tO + ` IS NULL;
    END IF;
  ELSIF ` + newN + ` IS DISTINCT FROM OLD.` + n + ` THEN
    UPDATE ` + t + ` SET ` + o + ` = ` + g.bwd(newN) + ` WHERE ` + tKeyNew + ` AND NOT (` + g.fwd(tO) + ` IS NOT DISTINCT FROM ` + newN + ` OR ` + tO + ` IS NOT DISTINCT FROM ` + g.bwd(newN) + `);
  END IF;
  RETURN NULL;
END
`
	f1 := g.pgFunction("f1", src)
	f2 := g.pgFunction("f2", dst)
	return []TriggerObject{
		f1, f2,
		g.pgTrigger("1", g.s.Table, "AFTER", []string{"INSERT", "UPDATE"}, []string{g.s.Old}, f1.Name),
		g.pgTrigger("2", g.s.Table, "BEFORE", []string{"DELETE"}, nil, f1.Name),
		g.pgTrigger("3", g.s.NewTable, "BEFORE", []string{"INSERT"}, nil, f2.Name),
		g.pgTrigger("4", g.s.NewTable, "AFTER", []string{"INSERT", "UPDATE", "DELETE"}, []string{g.s.New}, f2.Name),
	}
}

func (g *trigGen) pgFunction(suffix, body string) TriggerObject {
	name := g.name(suffix)
	q := g.quote(name)
	return TriggerObject{
		Name:      name,
		Kind:      TriggerKindFunction,
		Create:    "CREATE OR REPLACE FUNCTION " + q + "() RETURNS trigger LANGUAGE plpgsql AS " + pgBodyTag + body + pgBodyTag,
		Drop:      "DROP FUNCTION IF EXISTS " + q + "()",
		Canonical: pgFunctionCanonical("plpgsql", "trigger", body),
	}
}

func pgFunctionCanonical(lang, returns, body string) string {
	return NormalizeSQL("LANGUAGE " + lang + " RETURNS " + returns + " AS " + body)
}

// pgTrigger builds a trigger without a WHEN clause: everything it decides is
// in the function, whose source PostgreSQL keeps verbatim, so Check can
// compare it; the trigger itself is compared field by field.
func (g *trigGen) pgTrigger(suffix, table, timing string, events, updateOf []string, fn string) TriggerObject {
	name := g.name(suffix)
	ev := make([]string, len(events))
	for i, e := range events {
		ev[i] = e
		if e == "UPDATE" && len(updateOf) > 0 {
			cols := make([]string, len(updateOf))
			for j, c := range updateOf {
				cols[j] = g.quote(c)
			}
			ev[i] = "UPDATE OF " + strings.Join(cols, ", ")
		}
	}
	create := "CREATE TRIGGER " + g.quote(name) + " " + timing + " " + strings.Join(ev, " OR ") + " ON " + g.quote(table) +
		" FOR EACH ROW EXECUTE FUNCTION " + g.quote(fn) + "()"
	return TriggerObject{
		Name:      name,
		Kind:      TriggerKindTrigger,
		Table:     table,
		Create:    create,
		Drop:      "DROP TRIGGER IF EXISTS " + g.quote(name) + " ON " + g.quote(table),
		Canonical: pgTriggerCanonical(table, timing, events, updateOf, fn, "O", false),
	}
}

// pgTriggerCanonical describes a trigger from the fields pg_trigger keeps.
func pgTriggerCanonical(table, timing string, events, updateOf []string, fn, enabled string, hasWhen bool) string {
	cols := append([]string(nil), updateOf...)
	sort.Strings(cols)
	s := timing + " " + strings.Join(events, " OR ")
	if len(cols) > 0 {
		s += " OF " + strings.Join(cols, ",")
	}
	s += " ON " + table + " FOR EACH ROW EXECUTE " + fn
	if enabled != "O" {
		s += " ENABLED=" + enabled
	}
	if hasWhen {
		s += " WHEN"
	}
	return s
}

func postgresListTriggers(ctx context.Context, q dialect.Querier, d Dialect) ([]InstalledTrigger, error) {
	var out []InstalledTrigger
	rows, err := q.QueryxContext(ctx, `
SELECT p.proname, l.lanname, format_type(p.prorettype, NULL), p.prosrc
FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
WHERE p.pronamespace = current_schema()::regnamespace AND p.proname LIKE 'tandem%' AND p.pronargs = 0`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var name, lang, ret, src string
		if err := rows.Scan(&name, &lang, &ret, &src); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, InstalledTrigger{
			Name: name, Kind: TriggerKindFunction,
			Canonical: pgFunctionCanonical(lang, ret, src),
			Drop:      "DROP FUNCTION IF EXISTS " + pgQuoteAny(name) + "()",
		})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = q.QueryxContext(ctx, `
SELECT t.tgname, c.relname, p.proname, t.tgtype, t.tgenabled, t.tgqual IS NOT NULL,
  COALESCE((SELECT string_agg(a.attname, ',')
            FROM unnest(t.tgattr::int2[]) AS k(attnum)
            JOIN pg_attribute a ON a.attrelid = t.tgrelid AND a.attnum = k.attnum), '')
FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_proc p ON p.oid = t.tgfoid
WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace AND t.tgname LIKE 'tandem%'`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			name, table, fn, enabled, cols string
			tgtype                         int
			hasWhen                        bool
		)
		if err := rows.Scan(&name, &table, &fn, &tgtype, &enabled, &hasWhen, &cols); err != nil {
			return nil, err
		}
		// tgtype bits, from PostgreSQL's pg_trigger.h.
		const (
			typeRow     = 1 << 0
			typeBefore  = 1 << 1
			typeInsert  = 1 << 2
			typeDelete  = 1 << 3
			typeUpdate  = 1 << 4
			typeInstead = 1 << 6
		)
		timing := "AFTER"
		switch {
		case tgtype&typeInstead != 0:
			timing = "INSTEAD OF"
		case tgtype&typeBefore != 0:
			timing = "BEFORE"
		}
		var events []string
		for _, e := range []struct {
			bit  int
			name string
		}{{typeInsert, "INSERT"}, {typeUpdate, "UPDATE"}, {typeDelete, "DELETE"}} {
			if tgtype&e.bit != 0 {
				events = append(events, e.name)
			}
		}
		if tgtype&typeRow == 0 {
			timing += " STATEMENT"
		}
		var updateOf []string
		if cols != "" {
			updateOf = strings.Split(cols, ",")
		}
		out = append(out, InstalledTrigger{
			Name: name, Kind: TriggerKindTrigger, Table: table,
			Canonical: pgTriggerCanonical(table, timing, events, updateOf, fn, enabled, hasWhen),
			Drop:      "DROP TRIGGER IF EXISTS " + pgQuoteAny(name) + " ON " + pgQuoteAny(table),
		})
	}
	return out, rows.Err()
}

func pgQuoteAny(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
