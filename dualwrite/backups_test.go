package dualwrite_test

import (
	"errors"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/move"
)

func TestIrreversible(t *testing.T) {
	for _, tc := range []struct {
		from, to move.Phase
		want     bool
	}{
		{move.WriteNew, move.Contracted, true},
		{move.Legacy, move.WriteBoth, false},
		{move.WriteBoth, move.ReadNew, false},
		{move.ReadNew, move.WriteNew, false},
		{move.WriteNew, move.ReadNew, false}, // a rollback, while the window is open
		{move.WriteBoth, move.Legacy, false},
		{move.Contracted, move.Contracted, false}, // already there: nothing happens
	} {
		if got := dualwrite.Irreversible(tc.from, tc.to); got != tc.want {
			t.Errorf("Irreversible(%s, %s) = %v, want %v", tc.from, tc.to, got, tc.want)
		}
	}
}

// TestRecordBackup records backups on every engine: numbered per move,
// listed by status oldest first with what was recorded; one lacking its
// file or tool, or of an unknown move, is refused.
func TestRecordBackup(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		e := newEnv(t, db, 3, priceMove())
		if st := e.status(); len(st.Backups) != 0 {
			t.Fatalf("backups before any: %+v", st.Backups)
		}
		at := time.Date(2026, 12, 1, 12, 0, 0, 123456000, time.UTC)
		var want []dualwrite.Backup
		for i, path := range []string{"/var/backups/a.db", "/var/backups/b.db"} {
			b, err := e.mg.RecordBackup(e.ctx, dualwrite.Backup{Move: e.m.Name, Before: "contracted", Path: path, Host: "ops-1",
				Bytes: int64(1000 + i), Tool: "VACUUM INTO", TakenAt: at.Add(time.Duration(i) * time.Second)})
			if err != nil {
				t.Fatal(err)
			}
			if b.Seq != int64(i+1) {
				t.Fatalf("backup %d has seq %d", i, b.Seq)
			}
			want = append(want, b)
		}
		got := e.status().Backups
		if len(got) != 2 {
			t.Fatalf("status lists %+v", got)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("backup %d: status has %+v, recorded %+v", i, got[i], want[i])
			}
		}
		for _, bad := range []dualwrite.Backup{
			{Move: e.m.Name, Before: "contracted", Tool: "pg_dump", TakenAt: at},
			{Move: e.m.Name, Before: "contracted", Path: "/x", TakenAt: at},
			{Move: e.m.Name, Before: "sideways", Path: "/x", Tool: "pg_dump", TakenAt: at},
			{Move: e.m.Name, Before: "contracted", Path: "/x", Tool: "pg_dump"},
		} {
			if _, err := e.mg.RecordBackup(e.ctx, bad); !errors.Is(err, dualwrite.ErrBadBackup) {
				t.Errorf("RecordBackup(%+v): %v", bad, err)
			}
		}
		if _, err := e.mg.RecordBackup(e.ctx, dualwrite.Backup{Move: "nope", Before: "contracted", Path: "/x", Tool: "t", TakenAt: at}); !errors.Is(err, dualwrite.ErrUnknownMove) {
			t.Errorf("unknown move: %v", err)
		}
	})
}

// TestFinalizeGate: closed before write-new (what Finalize would refuse),
// open at write-new, and finalized once Finalize ran; it writes nothing.
func TestFinalizeGate(t *testing.T) {
	db := dbtest.Open(t, dialect.SQLite)
	e := newEnv(t, db, 3, priceMove())
	g, fin, err := e.mg.FinalizeGate(e.ctx, e.m.Name)
	if err != nil || g.Open || fin || g.Op != dualwrite.OpFinalize {
		t.Fatalf("at legacy: %+v finalized %v, %v", g, fin, err)
	}
	for _, p := range []move.Phase{move.WriteBoth, move.ReadNew, move.WriteNew} {
		if p == move.ReadNew {
			if _, err := e.mg.Backfill(e.ctx, e.m.Name); err != nil {
				t.Fatal(err)
			}
			if _, err := e.mg.Verify(e.ctx, e.m.Name); err != nil {
				t.Fatal(err)
			}
		}
		e.advance(p)
	}
	before := dbtest.Dump(t, db)
	if g, fin, err = e.mg.FinalizeGate(e.ctx, e.m.Name); err != nil || !g.Open || fin {
		t.Fatalf("at write-new: %+v finalized %v, %v", g, fin, err)
	}
	if after := dbtest.Dump(t, db); after != before {
		t.Fatal("FinalizeGate wrote")
	}
	if _, err := e.mg.Finalize(e.ctx, e.m.Name, "test"); err != nil {
		t.Fatal(err)
	}
	if g, fin, err = e.mg.FinalizeGate(e.ctx, e.m.Name); err != nil || !g.Open || !fin {
		t.Fatalf("finalized: %+v finalized %v, %v", g, fin, err)
	}
}
