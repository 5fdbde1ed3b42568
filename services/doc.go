// Package services is tandem's registry: every running instance reports its
// service, its release and the API versions it serves to the
// tandem_services table, then heartbeats.
//
// Two numbers follow from it. The floor is the lowest release among
// instances that are not deleted; a cap is, per API, the lowest current
// version among its servers that are not deleted. Instances that are down,
// missing (no heartbeat for MissingAfter) or in error still count, because
// they may come back running old code: an operator deletes the ones that
// will not return. Floor and Cap values carry their holders, the exact rows
// that pin them, and since when, because a stale row silently pinning the
// cluster is the classic failure of such registries.
//
// Every change that can move the floor or a cap is announced on the NATS
// subject ChangedSubject(cluster) ("tandem.<cluster>.services.changed"),
// where the cluster is the identity schema.Ensure records in ClusterTable,
// so clusters sharing a NATS never hear each other. Each change takes the
// next revision of the registry in its own transaction (Registry.Revision),
// and its notice carries the revision and the changed instance. A Cache
// subscribes to it and applies each notice that follows its revision as a
// delta, reading nothing; it reads only the changed rows after a gap or on
// its TTL (Registry.Changes), and a full snapshot whenever its NATS
// connection comes back (a notice sent while it was away never reaches
// it). Caps rise without restarts and an RPC reads its cap with no
// database query and no network round trip.
//
// Once a phase of a move is finalized, Finalize records the release below
// which instances may no longer register: an older binary that tries gets a
// *BelowFinalizedError.
//
// Nodes without database credentials take part through NATS: one node with
// credentials runs Serve, the others use NewRemote, which implements the
// same Reporter and Source interfaces as the Registry.
//
// An instance id names a role; each process start that registers it is an
// incarnation (Instance.Incarnation). A new incarnation supersedes its
// predecessor at once when the predecessor is provably dead: it
// deregistered or was deleted, its heartbeat lapsed, or its liveness token
// (a database session lock held by the registering process, or a Remote's
// own NATS subject) is gone. The superseded record stays in
// IncarnationsTable (PastIncarnations) for the gates that look back. A
// second live process with the same id gets a *DuplicateError naming both.
// An incarnation deleted or superseded is fenced: its heartbeats fail with
// a *FencedError (ErrFenced), and KeepAlive tells the application, which
// must stop serving and writing.
//
// Metrics: a Cache built WithMetrics exports the floor, the instances by
// release and state, the caps and the finalized release from its snapshot,
// and its refreshes, staleness and notices received, on the application's
// prometheus.Registerer (docs/observability.md).
package services
