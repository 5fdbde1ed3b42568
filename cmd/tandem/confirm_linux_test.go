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
