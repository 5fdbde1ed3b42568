package services

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// ListQuery selects instances for ListPage. Zero fields select everything
// but deleted instances, in one page.
type ListQuery struct {
	// Service, Release and State keep only the instances with that
	// service, release or state. State may be missing (derived from the
	// heartbeat's age, as everywhere) or deleted (which implies All).
	Service string
	Release int64
	State   State
	// All includes deleted instances.
	All bool
	// Limit is the page size; 0 returns every instance selected.
	Limit int
	// After is the Next of the previous page: the page starts after it.
	After string
}

// InstancePage is one page of instances, ordered by service and id.
type InstancePage struct {
	Instances []Instance
	// Next continues the listing (ListQuery.After); empty on the last page.
	Next string
}

// MaxPageSize bounds ListQuery.Limit.
const MaxPageSize = 10000

// cursor is what a page's Next encodes: the last instance it holds.
type cursor struct {
	Service string `json:"s"`
	ID      string `json:"i"`
}

func (c cursor) String() string {
	b, _ := json.Marshal(c) // two strings always marshal
	return base64.RawURLEncoding.EncodeToString(b)
}

func parseCursor(s string) (cursor, error) {
	var c cursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || c.ID == "" {
		return c, &ValidationError{Field: "after", Value: truncate(s), Reason: "not a cursor a page of this listing returned; list again from the start, without it"}
	}
	return c, nil
}

// ListPage returns one page of the instances q selects, ordered by service
// and id. Pages are read by key (after the last instance of the previous
// page), so each costs the rows it returns whatever page it is, and a
// listing paged while instances come and go skips none of those that stay.
func (r *Registry) ListPage(ctx context.Context, q ListQuery) (InstancePage, error) {
	if q.Limit < 0 || q.Limit > MaxPageSize {
		return InstancePage{}, fmt.Errorf("services: list: %w", &ValidationError{Field: "limit", Value: fmt.Sprint(q.Limit), Reason: fmt.Sprintf("a page holds 1 to %d instances (0: all of them)", MaxPageSize)})
	}
	if q.Release < 0 {
		return InstancePage{}, fmt.Errorf("services: list: %w", &ValidationError{Field: "release", Value: fmt.Sprint(q.Release), Reason: "a release is a positive integer"})
	}
	if q.State != "" {
		st, err := ParseState(string(q.State))
		if err != nil {
			return InstancePage{}, fmt.Errorf("services: list: %w", err)
		}
		q.State = st
	}
	sql := `SELECT ` + selectColumns + ` FROM ` + InstancesTable + ` WHERE 1 = 1`
	var args []any
	if !q.All && q.State != StateDeleted {
		sql += ` AND state <> ?`
		args = append(args, string(StateDeleted))
	}
	if q.Service != "" {
		sql += ` AND service = ?`
		args = append(args, q.Service)
	}
	if q.Release != 0 {
		sql += ` AND app_release = ?`
		args = append(args, q.Release)
	}
	// Missing is derived: a lapsed heartbeat on a row stored up or draining.
	cutoff := r.now().UTC().Add(-r.missingAfter)
	switch q.State {
	case "":
	case StateMissing:
		sql += ` AND state IN (?, ?) AND heartbeat_at < ?`
		args = append(args, string(StateUp), string(StateDraining), cutoff)
	case StateUp, StateDraining:
		sql += ` AND state = ? AND heartbeat_at >= ?`
		args = append(args, string(q.State), cutoff)
	default:
		sql += ` AND state = ?`
		args = append(args, string(q.State))
	}
	if q.After != "" {
		c, err := parseCursor(q.After)
		if err != nil {
			return InstancePage{}, fmt.Errorf("services: list: %w", err)
		}
		// The prefix bound lets every engine read a range of the
		// (service, instance_id) index in order and stop at the limit
		// (MariaDB would scan the table for a row-value comparison).
		sql += ` AND service >= ? AND (service > ? OR instance_id > ?)`
		args = append(args, c.Service, c.Service, c.ID)
	}
	sql += ` ORDER BY service, instance_id`
	if q.Limit > 0 {
		// One more than the page: whether there is a next one.
		sql += fmt.Sprintf(` LIMIT %d`, q.Limit+1)
	}
	var rows []row
	if err := r.db.SelectContext(ctx, &rows, r.db.Rebind(sql), args...); err != nil {
		return InstancePage{}, fmt.Errorf("services: list: %w", err)
	}
	var p InstancePage
	if q.Limit > 0 && len(rows) > q.Limit {
		rows = rows[:q.Limit]
		last := rows[len(rows)-1]
		p.Next = cursor{Service: last.Service, ID: last.ID}.String()
	}
	p.Instances = make([]Instance, 0, len(rows))
	for _, w := range rows {
		in, err := r.instance(w)
		if err != nil {
			return InstancePage{}, fmt.Errorf("services: list: %w", err)
		}
		p.Instances = append(p.Instances, in)
	}
	return p, nil
}
