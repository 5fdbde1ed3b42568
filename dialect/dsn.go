package dialect

import (
	"net/url"
	"path/filepath"
	"regexp"
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
	secrets  []string // every password the DSN carries, scrubbed from errors
	path     string   // the SQLite file
	readOnly bool     // SQLite opened read-only (mode=ro, or a file it may not write)
	redacted string
}

// Redacted returns the DSN with its password replaced, safe to print.
func (d DSN) Redacted() string { return d.redacted }

// String is Redacted, so a DSN never prints its password by accident.
func (d DSN) String() string { return d.redacted }

// Path is the SQLite file, "" for a server engine.
func (d DSN) Path() string { return d.path }

// Driver returns the database/sql driver name and data source; the source may
// contain the password and must not be printed.
func (d DSN) Driver() (driver, source string) { return d.driver, d.source }

// ParseDSN parses one of the documented DSN forms. Its errors (*DSNError)
// never carry a secret: a DSN that parses is shown redacted, one that does
// not is shown as its scheme only (see RedactDSN), with a hint.
// conninfoKey finds a key of libpq's key=value connection strings at the
// start of a bare value or after a space.
var conninfoKey = regexp.MustCompile(`(?i)(^|\s)(host|hostaddr|user|password|dbname|port|sslmode|passfile|service)\s*=`)

func ParseDSN(raw string) (DSN, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return DSN{}, &DSNError{DSN: "", Reason: "empty DSN"}
	}
	if strings.ContainsAny(raw, "\x00\n\r") {
		return DSN{}, &DSNError{DSN: hiddenValue(raw), Reason: "contains a NUL or line break"}
	}
	scheme, rest, hasScheme := strings.Cut(raw, "://")
	if !hasScheme || !isScheme(scheme) {
		if strings.Contains(raw, "@") || strings.Contains(raw, ":") && !strings.HasPrefix(raw, "/") && !strings.HasPrefix(raw, ".") {
			// Something like "postgres//u:pw@h/db" or "u:pw@h/db": neither a
			// path nor a URL, and possibly a password.
			return DSN{}, &DSNError{DSN: hiddenValue(raw), Reason: "missing scheme:// (write postgres://, mysql:// or sqlite:// in front; a bare value is read as a SQLite file path, which cannot contain ':' or '@')"}
		}
		if conninfoKey.MatchString(raw) {
			// "host=h user=u password=pw dbname=x": libpq's key=value form,
			// not a file name; read as one, its password would be shown.
			return DSN{}, &DSNError{DSN: hiddenValue(raw), Reason: "a key=value connection string (host=... password=...) is not accepted: write it as a URL"}
		}
		return sqliteDSN(raw, raw)
	}
	switch strings.ToLower(scheme) {
	case "sqlite", "sqlite3", "file":
		if rest == "" {
			return DSN{}, &DSNError{DSN: hiddenValue(raw), Reason: "no file path after sqlite://"}
		}
		path, query, _ := strings.Cut(rest, "?")
		d, err := sqliteDSN(raw, path)
		if err == nil && sqliteReadOnlyQuery(query) {
			d = d.readOnlySQLite()
		}
		return d, err
	case "postgres", "postgresql":
		return postgresDSN(raw)
	case "mysql", "mariadb":
		return mysqlDSN(raw)
	default:
		return DSN{}, &DSNError{DSN: hiddenValue(raw), Reason: "unknown engine " + strings.ToLower(scheme) + ": want sqlite, postgres or mysql"}
	}
}

func sqliteDSN(raw, path string) (DSN, error) {
	if strings.ContainsAny(path, "?#\x00") {
		return DSN{}, &DSNError{DSN: hiddenValue(raw), Reason: "SQLite path contains '?', '#' or NUL"}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return DSN{}, &DSNError{DSN: hiddenValue(raw), Reason: "cannot resolve the SQLite path (is the working directory still there?)"}
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
		path:     abs,
		redacted: "sqlite://" + abs,
	}, nil
}

func postgresDSN(raw string) (DSN, error) {
	u, err := parseServerURL(raw)
	if err != nil {
		return DSN{}, err
	}
	if strings.Trim(u.Path, "/") == "" {
		return DSN{}, &DSNError{DSN: redactURL(u), Reason: "no database name after the host"}
	}
	u.Scheme = "postgres"
	return DSN{Engine: Postgres, driver: "pgx", source: u.String(), secrets: urlSecrets(u), redacted: redactURL(u)}, nil
}

func mysqlDSN(raw string) (DSN, error) {
	u, err := parseServerURL(raw)
	if err != nil {
		return DSN{}, err
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
	// Report rows matched, not rows changed, as SQLite and PostgreSQL do: an
	// UPDATE that writes a row's current values still found the row.
	q.Set("clientFoundRows", "true")
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
	return DSN{Engine: MySQL, driver: "mysql", source: src, secrets: urlSecrets(u), redacted: redactURL(u)}, nil
}

// secretWords mark a query parameter as secret-bearing: the drivers'
// password, passfile and sslpassword, and anything else named like a
// secret (the key itself may be mangled by an unencoded character).
var secretWords = []string{"pass", "secret", "token", "key"}

func isSecretParam(k string) bool {
	k = strings.ToLower(k)
	for _, w := range secretWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

func redactURL(u *url.URL) string {
	c := *u
	if c.User != nil {
		if _, ok := c.User.Password(); ok {
			c.User = url.UserPassword(c.User.Username(), redactedPassword)
		}
	}
	q := c.Query()
	changed := false
	for k := range q {
		if isSecretParam(k) {
			q.Set(k, redactedPassword)
			changed = true
		}
	}
	if changed {
		c.RawQuery = q.Encode()
	}
	return c.String()
}

// urlSecrets returns every secret a parsed URL carries: the userinfo
// password and secret query parameters.
func urlSecrets(u *url.URL) []string {
	var out []string
	if u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			out = append(out, pw)
		}
	}
	q := u.Query()
	for k, vs := range q {
		if !isSecretParam(k) {
			continue
		}
		for _, v := range vs {
			if v != "" {
				out = append(out, v)
			}
		}
	}
	return out
}

// badURLHint is what an error says of a server DSN that does not parse.
const badURLHint = "not a valid URL (percent-encode special characters in the user and password: @ as %40, : as %3A, / as %2F, ? as %3F, # as %23, % as %25, a space as %20)"

// parseServerURL parses a PostgreSQL or MySQL DSN, refusing every form in
// which a password with unencoded special characters would be read as part
// of the host, path, query or fragment (and so shown by Redacted): an '@'
// after the host, or a '#' anywhere.
func parseServerURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse's error quotes the whole input: never show it.
		return nil, &DSNError{DSN: hiddenValue(raw), Reason: badURLHint}
	}
	if strings.Contains(raw, "#") || strings.Contains(u.RawPath+u.Path, "@") || strings.Contains(u.RawQuery, "@") || u.Opaque != "" {
		return nil, &DSNError{DSN: hiddenValue(raw), Reason: badURLHint}
	}
	// A query pair that does not decode is dropped by url.Query, so a
	// secret in it would be neither redacted nor scrubbed: refuse it.
	if _, err := url.ParseQuery(u.RawQuery); err != nil {
		return nil, &DSNError{DSN: hiddenValue(raw), Reason: badURLHint}
	}
	if u.Host == "" {
		// With no host the rest may not have split where it seems to (a
		// '?' in the user part starts the query): show nothing of it.
		return nil, &DSNError{DSN: hiddenValue(raw), Reason: "no host"}
	}
	return u, nil
}
