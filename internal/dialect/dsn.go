package dialect

import (
	"net/url"
	"path/filepath"
	"strings"
)

const redactedPassword = "xxxxx"

// Name is the engine a DSN points at.
type Name string

// The supported engines.
const (
	SQLite   Name = "sqlite"
	Postgres Name = "postgres"
	MySQL    Name = "mysql"
)

// DSN is a parsed tandem DSN: which engine, and what its driver needs.
type DSN struct {
	Engine Name
	// driver and source are what database/sql.Open takes.
	driver   string
	source   string
	password string
	redacted string
}

// Redacted returns the DSN with its password replaced, safe to print.
func (d DSN) Redacted() string { return d.redacted }

// String is Redacted, so a DSN never prints its password by accident.
func (d DSN) String() string { return d.redacted }

// Driver returns the database/sql driver name and data source; the source may
// contain the password and must not be printed.
func (d DSN) Driver() (driver, source string) { return d.driver, d.source }

// ParseDSN parses one of the documented DSN forms.
func ParseDSN(raw string) (DSN, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return DSN{}, &DSNError{DSN: "", Reason: "empty DSN"}
	}
	scheme, rest, hasScheme := strings.Cut(raw, "://")
	if !hasScheme {
		if strings.Contains(raw, ":") && !strings.HasPrefix(raw, "/") && !strings.HasPrefix(raw, ".") {
			// Something like "postgres:foo": neither a path nor a URL.
			return DSN{}, &DSNError{DSN: redactRaw(raw), Reason: "missing scheme:// (a bare value is read as a SQLite file path, which cannot contain ':')"}
		}
		return sqliteDSN(raw, raw)
	}
	switch strings.ToLower(scheme) {
	case "sqlite", "sqlite3", "file":
		if rest == "" {
			return DSN{}, &DSNError{DSN: raw, Reason: "no file path after sqlite://"}
		}
		path, _, _ := strings.Cut(rest, "?")
		return sqliteDSN(raw, path)
	case "postgres", "postgresql":
		return postgresDSN(raw)
	case "mysql", "mariadb":
		return mysqlDSN(raw)
	default:
		return DSN{}, &DSNError{DSN: redactRaw(raw), Reason: "unknown engine " + strings.ToLower(scheme) + ": want sqlite, postgres or mysql"}
	}
}

func sqliteDSN(raw, path string) (DSN, error) {
	if strings.ContainsAny(path, "?#\x00") {
		return DSN{}, &DSNError{DSN: raw, Reason: "SQLite path contains '?', '#' or NUL"}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return DSN{}, &DSNError{DSN: raw, Reason: "cannot resolve path: " + err.Error()}
	}
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_busy_timeout", "10000")
	q.Set("_txlock", "immediate") // writers take the write lock up front: no deadlock upgrades
	q.Set("_foreign_keys", "1")
	q.Set("_synchronous", "NORMAL")
	return DSN{
		Engine:   SQLite,
		driver:   "sqlite3",
		source:   "file:" + abs + "?" + q.Encode(),
		redacted: "sqlite://" + abs,
	}, nil
}

func postgresDSN(raw string) (DSN, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return DSN{}, &DSNError{DSN: redactRaw(raw), Reason: "not a URL: " + scrub(err, passwordOf(raw)).Error()}
	}
	if u.Host == "" {
		return DSN{}, &DSNError{DSN: redactURL(u), Reason: "no host"}
	}
	if strings.Trim(u.Path, "/") == "" {
		return DSN{}, &DSNError{DSN: redactURL(u), Reason: "no database name after the host"}
	}
	pw, _ := u.User.Password()
	u.Scheme = "postgres"
	return DSN{Engine: Postgres, driver: "pgx", source: u.String(), password: pw, redacted: redactURL(u)}, nil
}

func mysqlDSN(raw string) (DSN, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return DSN{}, &DSNError{DSN: redactRaw(raw), Reason: "not a URL: " + scrub(err, passwordOf(raw)).Error()}
	}
	if u.Host == "" {
		return DSN{}, &DSNError{DSN: redactURL(u), Reason: "no host"}
	}
	db := strings.Trim(u.Path, "/")
	if db == "" || strings.Contains(db, "/") {
		return DSN{}, &DSNError{DSN: redactURL(u), Reason: "want exactly one database name after the host"}
	}
	host := u.Host
	if u.Port() == "" {
		host += ":3306"
	}
	var user, pw string
	if u.User != nil {
		user = u.User.Username()
		pw, _ = u.User.Password()
	}
	q := u.Query()
	q.Set("parseTime", "true")
	q.Set("multiStatements", "false")
	if q.Get("loc") == "" {
		q.Set("loc", "UTC")
	}
	if q.Get("time_zone") == "" {
		q.Set("time_zone", "'+00:00'")
	}
	cred := user
	if pw != "" {
		cred += ":" + pw
	}
	src := cred + "@tcp(" + host + ")/" + db + "?" + q.Encode()
	if cred == "" {
		src = "tcp(" + host + ")/" + db + "?" + q.Encode()
	}
	return DSN{Engine: MySQL, driver: "mysql", source: src, password: pw, redacted: redactURL(u)}, nil
}

func redactURL(u *url.URL) string {
	c := *u
	if c.User != nil {
		if _, ok := c.User.Password(); ok {
			c.User = url.UserPassword(c.User.Username(), redactedPassword)
		}
	}
	return c.String()
}

// passwordOf extracts a password from a raw URL-ish string that url.Parse
// rejected, so it can be scrubbed from the message.
func passwordOf(raw string) string {
	_, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return ""
	}
	userinfo, _, ok := strings.Cut(rest, "@")
	if !ok {
		return ""
	}
	_, pw, ok := strings.Cut(userinfo, ":")
	if !ok {
		return ""
	}
	return pw
}

func redactRaw(raw string) string {
	if pw := passwordOf(raw); pw != "" {
		return strings.Replace(raw, ":"+pw+"@", ":"+redactedPassword+"@", 1)
	}
	return raw
}
