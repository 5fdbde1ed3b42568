package sqldialect

import "github.com/tandem-go/tandem/dialect"

// BlobType is the column type for opaque bytes, such as versioned stored
// objects: BLOB on SQLite, BYTEA on PostgreSQL, LONGBLOB on MySQL/MariaDB.
func BlobType(d Dialect) string {
	switch d.Name() {
	case dialect.Postgres:
		return "BYTEA"
	case dialect.MySQL:
		return "LONGBLOB"
	}
	return "BLOB"
}
