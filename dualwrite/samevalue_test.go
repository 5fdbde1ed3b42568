package dualwrite_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/move"
)

func TestSameValue(t *testing.T) {
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		a, b any
		want bool
	}{
		{nil, nil, true},
		{nil, int64(0), false},
		{"", nil, false},
		{int64(1_000_000_000_000), int64(1_000_000_000_999), false},
		{int64(1_000_000_000_000), int64(1_000_000_000_000), true},
		{int64(1<<53 + 1), int64(1 << 53), false},
		{int64(1<<53 + 1), float64(1 << 53), false},
		{int64(1 << 53), float64(1 << 53), true},
		{int64(7), 7, true},
		{int32(7), uint64(7), true},
		{uint64(1<<64 - 1), int64(-1), false},
		{12.5, 12.5, true},
		{12.5, float32(12.5), true},
		{0.30000000000000004, 0.3, false},
		{int64(12), 12.5, false},
		// Text against text is text: no trimming, no numeric reading.
		{"007", "7", false},
		{" 42", "42", false},
		{"1.0", "1", false},
		{"abc", "abc", true},
		// Text against a number: a DECIMAL column as the driver returns it.
		{"12.50", 12.5, true},
		{"0.10", 0.1, true},
		{"12.50", int64(12), false},
		{"7.0", int64(7), true},
		{"-7", int64(-7), true},
		{"1000000000000.000", int64(1_000_000_000_000), true},
		{"1000000000000.001", int64(1_000_000_000_000), false},
		{"9007199254740993", int64(1<<53 + 1), true},
		{"9007199254740992", int64(1<<53 + 1), false},
		{"1e3", int64(1000), true},
		{"007", int64(7), false},
		{" 42", int64(42), false},
		{"42 ", int64(42), false},
		{"+42", int64(42), false},
		{"1/2", 0.5, false},
		{"0x10", int64(16), false},
		{"NaN", 0.0, false},
		{"", int64(0), false},
		{[]byte("12.50"), 12.5, true},
		// Booleans: a bool, or an integer 0/1, never text.
		{true, true, true},
		{true, false, false},
		{true, int64(1), true},
		{false, int64(0), true},
		{true, int64(2), false},
		{true, "1", false},
		{"true", true, false},
		{false, "0", false},
		{at, at.In(time.FixedZone("x", 3600)), true},
		{at, at.Add(time.Microsecond), false},
	} {
		t.Run(fmt.Sprintf("%T(%v)/%T(%v)", tt.a, tt.a, tt.b, tt.b), func(t *testing.T) {
			if got := dualwrite.SameValue(tt.a, tt.b); got != tt.want {
				t.Errorf("SameValue(%#v, %#v) = %v, want %v", tt.a, tt.b, got, tt.want)
			}
			if got := dualwrite.SameValue(tt.b, tt.a); got != tt.want {
				t.Errorf("SameValue(%#v, %#v) = %v, want %v (reversed)", tt.b, tt.a, got, tt.want)
			}
		})
	}
}

func TestGoVerifyRecordsRowsItCannotTransform(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		m := priceMove()
		sqlForward := m.Forward.Go
		// The Go form refuses the price of row 7 (7.07), which the SQL
		// backfill converted without complaint.
		m.Forward.Go = func(v any) (any, error) {
			if fmt.Sprint(v) == "7.07" {
				return nil, errors.New("no price like 7.07")
			}
			return sqlForward(v)
		}
		e := newEnv(t, db, 30, m)
		e.toWriteBoth()
		if _, err := e.mg.Backfill(e.ctx, m.Name); err != nil {
			t.Fatal(err)
		}
		v, err := e.mg.Verify(e.ctx, m.Name, dualwrite.WithGoTransforms())
		if err != nil || v.Mode != "go" || v.Failed != 1 || v.Mismatches != 0 || len(v.FailedRows) != 1 || v.FailedRows[0].Key != "[7]" || !strings.Contains(v.FailedRows[0].Error, "7.07") {
			t.Fatalf("verify: %+v %v", v, err)
		}
		_, err = e.mg.Advance(e.ctx, m.Name, move.ReadNew)
		if bs := blockers(t, err); kinds(bs) != "failed-rows" || bs[0].Rows != 1 {
			t.Fatalf("read-new after a verify with a failed row: %v", err)
		}
		if st := e.status(); st.FailedRows != 1 {
			t.Fatalf("status failed rows: %d", st.FailedRows)
		}
		// A second verify records the row once.
		if v, err := e.mg.Verify(e.ctx, m.Name, dualwrite.WithGoTransforms()); err != nil || v.Failed != 1 || e.status().FailedRows != 1 {
			t.Fatalf("verify again: %+v %v", v, err)
		}
	})
}
