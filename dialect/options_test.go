package dialect_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/tandem-go/tandem/dialect"
)

// Open refuses an option value out of range before it opens anything.
func TestOpenOptionsValidated(t *testing.T) {
	dsn := "sqlite://" + filepath.Join(t.TempDir(), "x.db")
	for _, o := range []dialect.Option{dialect.WithTimeout(0), dialect.WithTimeout(-1), dialect.WithLogger(nil), {}} {
		if _, err := dialect.Open(context.Background(), dsn, o); !errors.Is(err, dialect.ErrInvalidOption) {
			t.Fatalf("Open with %v: %v", o, err)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(dsn[len("sqlite://"):]), "*")); len(m) != 0 {
		t.Fatalf("a refused Open created %v", m)
	}
}
