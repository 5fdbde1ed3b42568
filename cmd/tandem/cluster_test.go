package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/services"
)

// `tandem services cluster` prints the identity schema ensure recorded,
// the same on every run, and refuses before ensure with the command to run.
func TestServicesCluster(t *testing.T) {
	for _, e := range dbtest.Engines {
		t.Run(string(e.Name), func(t *testing.T) { servicesCluster(t, dbtest.DSN(t, e.Name)) })
	}
}

func servicesCluster(t *testing.T, dsn string) {
	if _, errOut, code := tandem(t, "--db", dsn, "services", "cluster"); code == 0 || !strings.Contains(errOut, "tandem schema ensure") {
		t.Fatalf("before ensure: code %d, %s", code, errOut)
	}
	if out, _, code := tandem(t, "--db", dsn, "schema", "ensure"); code != 0 || !strings.Contains(out, "Migrated table 'tandem_cluster' from version 0 to 1") {
		t.Fatalf("ensure: %d %s", code, out)
	}
	ctx := context.Background()
	d, err := dialect.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	reg, err := services.New(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	id := reg.Cluster()
	out, _, code := tandem(t, "--db", dsn, "services", "cluster")
	if code != 0 || !strings.Contains(out, "Cluster: "+id+"\n") || !strings.Contains(out, "tandem."+id+".services.changed") {
		t.Fatalf("services cluster: %d %s", code, out)
	}
	tandem(t, "--db", dsn, "schema", "ensure")
	out, _, code = tandem(t, "--db", dsn, "--json", "services", "cluster")
	var v struct {
		Cluster string `json:"cluster"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != 0 || v.Cluster != id {
		t.Fatalf("services cluster --json after a second ensure: %v %s, want %s", err, out, id)
	}
}
