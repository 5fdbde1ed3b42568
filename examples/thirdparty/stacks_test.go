package stacks_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/rpcver"
	"github.com/tandem-go/tandem/schema"
	"github.com/tandem-go/tandem/services"
	"github.com/tandem-go/tandem/tandemtest"

	"example.com/stacks"
	pb "example.com/stacks/stackspb"
)

func createTable(ctx context.Context, t testing.TB, db *dialect.DB) {
	db.MustExec(stacks.CreateTableSQL)
	db.MustExec(`INSERT INTO resource (id, name, properties) VALUES ('seed', 'seed', '{"size": 1}')`)
}

// TestStoreAcrossEveryBoundary runs the store's own code, wired to a real
// tracker per release, across every boundary of the move: both releases
// create resources and update one shared row.
func TestStoreAcrossEveryBoundary(t *testing.T) {
	tandemtest.ForEachEngine(t, func(t *testing.T, db *dialect.DB) {
		var n atomic.Int64
		app := func(ctx context.Context, t testing.TB, db *dialect.DB, tr *dualwrite.Tracker) tandemtest.Code {
			store, err := stacks.NewStore(db, tr)
			if err != nil {
				t.Fatal(err)
			}
			return func(ctx context.Context, t testing.TB, db *dialect.DB, p move.Phase) {
				i := n.Add(1)
				res := &pb.Resource{Id: fmt.Sprintf("r%d", i), Name: "new", Properties: fmt.Sprintf(`{"n": %d}`, i)}
				if err := store.Create(ctx, res); err != nil {
					t.Fatalf("create at %s: %v", p, err)
				}
				shared := &pb.Resource{Id: "seed", Name: "seed", Properties: fmt.Sprintf(`{"size": %d}`, i)}
				if err := store.Update(ctx, shared); err != nil {
					t.Fatalf("update at %s: %v", p, err)
				}
				got, err := store.Get(ctx, res.Id)
				if err != nil || got.Properties != res.Properties {
					t.Fatalf("get %s at %s: %v (%v), want %s", res.Id, p, got, err, res.Properties)
				}
			}
		}
		bs := tandemtest.Run(t, db, tandemtest.Case{Move: stacks.PropertiesMove, Setup: createTable, App: app})
		if len(bs) != 4 || bs[1].Verify == nil || bs[1].Verify.Mismatches != 0 {
			t.Fatalf("walked %+v", bs)
		}
	})
}

// TestRollingUpgrade rolls two servers from release 1 to 4, one at a time,
// under RPC load, while the move goes from legacy to contracted. At
// read-new the operator freezes the move's writes: once both servers have
// acknowledged, every write is refused across RPC with the freeze's typed
// error and none commits, while reads are answered; after the thaw is
// acknowledged, writes resume.
func TestRollingUpgrade(t *testing.T) {
	tandemtest.ForEachEngine(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		createTable(ctx, t, db)
		if _, err := schema.Ensure(ctx, db, append(services.Tables(), dualwrite.Tables()...)); err != nil {
			t.Fatal(err)
		}
		nc := startNATS(t)
		reg, err := services.New(ctx, db, services.WithNATS(nc))
		if err != nil {
			t.Fatal(err)
		}
		mg, err := dualwrite.New(ctx, db, []move.Move{stacks.PropertiesMove}, dualwrite.WithRegistry(reg))
		if err != nil {
			t.Fatal(err)
		}
		const every = 100 * time.Millisecond
		// Handler errors reach the test's log, with the id the caller got.
		log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
		live := map[string]*stacks.Instance{}
		roll := func(release int64) {
			t.Helper()
			for _, id := range []string{"stacks-1", "stacks-2"} {
				if in := live[id]; in != nil {
					if err := in.Leave(ctx); err != nil {
						t.Fatal(err)
					}
				}
				in, err := stacks.Start(ctx, db, nc, id, release, every, log)
				if err != nil {
					t.Fatalf("start %s at release %d: %v", id, release, err)
				}
				live[id] = in
			}
		}
		roll(1)
		l := startLoad(t, ctx, reg, nc)
		advance := func(to move.Phase) {
			t.Helper()
			if to == move.Contracted {
				if _, err := mg.Finalize(ctx, stacks.PropertiesMove.Name, "the rollout is done"); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := mg.Advance(ctx, stacks.PropertiesMove.Name, to); err != nil {
				t.Fatalf("advance to %s: %v", to, err)
			}
			waitActing(t, ctx, reg, to)
		}
		roll(2)
		advance(move.WriteBoth)
		if _, err := mg.Backfill(ctx, stacks.PropertiesMove.Name); err != nil {
			t.Fatal(err)
		}
		if v, err := mg.Verify(ctx, stacks.PropertiesMove.Name); err != nil || v.Mismatches != 0 {
			t.Fatalf("verify: %+v (%v)", v, err)
		}
		roll(3)
		advance(move.ReadNew)
		frozenRound(t, ctx, db, mg, l)
		roll(4)
		advance(move.WriteNew)
		advance(move.Contracted)
		l.stop(t)
		for _, in := range live {
			if err := in.Leave(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.ExecContext(ctx, `SELECT properties FROM resource`); err == nil {
			t.Fatal("resource.properties still exists after contract")
		}
		var data string
		if err := db.GetContext(ctx, &data, `SELECT data FROM resource_data WHERE resource_id = 'seed'`); err != nil || data != `{"size": 1}` {
			t.Fatalf("the seeded row's properties read %q (%v) from resource_data", data, err)
		}
		t.Logf("%d resources created and read back over RPC across 4 releases", l.created)
	})
}

// frozenRound freezes the move's writes under the load, checks what the
// freeze promises once every server has acknowledged it, and thaws.
func frozenRound(t *testing.T, ctx context.Context, db *dialect.DB, mg *dualwrite.Manager, l *load) {
	t.Helper()
	const reason = "restore of the resource table"
	name := stacks.PropertiesMove.Name
	refused0, reads0 := l.frozenCount(), l.readsWhileFrozen()
	st, err := mg.Freeze(ctx, dualwrite.FreezeScope{Moves: []string{name}}, reason)
	if err != nil {
		t.Fatal(err)
	}
	everywhere(t, ctx, mg, st.Seq)
	// From the acknowledgement on, no write commits: count the rows, let
	// the load run into the freeze, and count again.
	count := func() (n int) {
		t.Helper()
		if err := db.GetContext(ctx, &n, `SELECT COUNT(*) FROM resource`); err != nil {
			t.Fatal(err)
		}
		return n
	}
	rows, refused := count(), l.frozenCount()
	_, err = stacks.CreateResource.Call(ctx, l.client, &pb.CreateResourceRequest{Resource: &pb.Resource{Id: "during-freeze", Name: "r", Properties: "{}"}})
	var re *rpcver.RemoteError
	if !errors.Is(err, dualwrite.ErrFrozen) || !errors.Is(err, rpcver.ErrFrozen) || !errors.As(err, &re) || re.Code != rpcver.CodeFrozen || !strings.Contains(err.Error(), reason) {
		t.Fatalf("a write while frozen got %v, want the freeze's refusal (code %s, %q)", err, rpcver.CodeFrozen, reason)
	}
	got, err := stacks.GetResource.Call(ctx, l.client, &pb.GetResourceRequest{Id: "seed"})
	if err != nil || got.Resource.GetName() != "seed" {
		t.Fatalf("a read while frozen got %v (%v)", got, err)
	}
	for l.frozenCount() < refused+20 {
		time.Sleep(10 * time.Millisecond)
	}
	if n := count(); n != rows {
		t.Fatalf("%d row(s) committed after every server acknowledged the freeze", n-rows)
	}
	created := l.createdCount()
	st, err = mg.Thaw(ctx, dualwrite.FreezeScope{All: true})
	if err != nil {
		t.Fatal(err)
	}
	everywhere(t, ctx, mg, st.Seq)
	if _, err := stacks.CreateResource.Call(ctx, l.client, &pb.CreateResourceRequest{Resource: &pb.Resource{Id: "after-thaw", Name: "r", Properties: "{}"}}); err != nil {
		t.Fatalf("a write after the thaw: %v", err)
	}
	for l.createdCount() < created+5 {
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("frozen: %d write(s) refused with the freeze's error, %d read(s) answered meanwhile", l.frozenCount()-refused0, l.readsWhileFrozen()-reads0)
}

// everywhere waits until every server acknowledged freeze state seq.
func everywhere(t *testing.T, ctx context.Context, mg *dualwrite.Manager, seq int64) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		fs, err := mg.FreezeStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if fs.Seq != seq {
			t.Fatalf("freeze state %d in force, want %d", fs.Seq, seq)
		}
		if fs.Everywhere() && len(fs.Acked) == 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("freeze state %d not acknowledged everywhere after a minute: pending %+v", seq, fs.Pending)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(string(b))
	return len(b), nil
}

func startNATS(t *testing.T) *nats.Conn {
	t.Helper()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS not ready")
	}
	nc, err := nats.Connect(ns.ClientURL(), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func waitActing(t *testing.T, ctx context.Context, reg *services.Registry, p move.Phase) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		list, err := reg.List(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		acting := 0
		for _, in := range list {
			if in.Phases[stacks.PropertiesMove.Name] == p.String() {
				acting++
			}
		}
		if acting == len(list) && len(list) == 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("instances not acting on %s after a minute: %+v", p, list)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// load creates a resource, updates it and reads it back, over and over,
// through the registry's cap. A write refused by a write freeze is counted
// apart from failures, and a read of the seeded resource follows it.
type load struct {
	client  *rpcver.Client
	halt    atomic.Bool
	done    chan struct{}
	mu      sync.Mutex
	fail    []error
	created int
	frozen  int // writes refused with the freeze's error
	reads   int // reads answered after a refused write
}

func (l *load) frozenCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.frozen
}

func (l *load) createdCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.created
}

func (l *load) readsWhileFrozen() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reads
}

// refused counts a write the freeze refused, and reads the seeded
// resource: reads go on while writes are frozen.
func (l *load) refused(ctx context.Context) {
	l.mu.Lock()
	l.frozen++
	l.mu.Unlock()
	got, err := stacks.GetResource.Call(ctx, l.client, &pb.GetResourceRequest{Id: "seed"})
	if err != nil || got.Resource.GetName() != "seed" {
		l.failed(fmt.Errorf("get seed while frozen: %v (%w)", got, err))
		return
	}
	l.mu.Lock()
	l.reads++
	l.mu.Unlock()
}

func startLoad(t *testing.T, ctx context.Context, reg *services.Registry, nc *nats.Conn) *load {
	t.Helper()
	cache, err := services.NewCache(ctx, reg, nc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cache.Close)
	api, err := stacks.NewAPI()
	if err != nil {
		t.Fatal(err)
	}
	client, err := rpcver.NewClient(nc, api, cache)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	l := &load{client: client, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for i := 0; !l.halt.Load(); i++ {
			res := &pb.Resource{Id: fmt.Sprintf("rpc-%d", i), Name: "r", Properties: fmt.Sprintf(`{"i": %d}`, i)}
			_, err := stacks.CreateResource.Call(ctx, client, &pb.CreateResourceRequest{Resource: res})
			if errors.Is(err, dualwrite.ErrFrozen) {
				l.refused(ctx)
				continue
			}
			if err != nil {
				l.failed(fmt.Errorf("create %s: %w", res.Id, err))
				continue
			}
			res.Properties = fmt.Sprintf(`{"i": %d, "updated": true}`, i)
			_, err = stacks.UpdateResource.Call(ctx, client, &pb.UpdateResourceRequest{Resource: res})
			if errors.Is(err, dualwrite.ErrFrozen) {
				// Frozen between the create and the update: the create
				// committed before the freeze, the update was refused.
				l.refused(ctx)
				continue
			}
			if err != nil {
				l.failed(fmt.Errorf("update %s: %w", res.Id, err))
				continue
			}
			got, err := stacks.GetResource.Call(ctx, client, &pb.GetResourceRequest{Id: res.Id})
			if err == nil && got.Resource.GetProperties() != res.Properties {
				err = fmt.Errorf("reads %q after writing %q", got.Resource.GetProperties(), res.Properties)
			}
			if err != nil {
				l.failed(fmt.Errorf("get %s: %w", res.Id, err))
				continue
			}
			l.mu.Lock()
			l.created++
			l.mu.Unlock()
		}
	}()
	return l
}

func (l *load) failed(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fail = append(l.fail, err)
}

func (l *load) stop(t *testing.T) {
	t.Helper()
	l.halt.Store(true)
	<-l.done
	if len(l.fail) > 0 {
		t.Fatalf("%d request(s) failed, first: %v", len(l.fail), errors.Join(l.fail[0]))
	}
	if l.created == 0 {
		t.Fatal("no request went through")
	}
}
