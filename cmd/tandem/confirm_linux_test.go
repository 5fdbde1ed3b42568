package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
)

// openPTY opens a pseudo-terminal: what is written to master is read from
// slave, a terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slave.Close() })
	return master, slave
}

// TestConfirm answers the contract's question on a terminal: anything but
// y leaves the database as it was (exit 2), y contracts; with --yes
// nothing is asked.
func TestConfirm(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer string
		code   int
		phase  string
	}{
		{"empty", "\n", exitBadInput, "write-new"},
		{"no", "no\n", exitBadInput, "write-new"},
		{"y", "y\n", exitOK, "contracted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, dsn, db := finalizedMove(t, dialect.SQLite)
			before := dbtest.Dump(t, db)
			master, slave := openPTY(t)
			old := stdin
			stdin = slave
			defer func() { stdin = old }()
			if _, err := master.WriteString(tc.answer); err != nil {
				t.Fatal(err)
			}
			var out, errOut bytes.Buffer
			code := run(context.Background(), []string{"--db", dsn, "moves", "advance", "price_cents"}, &out, &errOut)
			if code != tc.code || !strings.Contains(errOut.String(), "Contracting move price_cents (drop column products.price) cannot be undone. No backup is taken") ||
				!strings.Contains(errOut.String(), "Continue? [y/N]") {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.code, out.String(), errOut.String())
			}
			if got := dbtest.Dump(t, db); tc.code != exitOK && got != before {
				t.Fatalf("not confirmed, and the database changed:\n%s", got)
			}
			if tc.code != exitOK && !strings.Contains(errOut.String(), "not confirmed; nothing changed") {
				t.Fatalf("refusal: %s", errOut.String())
			}
			var phase string
			if err := db.Get(&phase, `SELECT phase FROM tandem_moves WHERE name = 'price_cents'`); err != nil || phase != tc.phase {
				t.Fatalf("phase %q (%v), want %s", phase, err, tc.phase)
			}
		})
	}
	t.Run("finalize", func(t *testing.T) {
		_, dsn, db := walkedTo(t, dialect.SQLite)
		master, slave := openPTY(t)
		old := stdin
		stdin = slave
		defer func() { stdin = old }()
		for _, answer := range []string{"n\n", "yes\n"} {
			if _, err := master.WriteString(answer); err != nil {
				t.Fatal(err)
			}
			var out, errOut bytes.Buffer
			code := run(context.Background(), []string{"--db", dsn, "moves", "finalize", "price_cents"}, &out, &errOut)
			var fin int
			if err := db.Get(&fin, `SELECT COUNT(*) FROM tandem_moves WHERE name = 'price_cents' AND finalized_at IS NOT NULL`); err != nil {
				t.Fatal(err)
			}
			want, wantFin := exitBadInput, 0
			if answer == "yes\n" {
				want, wantFin = exitOK, 1
			}
			if code != want || fin != wantFin || !strings.Contains(errOut.String(), "Finalizing move price_cents (it closes the rollback window") {
				t.Fatalf("answer %q: exit %d, finalized %d\n%s%s", answer, code, fin, out.String(), errOut.String())
			}
		}
	})
	t.Run("--yes asks nothing", func(t *testing.T) {
		_, dsn, _ := finalizedMove(t, dialect.SQLite)
		_, slave := openPTY(t)
		old := stdin
		stdin = slave
		defer func() { stdin = old }()
		var out, errOut bytes.Buffer
		if code := run(context.Background(), []string{"--db", dsn, "moves", "advance", "price_cents", "--yes"}, &out, &errOut); code != exitOK || strings.Contains(errOut.String(), "Continue?") {
			t.Fatalf("exit %d\n%s%s", code, out.String(), errOut.String())
		}
	})
}
