package rpcver_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/examples/inventory"
	pb "github.com/tandem-go/tandem/examples/inventory/inventorypb"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/rpcver"
	"github.com/tandem-go/tandem/schema"
	"github.com/tandem-go/tandem/services"
)

// TestStoredObjects: an item written while a 1.0 instance lives is stored
// at 1.0; read back it is upgraded in memory but its bytes stay while any
// 1.0 instance is registered, and are rewritten once the registry's cap
// proves every instance reads the newer version. Real bytes, real table,
// real registry.
func TestStoredObjects(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		if _, err := schema.Ensure(ctx, db, services.Tables()); err != nil {
			t.Fatal(err)
		}
		reg, err := services.New(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		cache, err := services.NewCache(ctx, reg, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cache.Close)
		register := func(id string, v rpcver.Version) {
			t.Helper()
			if err := reg.Register(ctx, services.Instance{ID: id, Service: "inventory", Host: id, Release: int64(40 + v.Minor),
				APIs: []services.API{{Name: "inventory", Current: v, Oldest: v1_0}}, State: services.StateUp}); err != nil {
				t.Fatal(err)
			}
			if err := cache.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
		}
		register("old", v1_0)
		register("new", v1_2)

		table := rpcver.Table{Name: "stored_items", Key: "id", Data: "body"}
		createBlobTable(t, db, table)
		objs, err := rpcver.NewObjects[*pb.Item](inventory.API, cache)
		if err != nil {
			t.Fatal(err)
		}
		if got := objs.WriteVersion(); got != v1_0 {
			t.Fatalf("write version %s, want 1.0 while a 1.0 instance is registered", got)
		}

		// Written at 1.0: price_cents backported to whole units.
		data, err := objs.Marshal(&pb.Item{Id: "i1", Name: "bolt", PriceCents: 700})
		if err != nil {
			t.Fatal(err)
		}
		// Labels have no 1.0 form: refused, nothing to write.
		if _, err := objs.Marshal(&pb.Item{Id: "i2", Labels: map[string]string{"k": "v"}}); !errors.Is(err, rpcver.ErrCannotBackport) {
			t.Fatalf("err = %v, want ErrCannotBackport", err)
		}
		insert(t, db, table, "i1", data)

		l, err := objs.Get(ctx, db, table, "i1")
		if err != nil {
			t.Fatal(err)
		}
		if l.Stored != v1_0 || l.Msg.PriceCents != 700 || l.Rewrite != nil || l.Written {
			t.Fatalf("loaded %+v, want stored 1.0, upgraded in memory to 700 cents, no rewrite", l)
		}
		if got := stored(t, db, table, "i1"); !bytes.Equal(got, data) {
			t.Fatal("the 1.0 bytes changed while a 1.0 instance is registered")
		}

		// The 1.0 instance is deleted: the cap is 1.2, the next read rewrites.
		if err := reg.Delete(ctx, "old"); err != nil {
			t.Fatal(err)
		}
		if err := cache.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		l, err = objs.Get(ctx, db, table, "i1")
		if err != nil {
			t.Fatal(err)
		}
		if l.Stored != v1_0 || !l.Written || l.Msg.PriceCents != 700 {
			t.Fatalf("loaded %+v, want stored 1.0 rewritten", l)
		}
		after := stored(t, db, table, "i1")
		if bytes.Equal(after, data) || !bytes.Equal(after, l.Rewrite) {
			t.Fatal("the row does not hold the rewritten bytes")
		}
		l, err = objs.Get(ctx, db, table, "i1")
		if err != nil {
			t.Fatal(err)
		}
		if l.Stored != v1_2 || l.Rewrite != nil || l.Msg.PriceCents != 700 || l.Msg.Name != "bolt" {
			t.Fatalf("loaded %+v, want stored 1.2 and nothing to rewrite", l)
		}
	})
}

// TestStoredObjectsConcurrentWriter: a rewrite never overwrites bytes some
// other writer put there after the read.
func TestStoredObjectsConcurrentWriter(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		table := rpcver.Table{Name: "stored_items", Key: "id", Data: "body"}
		createBlobTable(t, db, table)
		old, _ := rpcver.NewObjects[*pb.Item](inventory.API, capAt(v1_0))
		cur, _ := rpcver.NewObjects[*pb.Item](inventory.API, nil)
		data, err := old.Marshal(&pb.Item{Id: "i1", Price: 3})
		if err != nil {
			t.Fatal(err)
		}
		insert(t, db, table, "i1", data)
		l, err := cur.Load(stored(t, db, table, "i1"))
		if err != nil || l.Rewrite == nil {
			t.Fatalf("load: %+v %v, want a rewrite", l, err)
		}
		// Someone else writes first; the stale rewrite must not land.
		newer, _ := cur.Marshal(&pb.Item{Id: "i1", Price: 9, PriceCents: 900})
		if _, err := db.ExecContext(ctx, db.Rebind(`UPDATE stored_items SET body = ? WHERE id = ?`), newer, "i1"); err != nil {
			t.Fatal(err)
		}
		if err := cur.WriteBack(ctx, db, table, "i1", &l); err != nil {
			t.Fatal(err)
		}
		if l.Written {
			t.Fatal("WriteBack reports a write over newer bytes")
		}
		if got := stored(t, db, table, "i1"); !bytes.Equal(got, newer) {
			t.Fatal("a stale rewrite replaced newer bytes")
		}
	})
}

func TestObjectDecodeErrors(t *testing.T) {
	objs, err := rpcver.NewObjects[*pb.Item](inventory.API, nil)
	if err != nil {
		t.Fatal(err)
	}
	good, _ := objs.Marshal(&pb.Item{Id: "x"})
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"bare protobuf", []byte{0x0a, 0x01, 'x'}},
		{"truncated header", []byte{0x7f}},
		{"other major", append([]byte{0x7f, 2, 0}, good[3:]...)},
		{"bad payload", []byte{0x7f, 1, 2, 0x0a, 0x05}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := objs.Unmarshal(tc.data)
			var oe *rpcver.ObjectError
			if !errors.Is(err, rpcver.ErrBadObject) || !errors.As(err, &oe) {
				t.Fatalf("err = %v, want an ObjectError", err)
			}
		})
	}
	if _, err := rpcver.NewObjects[*pb.GetItemRequest](inventory.API, nil); err != nil {
		t.Fatalf("a request message is part of the API: %v", err)
	}
}

func createBlobTable(t *testing.T, db *dialect.DB, tb rpcver.Table) {
	t.Helper()
	d := sqldialect.Of(db)
	stmt := `CREATE TABLE ` + tb.Name + ` (` + tb.Key + ` ` + d.KeyType() + ` NOT NULL PRIMARY KEY, ` + tb.Data + ` ` + sqldialect.BlobType(d) + ` NOT NULL)`
	if _, err := db.ExecContext(context.Background(), stmt); err != nil {
		t.Fatal(err)
	}
}

func insert(t *testing.T, db *dialect.DB, tb rpcver.Table, key string, data []byte) {
	t.Helper()
	if _, err := db.ExecContext(context.Background(), db.Rebind(`INSERT INTO `+tb.Name+` (`+tb.Key+`, `+tb.Data+`) VALUES (?, ?)`), key, data); err != nil {
		t.Fatal(err)
	}
}

func stored(t *testing.T, db *dialect.DB, tb rpcver.Table, key string) []byte {
	t.Helper()
	var b []byte
	if err := db.QueryRowxContext(context.Background(), db.Rebind(`SELECT `+tb.Data+` FROM `+tb.Name+` WHERE `+tb.Key+` = ?`), key).Scan(&b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestStoredObjectsNeedReaders: a write-back needs proof from the registry.
// With no reader registered the old bytes stay; once a reader registers
// the version it reads, they are rewritten to it. WithReaderAPI gates on
// the readers' own entry, not on the servers of the API.
func TestStoredObjectsNeedReaders(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		reg, cache := newRegistry(t, db, nil)
		register := func(id string, apis ...services.API) {
			t.Helper()
			if err := reg.Register(ctx, services.Instance{ID: id, Service: "worker", Host: id, Release: 1, APIs: apis, State: services.StateUp}); err != nil {
				t.Fatal(err)
			}
			if err := cache.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
		}
		table := rpcver.Table{Name: "stored_items", Key: "id", Data: "body"}
		createBlobTable(t, db, table)
		atOld, _ := rpcver.NewObjects[*pb.Item](inventory.API, capAt(v1_0))
		data, err := atOld.Marshal(&pb.Item{Id: "i1", PriceCents: 500})
		if err != nil {
			t.Fatal(err)
		}
		insert(t, db, table, "i1", data)

		objs, err := rpcver.NewObjects[*pb.Item](inventory.API, cache)
		if err != nil {
			t.Fatal(err)
		}
		l, err := objs.Get(ctx, db, table, "i1")
		if err != nil {
			t.Fatal(err)
		}
		if l.Stored != v1_0 || l.Msg.PriceCents != 500 || l.Rewrite != nil || l.Written {
			t.Fatalf("no reader registered: loaded %+v, want the 1.0 bytes kept", l)
		}
		if !bytes.Equal(stored(t, db, table, "i1"), data) {
			t.Fatal("the 1.0 bytes changed with no reader registered to prove a newer version reads")
		}

		// Readers on their own entry: servers of the API at 1.2 prove
		// nothing about them.
		items, err := rpcver.NewObjects[*pb.Item](inventory.API, cache, rpcver.WithReaderAPI("inventory.items"))
		if err != nil {
			t.Fatal(err)
		}
		register("server", inventory.API.Registration())
		if l, err := items.Get(ctx, db, table, "i1"); err != nil || l.Rewrite != nil {
			t.Fatalf("only servers registered: %+v %v, want the bytes kept for the unregistered readers", l, err)
		}
		old, err := rpcver.NewObjects[*pb.Item](inventoryAt(t, v1_1), nil, rpcver.WithReaderAPI("inventory.items"))
		if err != nil {
			t.Fatal(err)
		}
		if r := old.Registration(); r.Name != "inventory.items" || r.Current != v1_1 {
			t.Fatalf("registration %+v", r)
		}
		register("worker-1.1", old.Registration())
		if got := items.WriteVersion(); got != v1_1 {
			t.Fatalf("write version %s, want 1.1, the registered reader's", got)
		}
		l, err = items.Get(ctx, db, table, "i1")
		if err != nil || !l.Written {
			t.Fatalf("a 1.1 reader registered: %+v %v, want the bytes rewritten", l, err)
		}
		if l, err := items.Load(stored(t, db, table, "i1")); err != nil || l.Stored != v1_1 || l.Msg.PriceCents != 500 {
			t.Fatalf("rewritten: %+v %v, want stored at 1.1, the reader's version", l, err)
		}

		if _, err := rpcver.NewObjects[*pb.Item](inventory.API, cache, rpcver.WithReaderAPI("")); !errors.Is(err, rpcver.ErrInvalid) {
			t.Fatalf("empty reader API: %v, want ErrInvalid", err)
		}
	})
}
