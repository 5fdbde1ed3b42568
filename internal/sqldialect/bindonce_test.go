package sqldialect_test

import (
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/sqldialect"
)

func TestUpdateOneValue(t *testing.T) {
	const ref = "\x00v\x00"
	for _, tt := range []struct {
		name dialect.Name
		want string
	}{
		{dialect.SQLite, `UPDATE "t" SET "old" = ('?' || ?1 || ?1), "new" = ?1 WHERE "a" = ?2 AND "b" = ?3`},
		{dialect.Postgres, `UPDATE "t" SET "old" = ('?' || $1 || $1), "new" = $1 WHERE "a" = $2 AND "b" = $3`},
		{dialect.MySQL, "UPDATE `t` JOIN (SELECT ? AS v) tandem_value SET `t`.`old` = ('?' || tandem_value.v || tandem_value.v), `t`.`new` = tandem_value.v WHERE `t`.`a` = ? AND `t`.`b` = ?"},
	} {
		t.Run(string(tt.name), func(t *testing.T) {
			d, err := sqldialect.For(tt.name)
			if err != nil {
				t.Fatal(err)
			}
			q := func(s string) string { return sqldialect.MustQuote(d, s) }
			got := sqldialect.UpdateOneValue(d, q("t"), []string{q("old"), q("new")}, []string{"('?' || " + ref + " || " + ref + ")", ref}, ref, []string{q("a"), q("b")})
			if got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}
