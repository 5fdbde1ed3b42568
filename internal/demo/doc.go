// Package demo is what `tandem demo` runs: a rolling upgrade of the
// inventory example across three releases, under live traffic, while two
// column moves go through every phase, with every request checked.
//
// Setup: a SQLite file in a temporary directory (or a fresh database on
// the PostgreSQL or MySQL/MariaDB server given), an embedded NATS server
// (or the one given), tandem's tables, and two application tables, items
// and catalog, with prices in whole units. Two moves take price to
// price_cents: items without triggers (release 42 writes both, 43 reads
// new, 44 writes new only, contract after finalize), catalog with sync
// triggers (the whole way to write-new while release 41 still runs, and
// contract once release 42 is everywhere: two releases instead of four).
//
// Instances: several instances of the inventory service start at release
// 41 (API inventory 1.0). Each is an rpcver.Server over a SQLStore that
// reads and writes through dualwrite's Router at the phase its Tracker
// gives, registered in the services registry, with heartbeats reporting
// the phases it acts on. They restart one at a time to 42 (API 1.1), 43
// (1.2) and 44, while an operator loop advances each move as its gate
// opens: backfill, verify, advance, finalize, contract, exactly as the
// CLI would.
//
// Load: RPC clients (capped by a services.Cache that follows the
// registry's NATS notices) and database workers (through an instance's
// store) each own a disjoint set of keys, so each knows the last
// acknowledged value of every key: a read returning anything else is a
// wrong read. After contract every key is read from price_cents, and
// every seeded row, which only the backfill ever wrote, too: a mismatch is
// a lost write. Every key's history (each write attempt and answered read
// with the times it was sent and answered, and the final read) is checked
// for linearizability with porcupine, a register per key; a write whose
// outcome its caller did not learn may land at any later time, a refused
// one never. A write that a store applied after its caller saw it fail is
// a ghost write, found from the stores' commit times.
//
// Chaos: instances are killed without deregistering (they pin the floor
// and block gates until they return) and restarted at their release, or
// at the release the moves require when dualwrite refuses theirs, and the
// embedded NATS server restarts on the same port while writes are in
// flight, down for longer than a client's attempt. Clients retry
// idempotent calls within a deadline; retries are counted apart, and a
// request that never succeeds counts as failed. Every write of a key
// carries its sequence number (the quantity), and the store refuses to
// overwrite a newer one: a late duplicate, delivered after its caller had
// retried, succeeded and written again, is counted, not applied. Each
// attempt of a write carries the next sequence number, so every attempt is
// a request of its own for the history and ghost checks.
package demo
