package rpcver

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"

	"github.com/tandem-go/tandem/services"
)

// DefaultPrefix starts every rpcver subject.
const DefaultPrefix = "tandem"

// The cluster's identity, the version, and the time the caller will wait
// travel in the subject:
//
//	<prefix>.<cluster>.<api>.<Method>.v<major>.<minor>[.t<ms>]   e.g. tandem.3f9c2a7d10b4e865.inventory.GetItem.v1.2.t4096
//
// The cluster token (see services.ClusterTable) keeps clusters that share
// one NATS apart: their servers listen on different subjects, so a client
// is never served by another cluster, whatever their API names. A server
// or client that knows no cluster (no registry, no cache, no WithCluster)
// leaves the token out.
//
// A server subscribes once per method to <prefix>.<api>.<Method>.v<major>.>,
// so a request at any minor of its major reaches it and one outside its
// range gets a typed error. The budget token is rounded down to a power of
// two milliseconds (0, 1, 2, 4, ... 2^29), so a handler never gets more time
// than its caller and a method at one version has at most 31 subjects,
// which the NATS server's subject cache keeps hitting. A request without
// the token (sent with the nats tool, say) runs under TimeoutHeader when
// it has one, else under the server's WithHandlerTimeout.

// scoped is the subject prefix of a cluster: prefix.cluster, or prefix
// alone when the cluster is unknown.
func scoped(prefix, cluster string) string {
	if cluster == "" {
		return prefix
	}
	return prefix + "." + cluster
}

// clusterOf is the cluster a registry, a cap source or a reporter belongs
// to, when it knows one (*services.Registry, *services.Remote,
// *services.Cache do).
func clusterOf(x any) string {
	if c, ok := x.(interface{ Cluster() string }); ok {
		return c.Cluster()
	}
	return ""
}

// pickCluster chooses between the cluster set by an option and the one
// its registry or cache names: they must agree.
func pickCluster(api, where, opt, fromRegistry string) (string, error) {
	switch {
	case opt == "":
		opt = fromRegistry
	case fromRegistry != "" && fromRegistry != opt:
		return "", &DefinitionError{API: api, Where: where, Reason: fmt.Sprintf("cluster %q, but the registry is cluster %q", opt, fromRegistry)}
	}
	if opt != "" {
		if err := services.CheckCluster(opt); err != nil {
			return "", &DefinitionError{API: api, Where: where, Reason: err.Error()}
		}
	}
	return opt, nil
}

// maxBudgetBucket is the largest budget token, 2^29 ms (about 6.2 days).
const maxBudgetBucket = 30

// Subject returns the subject a request for method at version v goes to,
// without a budget token.
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

// budgetBucket is the index of the budget token for a caller that waits d
// more: 0 for less than a millisecond, else k for [2^(k-1), 2^k) ms.
func budgetBucket(d time.Duration) int {
	ms := d.Milliseconds()
	if ms <= 0 {
		return 0
	}
	return min(bits.Len64(uint64(ms)), maxBudgetBucket)
}

// budgetToken is the subject token of bucket k: its budget rounded down.
func budgetToken(k int) string {
	if k == 0 {
		return "t0"
	}
	return "t" + strconv.FormatInt(int64(1)<<(k-1), 10)
}

// endpointSubject is the wildcard a server listens on for one method.
func endpointSubject(prefix, api, method string, major int) string {
	return prefix + "." + api + "." + method + ".v" + strconv.Itoa(major) + ".>"
}

// subjectTail reads v<major>.<minor>[.t<ms>] from the end of a request
// subject: the minor, and the caller's budget (-1 when the subject carries
// none). The major must be the server's. It accepts only short runs of
// ASCII digits, so no input can overflow or panic.
func subjectTail(subject string, major int) (minor int, budget time.Duration, ok bool, budgetOK bool) {
	budget, budgetOK = -1, true
	rest, last := cutLast(subject)
	if len(last) > 0 && last[0] == 't' {
		budget, budgetOK = parseTimeout(last[1:])
		rest, last = cutLast(rest)
	}
	minor, ok = digits(last, 6)
	_, vtok := cutLast(rest)
	if !ok || len(vtok) < 2 || vtok[0] != 'v' {
		return 0, budget, false, budgetOK
	}
	if m, mok := digits(vtok[1:], 6); !mok || m != major {
		return 0, budget, false, budgetOK
	}
	return minor, budget, true, budgetOK
}

// cutLast splits s at its last '.'.
func cutLast(s string) (rest, last string) {
	i := strings.LastIndexByte(s, '.')
	if i < 0 {
		return "", s
	}
	return s[:i], s[i+1:]
}

// digits reads 1 to max ASCII digits.
func digits(tok string, max int) (int, bool) {
	if len(tok) == 0 || len(tok) > max {
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
