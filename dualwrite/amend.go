package dualwrite

import (
	"fmt"
	"strings"

	"github.com/tandem-go/tandem/move"
)

// releaseFields maps the recorded release fields to the phase each ships.
var releaseFields = map[string]move.Phase{
	"releases.write_both": move.WriteBoth,
	"releases.read_new":   move.ReadNew,
	"releases.write_new":  move.WriteNew,
	"releases.contracted": move.Contracted,
}

// amendable says why a recorded field may not change with the move where
// the ledger has it, or "" when the change is safe: it alters nothing
// already written or acted on.
//
//   - description and freeze: always;
//   - the release of a phase the move has not entered yet: instances act
//     on entered phases by their recorded release;
//   - transforms: until the backfill starts, and no later than write-both
//     (rows converted by the recorded transform would disagree with the
//     new one);
//   - triggers: at legacy only (write-both installs them, or does not);
//   - anything else (tables, keys, columns, types): at legacy only, before
//     the expand step made the recorded target.
func amendable(field string, row ledgerRow) string {
	at := row.phase
	switch {
	case field == "description", field == "freeze":
		// The freeze says which steps run under a write freeze: it
		// changes no data and nothing an instance does.
		return ""
	case strings.HasPrefix(field, "releases."):
		p, ok := releaseFields[field]
		if !ok || p > at {
			return ""
		}
		return fmt.Sprintf("the move entered %s already, and instances act on it by its recorded release", p)
	case strings.HasPrefix(field, "forward") || strings.HasPrefix(field, "backward"):
		if row.Forward.StartedAt.Valid {
			return fmt.Sprintf("the backfill started at %s: rows already hold values of the recorded transform", row.Forward.StartedAt.Time.UTC().Format("2006-01-02T15:04:05Z"))
		}
		if at > move.WriteBoth {
			return fmt.Sprintf("the move is at %s: rows were written with the recorded transform", at)
		}
		return ""
	case field == "triggers":
		if at == move.Legacy {
			return ""
		}
		return fmt.Sprintf("the move is at %s: entering write-both installed the triggers or not by the recorded setting", at)
	}
	if at == move.Legacy {
		return ""
	}
	return fmt.Sprintf("the move is at %s: the expand step made the recorded target, and data was written there", at)
}

// judge fills in, for each change, why it may not be recorded now.
func judge(changes []FieldChange, row ledgerRow) []FieldChange {
	for i := range changes {
		changes[i].Refused = amendable(changes[i].Field, row)
	}
	return changes
}

// changeNote summarises an amendment for the history.
func changeNote(changes []FieldChange, why string) string {
	parts := make([]string, len(changes))
	for i, c := range changes {
		parts[i] = fmt.Sprintf("%s: %s -> %s", c.Field, orNone(c.Recorded), orNone(c.Declared))
	}
	s := "definition amended: " + strings.Join(parts, "; ")
	if why != "" {
		s += " (" + why + ")"
	}
	return s
}
