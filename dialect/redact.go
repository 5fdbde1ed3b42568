package dialect

import (
	"net/url"
	"strings"
)

// RedactDSN returns a database DSN fit to print, whatever form it is in:
// the redacted DSN when it parses (DSN.Redacted), and otherwise nothing of
// it but its scheme. Every place that prints a DSN calls this (or
// DSN.Redacted), so there is one rule for what a printed DSN shows.
func RedactDSN(raw string) string {
	d, err := ParseDSN(raw)
	if err != nil {
		return hiddenValue(strings.TrimSpace(raw))
	}
	return d.Redacted()
}

// RedactURL returns a URL fit to print (a NATS server URL, or a
// comma-separated list of them as NATS takes): scheme, host and port only;
// the user, password or token, the path and the query are dropped. An entry
// that does not parse shows its scheme only.
func RedactURL(raw string) string {
	// A comma may also sit in an unencoded password, so the split is only
	// trusted when every entry parses; otherwise the list shows its
	// scheme only.
	var out []string
	for _, one := range strings.Split(raw, ",") {
		u, err := ParseServerURL(strings.TrimSpace(one))
		if err != nil {
			return hiddenValue(strings.TrimSpace(raw))
		}
		out = append(out, u.Scheme+"://"+u.Host)
	}
	return strings.Join(out, ",")
}

// ParseServerURL parses a server URL such as a NATS URL with the same rule
// as a DSN: a scheme and a host, and no unencoded special character that
// would move part of the password into the host, path, query or fragment.
// Its error is a *URLError, which shows only the scheme.
func ParseServerURL(raw string) (*url.URL, error) {
	scheme, _, ok := strings.Cut(raw, "://")
	if !ok || !isScheme(scheme) || strings.ContainsAny(raw, "\x00\r\n") {
		return nil, &URLError{URL: hiddenValue(raw), Reason: "want scheme://host:port, like nats://127.0.0.1:4222"}
	}
	u, err := url.Parse(raw)
	if err != nil || strings.Contains(raw, "#") || strings.Contains(u.RawPath+u.Path, "@") || strings.Contains(u.RawQuery, "@") || u.Host == "" {
		return nil, &URLError{URL: hiddenValue(raw), Reason: badURLHint}
	}
	if _, err := url.ParseQuery(u.RawQuery); err != nil {
		return nil, &URLError{URL: hiddenValue(raw), Reason: badURLHint}
	}
	return u, nil
}

// URLSecrets returns the secrets a parsed URL carries, for Scrub: its
// password, or without one its user, which NATS reads as a token; and the
// secret query parameters.
func URLSecrets(u *url.URL) []string {
	var out []string
	if u.User != nil {
		if pw, ok := u.User.Password(); ok {
			if pw != "" {
				out = append(out, pw)
			}
		} else if tok := u.User.Username(); tok != "" {
			out = append(out, tok)
		}
	}
	return append(out, urlSecrets(u)...)
}

// Scrub returns err with every secret replaced, raw and percent-encoded,
// for errors of a library that may quote a URL it was given. It still
// matches what err matched.
func Scrub(err error, secrets ...string) error { return scrub(err, secrets) }

// hiddenValue is what is shown of a value that did not parse: its scheme
// and the separator typed after it (where a typo such as "postgres//"
// shows), never anything after them.
func hiddenValue(raw string) string {
	i := 0
	for i < len(raw) && i <= 16 && isSchemeByte(raw[i], i) {
		i++
	}
	if i == 0 || i > 16 {
		return "..."
	}
	j := i
	for j < len(raw) && j < i+3 && (raw[j] == ':' || raw[j] == '/') {
		j++
	}
	if sep := raw[i:j]; !strings.HasPrefix(sep, ":/") && !strings.HasPrefix(sep, "//") {
		return "..." // a leading word not followed by "//" or ":/" is no scheme (it may be a user name)
	}
	return raw[:j] + "..."
}

// isScheme reports whether s is a URL scheme: a letter, then letters,
// digits, '+', '-' or '.'.
func isScheme(s string) bool {
	if s == "" || len(s) > 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isSchemeByte(s[i], i) {
			return false
		}
	}
	return true
}

func isSchemeByte(c byte, i int) bool {
	letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
	if i == 0 {
		return letter
	}
	return letter || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'
}
