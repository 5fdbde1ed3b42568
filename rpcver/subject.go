package rpcver

import (
	"strconv"
	"strings"
)

// DefaultPrefix starts every rpcver subject.
const DefaultPrefix = "tandem"

// The version travels in the subject's last two tokens:
//
//	<prefix>.<api>.<Method>.v<major>.<minor>     e.g. tandem.inventory.GetItem.v1.2
//
// A server subscribes once per method to <prefix>.<api>.<Method>.v<major>.*,
// so a request at any minor of its major reaches it and one outside its
// range gets a typed error. The subject carries no per-call value (the
// caller's timeout goes in a header), so a method at one version is one
// subject and the NATS server's subject cache keeps hitting.

// Subject returns the subject a request for method at version v goes to.
func Subject(prefix, api, method string, v Version) string {
	var b strings.Builder
	b.Grow(len(prefix) + len(api) + len(method) + 12)
	b.WriteString(prefix)
	b.WriteByte('.')
	b.WriteString(api)
	b.WriteByte('.')
	b.WriteString(method)
	b.WriteString(".v")
	b.WriteString(strconv.Itoa(v.Major))
	b.WriteByte('.')
	b.WriteString(strconv.Itoa(v.Minor))
	return b.String()
}

// endpointSubject is the wildcard a server listens on for one method.
func endpointSubject(prefix, api, method string, major int) string {
	return prefix + "." + api + "." + method + ".v" + strconv.Itoa(major) + ".*"
}

// minorOf reads the minor version from a request subject's last token. It
// accepts only 1 to 6 ASCII digits, so no input can overflow or panic.
func minorOf(subject string) (int, bool) {
	i := strings.LastIndexByte(subject, '.')
	tok := subject[i+1:]
	if len(tok) == 0 || len(tok) > 6 {
		return 0, false
	}
	n := 0
	for j := 0; j < len(tok); j++ {
		c := tok[j]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
