package services

import (
	"fmt"
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
	a, ok1 := versionPart(maj)
	b, ok2 := versionPart(min)
	if !ok1 || !ok2 {
		return Version{}, &VersionError{Input: s, Reason: "major and minor must be non-negative integers written in digits only, without sign or leading zeros, at most 9 digits"}
	}
	return Version{Major: a, Minor: b}, nil
}

// versionPart parses one part of a version strictly: ASCII digits only (no
// sign: "-0" is not 0), no leading zero, at most 9 digits, so every version
// has one spelling and String gives it back.
func versionPart(s string) (int, bool) {
	if s == "" || len(s) > 9 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// Validate refuses a version with a negative part (a Version built in Go
// rather than parsed): registrations and API lists call it.
func (v Version) Validate() error {
	if v.Major < 0 || v.Minor < 0 {
		return &VersionError{Input: v.String(), Reason: "major and minor must be non-negative"}
	}
	return nil
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
