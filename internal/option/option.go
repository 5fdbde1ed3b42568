// Package option holds what every tandem package's options share: the
// error an option refused gets, and the checks of the values every package
// takes alike (a logger, a duration, a clock).
//
// Each public package has one Option type. An option carries, per
// constructor or call of its package, how it applies there; one that has
// no way to apply to a constructor is refused by it with an *Error naming
// where it does apply, and a value out of range is refused the same way,
// before anything is done.
package option

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// ErrInvalid is what every package's ErrInvalidOption is: an option value
// out of range, or an option given to a constructor it does not apply to.
var ErrInvalid = errors.New("invalid option")

// Error names the option and the value refused, and why.
type Error struct {
	Pkg    string // the package, for the message: "dualwrite"
	Option string // the option, as its function is named: "WithLogger"
	Value  string
	Reason string
}

func (e *Error) Error() string {
	pkg := e.Pkg
	if pkg != "" {
		pkg += ": "
	}
	if e.Value == "" {
		return fmt.Sprintf("%soption %s: %s", pkg, e.Option, e.Reason)
	}
	return fmt.Sprintf("%soption %s = %s: %s", pkg, e.Option, e.Value, e.Reason)
}

func (e *Error) Unwrap() error { return ErrInvalid }

// Bad returns the error of option opt refused for value v.
func Bad(pkg, opt string, v any, reason string) *Error {
	return &Error{Pkg: pkg, Option: opt, Value: fmt.Sprint(v), Reason: reason}
}

// NotFor is the error of option opt given to call, which does not take it;
// appliesTo lists the calls that do.
func NotFor(pkg, opt, call string, appliesTo ...string) *Error {
	return &Error{Pkg: pkg, Option: opt, Reason: fmt.Sprintf("does not apply to %s (it applies to %s)", call, strings.Join(appliesTo, ", "))}
}

// Logger refuses a nil logger: silence is the default, so a nil one is a
// mistake (an unset variable), not a request for silence.
func Logger(l *slog.Logger) string {
	if l == nil {
		return "a nil logger; omit the option for the silent default"
	}
	return ""
}

// Clock refuses a nil clock.
func Clock(now func() time.Time) string {
	if now == nil {
		return "a nil clock; omit the option for time.Now"
	}
	return ""
}

// Positive refuses a duration that is zero or negative.
func Positive(d time.Duration) string {
	if d <= 0 {
		return "must be positive"
	}
	return ""
}

// NotNegative refuses a negative duration.
func NotNegative(d time.Duration) string {
	if d < 0 {
		return "must be at least 0"
	}
	return ""
}

// Call is one call an option may apply to: Applies says whether it does.
type Call struct {
	Applies bool
	Name    string
}

// Check is the rule every package's options share, for one option given
// to call: a zero option (no name), a value out of range (bad says why)
// and an option for other calls are refused; nil means apply it. calls is
// asked only for the error of an option that does not apply.
func Check(pkg, call, name, bad string, val any, applies bool, calls func() []Call) *Error {
	switch {
	case name == "":
		return &Error{Pkg: pkg, Option: "Option{}", Reason: "a zero Option; build options with the With... functions"}
	case bad != "":
		return Bad(pkg, name, val, bad)
	case !applies:
		var names []string
		for _, c := range calls() {
			if c.Applies {
				names = append(names, c.Name)
			}
		}
		return NotFor(pkg, name, call, names...)
	}
	return nil
}
