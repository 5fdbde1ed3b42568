package dialect

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Sentinel errors. Match them with errors.Is.
var (
	// ErrBadDSN means a DSN could not be parsed or names an unknown engine.
	ErrBadDSN = errors.New("bad database DSN")
	// ErrUnreachable means the database could not be reached.
	ErrUnreachable = errors.New("database unreachable")
	// ErrLoginRefused means the server answered and refused the login: a
	// wrong user or password, or a database that does not exist. Waiting
	// does not help; the DSN must change.
	ErrLoginRefused = errors.New("database refused the login")
	// ErrBadIdentifier means a table or column name cannot be quoted safely.
	ErrBadIdentifier = errors.New("unsafe SQL identifier")
	// ErrNoSuchFile means a SQLite file opened with MustExist is not there.
	ErrNoSuchFile = errors.New("SQLite file does not exist")
	// ErrBadURL means a server URL (such as a NATS URL) could not be parsed.
	ErrBadURL = errors.New("bad server URL")
	// ErrLocked means another runner holds tandem's lock and the wait timed out.
	ErrLocked = errors.New("tandem lock held by another runner")
)

// DSNError describes a DSN that could not be used. DSN is already redacted.
type DSNError struct {
	DSN    string
	Reason string
}

func (e *DSNError) Error() string {
	return fmt.Sprintf("bad database DSN %q: %s (use sqlite:///abs/path.db, postgres://user:pass@host:port/db or mysql://user:pass@host:port/db)", e.DSN, e.Reason)
}

func (e *DSNError) Unwrap() error { return ErrBadDSN }

// URLError describes a server URL that could not be used. URL shows only
// its scheme: the rest may hold a password.
type URLError struct {
	URL    string
	Reason string
}

func (e *URLError) Error() string { return fmt.Sprintf("bad URL %q: %s", e.URL, e.Reason) }

func (e *URLError) Unwrap() error { return ErrBadURL }

// ConnectError reports a database that could not be reached. Its message
// names the redacted DSN and never carries the password.
type ConnectError struct {
	DSN string // redacted
	Err error
}

func (e *ConnectError) Error() string {
	switch {
	case errors.Is(e.Err, ErrNoSuchFile):
		return fmt.Sprintf("cannot open database %s: %v", e.DSN, e.Err)
	case loginRefused(e.Err):
		return fmt.Sprintf("database %s refused the login: %v (check the user, the password and the database name in the DSN)", e.DSN, e.Err)
	}
	return fmt.Sprintf("cannot reach database %s: %v (is the server running and the DSN right?)", e.DSN, e.Err)
}

// Unwrap gives ErrLoginRefused when the server refused the login and
// ErrUnreachable otherwise, then the driver's error.
func (e *ConnectError) Unwrap() []error {
	if loginRefused(e.Err) {
		return []error{ErrLoginRefused, e.Err}
	}
	return []error{ErrUnreachable, e.Err}
}

// IdentifierError reports a name refused by Quote.
type IdentifierError struct {
	Name   string
	Reason string
}

func (e *IdentifierError) Error() string {
	return fmt.Sprintf("unsafe SQL identifier %q: %s (use letters, digits and underscores, starting with a letter or underscore, at most 63 characters)", e.Name, e.Reason)
}

func (e *IdentifierError) Unwrap() error { return ErrBadIdentifier }

// scrubbed wraps an error so that its text never contains a secret.
type scrubbed struct {
	err     error
	secrets []string
}

func (s *scrubbed) Error() string {
	msg := s.err.Error()
	for _, secret := range s.secrets {
		msg = strings.ReplaceAll(msg, secret, redactedPassword)
		if esc := url.QueryEscape(secret); esc != secret {
			msg = strings.ReplaceAll(msg, esc, redactedPassword)
		}
	}
	return msg
}

func (s *scrubbed) Unwrap() error { return s.err }

func scrub(err error, secrets []string) error {
	if err == nil || len(secrets) == 0 {
		return err
	}
	return &scrubbed{err: err, secrets: secrets}
}
