// Package node is the wiring every process of the inventory example shares,
// the RPC server and the price job alike: open the database, create the
// tables, take the move from a plan file or the ledger, start a tracker,
// register as a writer, report the phases it acts on with every heartbeat,
// and leave the cluster in the order that keeps the gates right.
//
// Every process that writes a moved column must do all of this, a cron job
// as much as a server: the gates only see what the registry shows, so a
// writer that never registers, or registers without phases, can go on
// writing the old column after the backfill passed its rows.
package node
