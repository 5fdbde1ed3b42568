package backup_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/backup"
)

// A copy of a SQLite database before a step that cannot be undone; the
// copy is itself a database. A second backup under the same name is
// refused.
func ExampleTake() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "backup-example-")
	defer os.RemoveAll(dir)
	db, err := dialect.Open(ctx, "sqlite://"+filepath.Join(dir, "app.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	db.MustExec(`CREATE TABLE items (id INTEGER PRIMARY KEY, price REAL)`)
	db.MustExec(`INSERT INTO items (id, price) VALUES (1, 1.5), (2, 2.25)`)

	res, err := backup.Take(ctx, db, filepath.Join(dir, "before-contract.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Tool, filepath.Base(res.Path), res.Bytes > 0)

	copyDB, err := dialect.Open(ctx, "sqlite://"+res.Path, dialect.WithMustExist())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer copyDB.Close()
	var n int
	_ = copyDB.GetContext(ctx, &n, `SELECT COUNT(*) FROM items`)
	fmt.Println("rows in the copy:", n)

	_, err = backup.Take(ctx, db, res.Path)
	fmt.Println(errors.Is(err, backup.ErrExists))
	// Output:
	// VACUUM INTO before-contract.db true
	// rows in the copy: 2
	// true
}
