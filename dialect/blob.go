package dialect

// BlobType is the column type for opaque bytes, such as versioned stored
// objects: BLOB on SQLite, BYTEA on PostgreSQL, LONGBLOB on MySQL/MariaDB.
func BlobType(d Dialect) string {
	switch d.Name() {
	case Postgres:
		return "BYTEA"
	case MySQL:
		return "LONGBLOB"
	}
	return "BLOB"
}
