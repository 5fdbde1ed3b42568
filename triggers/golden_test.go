package triggers_test

import (
	"flag"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/triggers"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestGoldenSQL(t *testing.T) {
	names := make([]string, 0, len(testMoves))
	for n := range testMoves {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		for _, d := range []dialect.Name{dialect.SQLite, dialect.Postgres, dialect.MySQL} {
			t.Run(name+"/"+string(d), func(t *testing.T) {
				set, err := triggers.ForMove(d, testMoves[name])
				if err != nil {
					t.Fatal(err)
				}
				got := set.SQL() + "\n" + set.DropSQL()
				path := filepath.Join("testdata", name+"."+string(d)+".golden")
				if *update {
					if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run go test ./triggers -run TestGoldenSQL -update)", err)
				}
				if got != string(want) {
					t.Errorf("generated SQL differs from %s (rerun with -update if intended):\n%s", path, got)
				}
			})
		}
	}
}
