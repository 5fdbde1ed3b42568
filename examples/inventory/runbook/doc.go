// Package runbook holds the test that walks docs/runbook.md's rolling
// upgrade literally, with the inventory example's server and job as
// separate processes and the tandem CLI for every operator step, on every
// engine configured (see TestRunbookRollingUpgrade).
package runbook
