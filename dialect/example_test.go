package dialect_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tandem-go/tandem/dialect"
)

func ExampleParseDSN() {
	d, _ := dialect.ParseDSN("postgres://app:s3cret@db.internal:5432/orders?sslmode=disable")
	fmt.Println(d.Engine, d.Redacted())
	_, err := dialect.ParseDSN("oracle://app@db/orders")
	fmt.Println(err)
	// Output:
	// postgres postgres://app:xxxxx@db.internal:5432/orders?sslmode=disable
	// bad database DSN "oracle://...": unknown engine oracle: want sqlite, postgres or mysql (use sqlite:///abs/path.db, postgres://user:pass@host:port/db or mysql://user:pass@host:port/db)
}

func ExampleIsRetryable() {
	dir, _ := os.MkdirTemp("", "tandem-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	db, err := dialect.Open(ctx, "sqlite://"+filepath.Join(dir, "app.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)`); err != nil {
		fmt.Println(err)
		return
	}
	// Run the whole transaction again when the engine reports a deadlock,
	// a lock timeout or a serialization failure; any other error is final.
	create := func() error {
		return dialect.InTx(ctx, db, func(q dialect.Querier) error {
			_, err := q.ExecContext(ctx, q.Rebind(`INSERT INTO items (id, name) VALUES (?, ?)`), 1, "bolt")
			return err
		})
	}
	for attempt := 1; ; attempt++ {
		err = create()
		if !dialect.IsRetryable(err) || attempt == 5 {
			break
		}
		time.Sleep(time.Duration(attempt) * 10 * time.Millisecond)
	}
	fmt.Println("first create:", err)
	err = create()
	fmt.Println("second create retryable:", dialect.IsRetryable(err), dialect.Classify(err) == "")
	// Output:
	// first create: <nil>
	// second create retryable: false true
}
