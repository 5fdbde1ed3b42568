package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/schema"
	"github.com/tandem-go/tandem/services"
)

// scratchSQLite opens an empty SQLite database in a temporary directory,
// removed when the database is closed.
func scratchSQLite(ctx context.Context) (*dialect.DB, error) {
	dir, err := os.MkdirTemp("", "tandem-plan-*")
	if err != nil {
		return nil, err
	}
	db, err := dialect.Open(ctx, "sqlite://"+filepath.Join(dir, "plan.db"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	scratchDirs = append(scratchDirs, dir)
	return db, nil
}

// scratchDirs are removed when the command ends.
var scratchDirs []string

// tandemTables lists every table tandem owns: the registry and the ledger.
func tandemTables() []schema.Table {
	return append(services.Tables(), dualwrite.Tables()...)
}

func (a *app) schemaCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "schema", Short: "Create and migrate tandem's own tables"}
	var dryRun bool
	ensure := &cobra.Command{
		Use:   "ensure",
		Short: "Create missing tables and apply pending migrations (--dry-run prints the SQL)",
		Long: `Create tandem's tables where missing and apply pending migrations, one
version at a time, under a database lock so concurrent runs never apply a
step twice. A migration that was interrupted half way is completed.

With --dry-run the SQL is printed and nothing changes.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			open := a.openOrCreateDB
			if dryRun {
				open = a.openDB
			}
			db, err := open(cmd.Context())
			if dryRun && errors.Is(err, dialect.ErrNoSuchFile) {
				// Nothing to read: plan against an empty scratch database,
				// which yields the same SQL, and leave the path untouched.
				if !a.json {
					fmt.Fprintf(a.stderr, "tandem: %s does not exist yet; `tandem schema ensure` will create it with:\n", a.dsn)
				}
				db, err = scratchSQLite(cmd.Context())
			}
			if err != nil {
				return err
			}
			defer func() {
				db.Close()
				for _, d := range scratchDirs {
					os.RemoveAll(d)
				}
				scratchDirs = nil
			}()
			var opts []schema.Option
			if dryRun {
				opts = append(opts, schema.WithDryRun())
			}
			opts = append(opts, schema.WithLogger(a.logger()))
			results, err := schema.Ensure(cmd.Context(), db, tandemTables(), opts...)
			return a.emit(schemaView(results, dryRun), func(w io.Writer) { schema.Print(w, results, dryRun) }, err)
		},
	}
	ensure.Flags().BoolVar(&dryRun, "dry-run", false, "print the SQL that would run and change nothing")
	cmd.AddCommand(ensure)
	return cmd
}
