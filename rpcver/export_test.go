package rpcver

import (
	"google.golang.org/protobuf/proto"
)

// Hooks for the external tests, which need the example API (and so cannot
// live in this package without an import cycle).

// BackportMessage backports m in place to version to, as a client (strict)
// or a server answering (lenient) would.
func BackportMessage(a *API, m proto.Message, to Version, strict bool) error {
	r := m.ProtoReflect()
	return a.backport(r, a.msgInfo(r), to, strict)
}

// NeedsBackport reports whether m has a set field newer than to.
func NeedsBackport(a *API, m proto.Message, to Version) bool {
	r := m.ProtoReflect()
	return a.needsBackport(r, a.msgInfo(r), to)
}

// UpgradeMessage upgrades m in place from version from.
func UpgradeMessage(a *API, m proto.Message, from Version) error {
	r := m.ProtoReflect()
	return a.upgrade(r, a.msgInfo(r), from)
}

// DecodeRequest runs a server's request decoding for method without
// NATS, returning the error code ("" when it decoded).
func DecodeRequest(a *API, method, subject string, data []byte, newReq func() proto.Message) (proto.Message, Version, string) {
	ep := &endpoint{api: a, info: a.methods[method], newReq: newReq}
	m, v, err := ep.decode(subject, data)
	if err != nil {
		return m, v, err.code
	}
	return m, v, ""
}
