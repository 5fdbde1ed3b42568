package backup

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/tandem-go/tandem/dialect"
)

// dumpTools are the programs that copy each server engine, in the order
// they are looked for on PATH.
var dumpTools = map[dialect.Name][]string{
	dialect.Postgres: {"pg_dump"},
	dialect.MySQL:    {"mariadb-dump", "mysqldump"},
}

// libpqParams are the URI parameters passed on to pg_dump: libpq's own,
// without the secrets (the password goes in PGPASSWORD) and without the
// pgx pool's settings, which libpq refuses.
var libpqParams = map[string]bool{
	"sslmode": true, "sslcert": true, "sslkey": true, "sslrootcert": true, "sslcrl": true, "sslsni": true,
	"connect_timeout": true, "application_name": true, "options": true, "target_session_attrs": true,
	"channel_binding": true, "gssencmode": true, "krbsrvname": true, "service": true, "servicefile": true,
	"keepalives": true, "keepalives_idle": true, "keepalives_interval": true, "keepalives_count": true,
}

// toolDump runs a server engine's dump tool.
type toolDump struct {
	engine dialect.Name
	tool   string // the program's name
	path   string // where it was found on PATH
	// head and tail are the arguments before and after the output file's
	// flag (out + the file).
	head, tail []string
	out        string
	env        []string // PGPASSWORD
	// cnf is an option file's content, given as the first argument
	// (--defaults-extra-file) when set: mariadb-dump's password.
	cnf     string
	secrets []string
	shown   string
}

// serverDump finds the dump tool of db's engine and builds its command
// line for the file abs.
func serverDump(db *dialect.DB, abs string) (*toolDump, error) {
	_, source := db.DSN().Driver()
	var d *toolDump
	var err error
	switch db.Engine() {
	case dialect.Postgres:
		d, err = pgDump(source, abs)
	case dialect.MySQL:
		d, err = mysqlDump(source, abs)
	default:
		return nil, fmt.Errorf("backup: no copy for engine %s", db.Engine())
	}
	if err != nil {
		return nil, err
	}
	tools := dumpTools[db.Engine()]
	for _, t := range tools {
		if p, err := exec.LookPath(t); err == nil {
			d.tool, d.path = t, p
			d.shown = t + d.shown
			return d, nil
		}
	}
	return nil, &NoToolError{Engine: db.Engine(), Tools: tools, Command: tools[0] + d.shown}
}

// pgDump builds pg_dump's command line: a plain SQL script of the whole
// database in one snapshot, the password in PGPASSWORD, never prompting.
func pgDump(source, abs string) (*toolDump, error) {
	u, err := url.Parse(source)
	if err != nil {
		return nil, fmt.Errorf("backup: the PostgreSQL DSN: %w", dialect.ErrBadDSN)
	}
	d := &toolDump{engine: dialect.Postgres, out: "--file="}
	var pw string
	if u.User != nil {
		pw, _ = u.User.Password()
		u.User = url.User(u.User.Username())
	}
	q := u.Query()
	if p := q.Get("password"); p != "" {
		pw = p
	}
	for k := range q {
		if !libpqParams[k] {
			q.Del(k)
		}
	}
	u.RawQuery = q.Encode()
	d.head = []string{"--no-password"}
	d.tail = []string{"--dbname=" + u.String()}
	if pw != "" {
		d.env, d.secrets = []string{"PGPASSWORD=" + pw}, []string{pw}
	}
	d.shown = shellArgs(d.head, d.out+abs, []string{"--dbname=" + dialect.RedactDSN(u.String())})
	if pw != "" {
		d.shown += " (with the password of --db in PGPASSWORD)"
	}
	return d, nil
}

// mysqlDump builds mariadb-dump's (or mysqldump's) command line: every
// table, view, trigger and routine of the database in one transaction, the
// password in an option file.
func mysqlDump(source, abs string) (*toolDump, error) {
	cfg, err := mysql.ParseDSN(source)
	if err != nil {
		return nil, fmt.Errorf("backup: the MySQL DSN: %w", dialect.ErrBadDSN)
	}
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		host, port = cfg.Addr, "3306"
	}
	d := &toolDump{engine: dialect.MySQL, out: "--result-file="}
	conn := []string{"--host=" + host, "--port=" + port}
	if cfg.User != "" {
		conn = append(conn, "--user="+cfg.User)
	}
	opts := []string{"--single-transaction", "--routines", "--triggers", "--hex-blob"}
	switch cfg.TLSConfig {
	case "true":
		opts = append(opts, "--ssl", "--ssl-verify-server-cert")
	case "skip-verify", "preferred":
		opts = append(opts, "--ssl")
	}
	d.head = append(append([]string{}, conn...), opts...)
	d.tail = []string{cfg.DBName}
	shownHead := d.head
	if cfg.Passwd != "" {
		d.cnf = "[client]\npassword=\"" + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(cfg.Passwd) + "\"\n"
		d.secrets = []string{cfg.Passwd}
		// By hand, --password asks for it.
		shownHead = append(append(append([]string{}, conn...), "--password"), opts...)
	}
	d.shown = shellArgs(shownHead, d.out+abs, d.tail)
	return d, nil
}

func (d *toolDump) write(ctx context.Context, _ *dialect.DB, file string) error {
	args := append(append(append([]string{}, d.head...), d.out+file), d.tail...)
	if d.cnf != "" {
		f, err := os.CreateTemp("", "tandem-backup-*.cnf") // 0600: this user only
		if err != nil {
			return fmt.Errorf("%w: option file: %w", ErrFailed, err)
		}
		defer os.Remove(f.Name())
		if _, err := f.WriteString(d.cnf); err != nil {
			f.Close()
			return fmt.Errorf("%w: option file: %w", ErrFailed, err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("%w: option file: %w", ErrFailed, err)
		}
		// The one place the option file may be named: first.
		args = append([]string{"--defaults-extra-file=" + f.Name()}, args...)
	}
	return run(ctx, d.tool, d.path, args, d.env, d.secrets)
}

// shellArgs joins arguments as a shell command line's tail (after the
// program's name).
func shellArgs(head []string, out string, tail []string) string {
	var b strings.Builder
	for _, a := range append(append(append([]string{}, head...), out), tail...) {
		b.WriteString(" " + quote(a))
	}
	return b.String()
}
