package services

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/schema"
)

// ClusterTable holds the cluster's identity: one row, written once, by the
// first `tandem schema ensure` (schema.Ensure with Tables()) on the
// database.
//
// Several clusters may share one NATS; the identity keeps them apart. It
// is a token of every subject the cluster uses: the registry's change
// notices (ChangedSubject), the registry over NATS (RemoteSubject), and
// rpcver's requests (tandem.<cluster>.<api>...). A server or client of one
// cluster therefore never receives another cluster's messages, however
// their API names overlap. Processes with database credentials read it
// from the database (Registry.Cluster); the others are given it
// (NewRemote), and `tandem services cluster` prints it.
const ClusterTable = "tandem_cluster"

// clusterIDBytes is the identity's randomness: 8 bytes, 16 hex digits.
const clusterIDBytes = 8

// ChangedSubject is the NATS subject on which a cluster's registry
// announces every change that can move the floor or a cap:
// tandem.<cluster>.services.changed. The payload is a JSON Change.
func ChangedSubject(cluster string) string { return "tandem." + cluster + ".services.changed" }

// RemoteSubject is the subject prefix of a cluster's registry over NATS:
// tandem.<cluster>.registry, with endpoints .register, .heartbeat,
// .deregister, .snapshot and .changes.
func RemoteSubject(cluster string) string { return "tandem." + cluster + ".registry" }

// CheckCluster checks that id can be a cluster identity: 1 to 64 ASCII
// letters, digits, '-' or '_', so it is one NATS subject token and safe in
// SQL as a literal.
func CheckCluster(id string) error {
	if id == "" || len(id) > 64 {
		return &ValidationError{Field: "cluster", Value: truncate(id), Reason: "must be 1 to 64 characters (see `tandem services cluster`)"}
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return &ValidationError{Field: "cluster", Value: truncate(id), Reason: "may hold only ASCII letters, digits, '-' and '_' (see `tandem services cluster`)"}
		}
	}
	return nil
}

func clusterTable() schema.Table {
	return schema.Table{Name: ClusterTable, Migrations: []schema.Migration{{
		Version: 1, Description: "create the cluster identity",
		Steps: []schema.Step{
			schema.CreateTable{Name: ClusterTable, PrimaryKey: []string{"cluster_id"}, Columns: []schema.Column{
				{Name: "cluster_id", Type: schema.Key},
			}},
			clusterIdentity{},
		},
	}}}
}

// clusterIdentity is the migration step that records a new random
// identity. schema.Ensure runs it under its database lock and only while
// the table is empty, so a database gets exactly one, however many
// runners start at once; a run interrupted between creating the table and
// this step is completed by the next.
type clusterIdentity struct{}

func (clusterIdentity) SQL(engine dialect.Name) (string, error) {
	d, derr := sqldialect.For(engine)
	if derr != nil {
		return "", derr
	}
	t, err := d.Quote(ClusterTable)
	if err != nil {
		return "", err
	}
	c, err := d.Quote("cluster_id")
	if err != nil {
		return "", err
	}
	b := make([]byte, clusterIDBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("cluster identity: %w", err)
	}
	// Hex digits only: a literal that needs no escaping on any engine.
	return "INSERT INTO " + t + " (" + c + ") VALUES ('" + hex.EncodeToString(b) + "')", nil
}

func (clusterIdentity) Done(ctx context.Context, engine dialect.Name, q dialect.Querier) (bool, error) {
	d, derr := sqldialect.For(engine)
	if derr != nil {
		return false, derr
	}
	ok, err := d.TableExists(ctx, q, ClusterTable)
	if err != nil || !ok {
		return false, err
	}
	var n int
	if err := q.GetContext(ctx, &n, `SELECT COUNT(*) FROM `+ClusterTable); err != nil {
		return false, err
	}
	return n > 0, nil
}

// readCluster reads the recorded identity.
func readCluster(ctx context.Context, q dialect.Querier) (string, error) {
	var ids []string
	if err := q.SelectContext(ctx, &ids, `SELECT cluster_id FROM `+ClusterTable); err != nil {
		return "", fmt.Errorf("services: read the cluster identity: %w", err)
	}
	switch {
	case len(ids) == 0:
		return "", fmt.Errorf("services: %w: no cluster identity in %s; on a new database run `tandem schema ensure`; if the row was deleted, record one: INSERT INTO %s (cluster_id) VALUES ('<1 to 64 letters, digits, - or _>')", ErrNoSchema, ClusterTable, ClusterTable)
	case len(ids) > 1:
		return "", fmt.Errorf("services: %w: %s holds %d cluster identities (%v); one database is one cluster: delete the rows that are not this cluster's", ErrInvalid, ClusterTable, len(ids), ids)
	}
	id := ids[0]
	if err := CheckCluster(id); err != nil {
		return "", fmt.Errorf("services: the cluster identity in %s: %w", ClusterTable, err)
	}
	return id, nil
}

// Cluster is the identity of the cluster whose database this registry
// reads: the token that keeps its NATS subjects apart from other
// clusters'.
func (r *Registry) Cluster() string { return r.cluster }
