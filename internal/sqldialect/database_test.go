package sqldialect_test

import (
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/sqldialect"
)

func TestDatabaseSQL(t *testing.T) {
	tests := []struct {
		engine       dialect.Name
		name         string
		create, drop string
		wantErr      bool
	}{
		{dialect.Postgres, "tandem_demo_1", `CREATE DATABASE "tandem_demo_1"`, `DROP DATABASE IF EXISTS "tandem_demo_1" WITH (FORCE)`, false},
		{dialect.MySQL, "tandem_demo_1", "CREATE DATABASE `tandem_demo_1`", "DROP DATABASE IF EXISTS `tandem_demo_1`", false},
		{dialect.SQLite, "tandem_demo_1", "", "", true},
		{dialect.Postgres, `x"; DROP DATABASE y; --`, "", "", true},
		{dialect.MySQL, "a`b", "", "", true},
	}
	for _, tt := range tests {
		t.Run(string(tt.engine)+"/"+tt.name, func(t *testing.T) {
			d, err := sqldialect.For(tt.engine)
			if err != nil {
				t.Fatal(err)
			}
			create, err1 := sqldialect.CreateDatabaseSQL(d, tt.name)
			drop, err2 := sqldialect.DropDatabaseSQL(d, tt.name)
			if tt.wantErr {
				if err1 == nil || err2 == nil {
					t.Fatalf("accepted: %q, %q", create, drop)
				}
				return
			}
			if err1 != nil || err2 != nil || create != tt.create || drop != tt.drop {
				t.Fatalf("got %q, %q (%v, %v)", create, drop, err1, err2)
			}
		})
	}
}
