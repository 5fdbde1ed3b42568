package migfile_test

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/migfile"
	"github.com/tandem-go/tandem/move"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// planMoves are the moves of dualwrite's golden plan: a same-table move
// without triggers and a cross-table move with them, plus the same-table
// move with triggers.
func planMoves(t *testing.T) []move.Move {
	t.Helper()
	p, err := dualwrite.LoadPlan(filepath.Join("..", "dualwrite", "testdata", "plan.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	moves := p.Moves
	withTriggers := moves[0]
	withTriggers.Name, withTriggers.Triggers = "price_trig", true
	return append(moves, withTriggers)
}

func join(files []migfile.File) string {
	var b strings.Builder
	for _, f := range files {
		b.WriteString("==> " + f.Name + " <==\n" + f.Content)
	}
	return b.String()
}

// TestGolden: the goose and golang-migrate files of every move's phases
// with DDL, on every engine.
func TestGolden(t *testing.T) {
	for _, m := range planMoves(t) {
		for _, d := range []dialect.Name{dialect.SQLite, dialect.Postgres, dialect.MySQL} {
			for _, f := range []migfile.Format{migfile.Goose, migfile.Migrate} {
				var b strings.Builder
				for _, p := range []move.Phase{move.WriteBoth, move.Contracted} {
					files, err := migfile.Generate(m, d, p, f, migfile.WithVersion("00042"))
					if err != nil {
						t.Fatalf("%s %s %s %s: %v", m.Name, d, f, p, err)
					}
					b.WriteString(join(files))
				}
				golden := filepath.Join("testdata", m.Name+"."+string(d)+"."+string(f)+".golden")
				if *update {
					if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test -update to create it)", err)
				}
				if b.String() != string(want) {
					t.Errorf("%s differs (go test -update rewrites it):\n%s", golden, b.String())
				}
			}
		}
	}
}

func TestGenerate(t *testing.T) {
	m := planMoves(t)[2] // same table, with triggers
	pg, my := dialect.Postgres, dialect.MySQL
	clock := migfile.WithClock(func() time.Time { return time.Date(2026, 3, 1, 12, 30, 5, 0, time.FixedZone("CET", 3600)) })
	for _, tc := range []struct {
		name   string
		d      dialect.Name
		to     move.Phase
		f      migfile.Format
		opts   []migfile.Option
		names  []string
		has    []string
		hasNot []string
		err    error
	}{
		{name: "goose: one file, bodies delimited", d: pg, to: move.WriteBoth, f: migfile.Goose, opts: []migfile.Option{clock},
			names: []string{"20260301113005_tandem_price_trig_write_both.sql"},
			has:   []string{"-- +goose Up\n", "-- +goose Down\n", "-- +goose StatementBegin\nCREATE OR REPLACE FUNCTION", "$tandem$;\n-- +goose StatementEnd\n", `ALTER TABLE "products" DROP COLUMN "price_cents";`}},
		{name: "goose: contract says it has no inverse", d: pg, to: move.Contracted, f: migfile.Goose, opts: []migfile.Option{migfile.WithVersion("7")},
			names:  []string{"7_tandem_price_trig_contracted.sql"},
			has:    []string{"-- No inverse: it dropped column products.price and its data", "never apply it before the finalize gate", "-- +goose Down\n"},
			hasNot: []string{"ADD COLUMN"}},
		{name: "migrate: a pair", d: pg, to: move.WriteBoth, f: migfile.Migrate, opts: []migfile.Option{migfile.WithVersion("0041")},
			names: []string{"0041_tandem_price_trig_write_both.up.sql", "0041_tandem_price_trig_write_both.down.sql"}},
		{name: "migrate: a contract has no down file", d: pg, to: move.Contracted, f: migfile.Migrate, opts: []migfile.Option{migfile.WithVersion("0041")},
			names: []string{"0041_tandem_price_trig_contracted.up.sql"},
			has:   []string{"No down file"}},
		{name: "migrate on mysql: one statement a pair", d: my, to: move.WriteBoth, f: migfile.Migrate, opts: []migfile.Option{migfile.WithVersion("0098")},
			names: []string{"0098_tandem_price_trig_write_both_1.up.sql", "0098_tandem_price_trig_write_both_1.down.sql",
				"0099_tandem_price_trig_write_both_2.up.sql", "0099_tandem_price_trig_write_both_2.down.sql",
				"0100_tandem_price_trig_write_both_3.up.sql", "0100_tandem_price_trig_write_both_3.down.sql"}},
		{name: "no DDL at read-new", d: pg, to: move.ReadNew, f: migfile.Goose, err: migfile.ErrInvalid},
		{name: "plain says there is no DDL", d: pg, to: move.ReadNew, f: migfile.Plain, has: []string{"-- no DDL: entering read-new"},
			opts: []migfile.Option{migfile.WithVersion("1")}, names: []string{"1_tandem_price_trig_read_new.sql"}},
		{name: "unknown format", d: pg, to: move.WriteBoth, f: "flyway", err: migfile.ErrInvalid},
		{name: "bad version", d: pg, to: move.WriteBoth, f: migfile.Goose, opts: []migfile.Option{migfile.WithVersion("v1")}, err: migfile.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files, err := migfile.Generate(m, tc.d, tc.to, tc.f, tc.opts...)
			if tc.err != nil {
				var ie *migfile.InputError
				if !errors.Is(err, tc.err) || !errors.As(err, &ie) || ie.Reason == "" {
					t.Fatalf("err = %v, want %v with a reason", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, f := range files {
				names = append(names, f.Name)
			}
			if strings.Join(names, " ") != strings.Join(tc.names, " ") {
				t.Fatalf("files %v, want %v", names, tc.names)
			}
			all := join(files)
			for _, s := range tc.has {
				if !strings.Contains(all, s) {
					t.Errorf("no %q in\n%s", s, all)
				}
			}
			for _, s := range tc.hasNot {
				if strings.Contains(all, s) {
					t.Errorf("%q in\n%s", s, all)
				}
			}
		})
	}
}

func TestNextVersionAndWrite(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	for _, tc := range []struct {
		name  string
		files []string
		want  string
	}{
		{"missing directory", nil, "20260301120000"},
		{"sequence keeps its width", []string{"00001_init.sql", "00041_users.up.sql", "00041_users.down.sql", "README.md"}, "00042"},
		{"by time, behind the clock", []string{"20250101000000_init.sql"}, "20260301120000"},
		{"by time, ahead of the clock", []string{"20270101000000_init.sql"}, "20270101000001"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			for _, f := range tc.files {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(d, f), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := migfile.NextVersion(d, now)
			if err != nil || got != tc.want {
				t.Fatalf("NextVersion = %q, %v; want %q", got, err, tc.want)
			}
		})
	}

	out := filepath.Join(dir, "migrations")
	files := []migfile.File{{Name: "00042_a.up.sql", Content: "up"}, {Name: "00042_a.down.sql", Content: "down"}}
	paths, err := migfile.Write(out, files)
	if err != nil || len(paths) != 2 {
		t.Fatalf("Write = %v, %v", paths, err)
	}
	if b, err := os.ReadFile(paths[1]); err != nil || string(b) != "down" {
		t.Fatalf("%s: %q %v", paths[1], b, err)
	}
	// In the way: the same name, or the same version under another name
	// (42 and 00042 are one version to both tools). Nothing is written.
	for _, clash := range [][]migfile.File{
		{{Name: "00043_b.sql"}, {Name: "00042_a.up.sql"}},
		{{Name: "00043_b.sql"}, {Name: "42_other.sql"}},
	} {
		if _, err := migfile.Write(out, clash); !errors.Is(err, migfile.ErrExists) {
			t.Fatalf("Write over %v: %v, want ErrExists", clash, err)
		}
		entries, _ := os.ReadDir(out)
		if len(entries) != 2 {
			t.Fatalf("a refused Write left files behind: %v", entries)
		}
	}
}
