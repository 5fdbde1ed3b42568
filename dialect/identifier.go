package dialect

import "regexp"

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// CheckIdentifier refuses any name that is not a plain identifier. tandem
// quotes every identifier too, but refusing the odd ones keeps generated SQL
// (triggers included) readable and identical on every engine.
func CheckIdentifier(ident string) error {
	switch {
	case ident == "":
		return &IdentifierError{Name: ident, Reason: "empty"}
	case len(ident) > 63:
		return &IdentifierError{Name: ident, Reason: "longer than 63 characters (PostgreSQL truncates it)"}
	case !identRE.MatchString(ident):
		return &IdentifierError{Name: ident, Reason: "contains a character other than a letter, digit or underscore, or starts with a digit"}
	}
	return nil
}

// Quote returns ident quoted for engine n ("name" on SQLite and
// PostgreSQL, `name` on MySQL/MariaDB), or an *IdentifierError when it is
// not a plain identifier that can be quoted safely. Use it to build an
// application's own statements around a table or column name given at
// run time.
func (n Name) Quote(ident string) (string, error) {
	if err := CheckIdentifier(ident); err != nil {
		return "", err
	}
	if n == MySQL {
		return "`" + ident + "`", nil
	}
	return `"` + ident + `"`, nil
}
