package services

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is the major.minor version of one RPC API. Minor bumps add,
// major bumps break.
type Version struct {
	Major int `json:"major"`
	Minor int `json:"minor"`
}

// ParseVersion parses "3.15". Both parts must be non-negative integers.
func ParseVersion(s string) (Version, error) {
	maj, min, ok := strings.Cut(strings.TrimSpace(s), ".")
	if !ok {
		return Version{}, &VersionError{Input: s, Reason: "want major.minor, like 1.2"}
	}
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(min)
	if err1 != nil || err2 != nil || a < 0 || b < 0 || maj == "" || min == "" || maj[0] == '+' || min[0] == '+' {
		return Version{}, &VersionError{Input: s, Reason: "major and minor must be non-negative integers"}
	}
	return Version{Major: a, Minor: b}, nil
}

// MustParseVersion is ParseVersion for constants in code; it panics on error.
func MustParseVersion(s string) Version {
	v, err := ParseVersion(s)
	if err != nil {
		panic(err)
	}
	return v
}

func (v Version) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// IsZero reports whether v is 0.0, which tandem treats as "not set".
func (v Version) IsZero() bool { return v.Major == 0 && v.Minor == 0 }

// Compare returns -1, 0 or +1.
func (v Version) Compare(o Version) int {
	switch {
	case v.Major < o.Major:
		return -1
	case v.Major > o.Major:
		return 1
	case v.Minor < o.Minor:
		return -1
	case v.Minor > o.Minor:
		return 1
	}
	return 0
}

// Less reports v < o.
func (v Version) Less(o Version) bool { return v.Compare(o) < 0 }

// MarshalText writes "major.minor".
func (v Version) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// UnmarshalText reads "major.minor".
func (v *Version) UnmarshalText(b []byte) error {
	p, err := ParseVersion(string(b))
	if err != nil {
		return err
	}
	*v = p
	return nil
}

// MinVersion returns the lower of a and b.
func MinVersion(a, b Version) Version {
	if b.Less(a) {
		return b
	}
	return a
}
