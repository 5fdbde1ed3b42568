// Package rpcver is versioned RPC over NATS: a rolling upgrade can run old
// and new builds side by side because a client never sends what the
// oldest server cannot read.
//
// An API is a protobuf service whose history sits next to its messages as
// options from proto/tandem/options.proto: (tandem.version) and
// (tandem.oldest) on the service, (tandem.method_since) on methods,
// (tandem.since) on fields and (tandem.enum_since) on enum values. NewAPI reads them through protobuf reflection,
// so there is no table to keep in sync by hand.
//
// A Server is a nats.go micro service with one endpoint per method, so
// $SRV.PING, $SRV.INFO and $SRV.STATS and the nats micro tooling work. The
// request's version rides in the subject, <prefix>.<api>.<Method>.v<major>.<minor>,
// which costs nothing on the wire; each endpoint listens on
// <...>.v<major>.>, so a version outside the server's range still reaches it and is
// answered with CodeUnsupportedVersion in micro's error headers. An older
// request is upgraded (Upgrade steps) before the handler sees it, and the
// response is backported (Backport steps) to the version the caller spoke.
// The subject also carries how long the caller will wait, rounded down to
// a power of two milliseconds (<...>.v1.2.t4096); the handler's context
// ends then, so a request its caller gave up on does not commit after the
// caller's retry. A request without that token may say the same with
// TimeoutHeader. Servers register their API range in the services registry and heartbeat;
// Shutdown drains.
//
// A Client sends at min(its current version, the cluster's cap), with the
// cap read from a CapSource such as *services.Cache, which follows the
// registry's change notifications: no I/O per call, and caps rise without
// restarts. A method newer than that fails with ErrMethodTooNew before
// anything is sent. A request is backported field by field on a copy: an
// unset newer field is fine, a set one needs a Backport step, or the call
// fails with ErrCannotBackport and nothing is sent; so does a set enum
// value newer than the target, unless the field's Backport step maps it. When a server answers
// that it does not accept the version, the client refreshes the cap and
// retries once, if the refresh moved its target.
//
// Objects stores messages with their version in a database: older bytes
// are upgraded in memory and written back only when the cap of the reader
// API proves every reader reads the newer version; every process reading
// the objects must therefore register that API (see Objects.Registration).
//
// The fingerprint subpackage fails a test when a message changes without a
// version bump or in a way that breaks the wire.
//
// The generated code in tandempb is committed. Regenerate it from the
// repository root with protoc and protoc-gen-go (go install
// google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12):
//
//	go generate ./rpcver/
//
// Metrics: WithMetrics, on a client or a server, registers calls and requests
// by API, method, version and outcome, their latency, backports, upgrades,
// refusals by kind and the version in force per API on a
// prometheus.Registerer the application passes; without them a call does
// no metrics work (docs/observability.md lists every metric).
package rpcver

//go:generate protoc -I ../proto --go_out=.. --go_opt=module=github.com/tandem-go/tandem ../proto/tandem/options.proto
