package sqldialect

// BlobType is the column type for opaque bytes, such as versioned stored
// objects: BLOB on SQLite, BYTEA on PostgreSQL, LONGBLOB on MySQL/MariaDB.
func BlobType(d Dialect) string { return d.BlobType() }
