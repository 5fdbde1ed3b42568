package services

import "github.com/tandem-go/tandem/schema"

// Table names of the registry (and ClusterTable).
const (
	InstancesTable = "tandem_services"
	GatesTable     = "tandem_release_gates"
	// IncarnationsTable keeps every incarnation a newer process of the
	// same id superseded, as it last stood: gates that look back (who wrote
	// old only since a backfill started) read it.
	IncarnationsTable = "tandem_service_incarnations"
	// RevisionTable holds the registry's revision: one row, incremented
	// in the transaction of every change (see Revision).
	RevisionTable = "tandem_registry_revision"
)

// Tables returns the registry's tables for schema.Ensure.
func Tables() []schema.Table {
	return []schema.Table{
		{Name: InstancesTable, Migrations: []schema.Migration{{
			Version: 1, Description: "create the services registry",
			Steps: []schema.Step{
				schema.CreateTable{Name: InstancesTable, PrimaryKey: []string{"instance_id"}, Columns: []schema.Column{
					{Name: "instance_id", Type: schema.Key},
					{Name: "service", Type: schema.Key},
					{Name: "host", Type: schema.Key},
					{Name: "app_release", Type: schema.BigInt},
					{Name: "apis", Type: schema.Text},
					{Name: "state", Type: schema.Key},
					{Name: "started_at", Type: schema.Timestamp},
					{Name: "heartbeat_at", Type: schema.Timestamp},
					{Name: "state_changed_at", Type: schema.Timestamp},
					{Name: "deleted_at", Type: schema.Timestamp, Null: true},
					{Name: "metadata", Type: schema.Text},
					{Name: "phases", Type: schema.Text},
				}},
				schema.CreateIndex{Table: InstancesTable, Name: "tandem_services_by_state", Columns: []string{"state", "app_release"}},
			},
		}, {
			Version: 2, Description: "incarnations: which process holds the id, and how its death is proven",
			Steps: []schema.Step{
				schema.AddColumn{Table: InstancesTable, Column: schema.Column{Name: "incarnation", Type: schema.BigInt, Default: "0"}},
				schema.AddColumn{Table: InstancesTable, Column: schema.Column{Name: "pid", Type: schema.BigInt, Default: "0"}},
				schema.AddColumn{Table: InstancesTable, Column: schema.Column{Name: "liveness", Type: schema.Key, Default: "''"}},
			},
		}, {
			Version: 3, Description: "revisions: the registry revision of each row's last change, for caches that catch up by delta",
			Steps: []schema.Step{
				schema.AddColumn{Table: InstancesTable, Column: schema.Column{Name: "revision", Type: schema.BigInt, Default: "0"}},
				schema.CreateIndex{Table: InstancesTable, Name: "tandem_services_by_revision", Columns: []string{"revision"}},
				// The lapsed-heartbeat check reads only the missing rows.
				schema.CreateIndex{Table: InstancesTable, Name: "tandem_services_by_heartbeat", Columns: []string{"state", "heartbeat_at"}},
			},
		}, {
			Version: 4, Description: "the listing's order, so a page of it reads only its own rows",
			Steps: []schema.Step{
				schema.CreateIndex{Table: InstancesTable, Name: "tandem_services_by_service", Columns: []string{"service", "instance_id"}},
			},
		}, {
			Version: 5, Description: "the write freeze each instance acknowledged (a freeze state's seq, 0 for none)",
			Steps: []schema.Step{
				schema.AddColumn{Table: InstancesTable, Column: schema.Column{Name: "freeze_ack", Type: schema.BigInt, Default: "0"}},
			},
		}}},
		{Name: IncarnationsTable, Migrations: []schema.Migration{{
			Version: 1, Description: "create the history of superseded incarnations",
			Steps: []schema.Step{
				schema.CreateTable{Name: IncarnationsTable, PrimaryKey: []string{"instance_id", "incarnation"}, Columns: []schema.Column{
					{Name: "instance_id", Type: schema.Key},
					{Name: "incarnation", Type: schema.BigInt},
					{Name: "service", Type: schema.Key},
					{Name: "host", Type: schema.Key},
					{Name: "pid", Type: schema.BigInt},
					{Name: "app_release", Type: schema.BigInt},
					{Name: "apis", Type: schema.Text},
					{Name: "state", Type: schema.Key},
					{Name: "started_at", Type: schema.Timestamp},
					{Name: "heartbeat_at", Type: schema.Timestamp},
					{Name: "ended_at", Type: schema.Timestamp},
					{Name: "ended", Type: schema.Text},
					{Name: "metadata", Type: schema.Text},
					{Name: "phases", Type: schema.Text},
				}},
			},
		}}},
		{Name: GatesTable, Migrations: []schema.Migration{{
			Version: 1, Description: "create the finalized release gates",
			Steps: []schema.Step{
				schema.CreateTable{Name: GatesTable, PrimaryKey: []string{"app_release"}, Columns: []schema.Column{
					{Name: "app_release", Type: schema.BigInt},
					{Name: "reason", Type: schema.Text},
					{Name: "finalized_at", Type: schema.Timestamp},
				}},
			},
		}}},
		revisionTable(),
		clusterTable(),
	}
}
