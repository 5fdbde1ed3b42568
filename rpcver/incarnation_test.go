package rpcver_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/examples/inventory"
	pb "github.com/tandem-go/tandem/examples/inventory/inventorypb"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/natstest"
	"github.com/tandem-go/tandem/rpcver"
	"github.com/tandem-go/tandem/schema"
	"github.com/tandem-go/tandem/services"
)

// The child process of the incarnation tests: an inventory server that
// registers an instance id, directly or through a Remote, and serves until
// it is killed. Its item "who" is named after its pid, so the parent knows
// which process answered.
const childMode = "TANDEM_INCARNATION_CHILD"

func TestIncarnationChild(t *testing.T) {
	mode := os.Getenv(childMode)
	if mode == "" {
		t.Skip("run as a child process by TestRestartOfAKilledInstance")
	}
	ctx := context.Background()
	say := func(format string, args ...any) { fmt.Printf(format+"\n", args...) }
	fail := func(what string, err error) {
		say("FAILED %s: %v", what, err)
		os.Exit(1)
	}
	nc, err := nats.Connect(os.Getenv("CHILD_NATS"))
	if err != nil {
		fail("connect", err)
	}
	var rep services.Reporter
	switch mode {
	case "direct":
		db, err := dialect.Open(ctx, os.Getenv("CHILD_DSN"))
		if err != nil {
			fail("open", err)
		}
		reg, err := services.New(ctx, db, services.WithNATS(nc))
		if err != nil {
			fail("registry", err)
		}
		rep = reg
	case "remote":
		rep = services.NewRemote(nc, os.Getenv("CHILD_CLUSTER"))
	}
	store := inventory.NewMemStore()
	_ = store.Put(ctx, &pb.Item{Id: "who", Name: fmt.Sprintf("pid-%d", os.Getpid())}, false)
	inst := services.Instance{ID: os.Getenv("CHILD_ID"), Service: "inventory", Host: "host-" + mode, Release: 42}
	srv, err := rpcver.NewServer(nc, inventoryAt(t, v1_0), rpcver.WithRegistry(rep, inst, 200*time.Millisecond),
		rpcver.WithOnFenced(func(err error) { say("FENCED %v", err) }))
	if err != nil {
		fail("server", err)
	}
	if err := inventory.Handle(srv, store); err != nil {
		fail("handle", err)
	}
	if err := srv.Start(ctx); err != nil {
		if errors.Is(err, services.ErrDuplicateInstance) {
			say("REFUSED %v", err)
			os.Exit(2)
		}
		fail("start", err)
	}
	say("READY %d", os.Getpid())
	select {} // until killed
}

type childProc struct {
	cmd   *exec.Cmd
	lines chan string
	done  chan struct{} // closed when the child has exited, with err set
	err   error
}

func startChild(t *testing.T, mode, dsn, natsURL, cluster, id string) *childProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestIncarnationChild$")
	cmd.Env = append(os.Environ(), childMode+"="+mode, "CHILD_DSN="+dsn, "CHILD_NATS="+natsURL, "CHILD_ID="+id, "CHILD_CLUSTER="+cluster)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &childProc{cmd: cmd, lines: make(chan string, 1024), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
		c.err = cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.done
	})
	return c
}

// await returns the first line the child prints that starts with one of
// the words, or fails.
func (c *childProc) await(t *testing.T, within time.Duration, words ...string) string {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				t.Fatalf("child %d exited without printing %v", c.cmd.Process.Pid, words)
			}
			for _, w := range words {
				if strings.HasPrefix(l, w+" ") {
					return l
				}
			}
			t.Logf("child %d: %s", c.cmd.Process.Pid, l)
		case <-deadline:
			t.Fatalf("child %d printed none of %v within %s", c.cmd.Process.Pid, words, within)
		}
	}
}

// A process killed with SIGKILL leaves its row up; the next process of its
// id must not wait for the heartbeat to lapse: it proves its predecessor
// dead (its liveness token is free) and serves within 2 s of the kill.
// While the first process lives, a second one with its id is refused,
// naming both.
func TestRestartOfAKilledInstance(t *testing.T) {
	for _, e := range dbtest.Engines {
		t.Run(string(e.Name), func(t *testing.T) {
			ctx := context.Background()
			dsn := dbtest.DSN(t, e.Name)
			db, err := dialect.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := schema.Ensure(ctx, db, services.Tables()); err != nil {
				t.Fatal(err)
			}
			reg, err := services.New(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			ns := natstest.New(t)
			nc := natstest.Connect(t, ns)
			svc, err := services.Serve(natstest.Connect(t, ns), reg)
			if err != nil {
				t.Fatal(err)
			}
			defer svc.Stop() //nolint:errcheck
			client, err := rpcver.NewClient(nc, inventoryAt(t, v1_0), capAt(v1_0), rpcver.WithTimeout(5*time.Second), rpcver.WithCluster(reg.Cluster()))
			if err != nil {
				t.Fatal(err)
			}
			who := func() string {
				cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
				defer cancel()
				resp, err := inventory.GetItem.Call(cctx, client, &pb.GetItemRequest{Id: "who"})
				if err != nil {
					return ""
				}
				return resp.GetItem().GetName()
			}
			for _, mode := range []string{"direct", "remote"} {
				t.Run(mode, func(t *testing.T) {
					id := "inventory-" + mode
					first := startChild(t, mode, dsn, ns.ClientURL(), reg.Cluster(), id)
					firstPid := first.await(t, 20*time.Second, "READY")
					second := startChild(t, mode, dsn, ns.ClientURL(), reg.Cluster(), id)
					refused := second.await(t, 20*time.Second, "REFUSED", "READY")
					for _, want := range []string{"REFUSED", "pid " + strings.TrimPrefix(firstPid, "READY "),
						"pid " + strconv.Itoa(second.cmd.Process.Pid), "incarnation 1", "tandem services delete " + id + " --force"} {
						if !strings.Contains(refused, want) {
							t.Fatalf("second live process of %s: %q lacks %q", id, refused, want)
						}
					}
					<-second.done
					if second.err == nil {
						t.Fatal("the refused process exited 0")
					}

					if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
						t.Fatal(err)
					}
					<-first.done
					killed := time.Now()
					third := startChild(t, mode, dsn, ns.ClientURL(), reg.Cluster(), id)
					want := fmt.Sprintf("pid-%d", third.cmd.Process.Pid)
					for who() != want {
						if time.Since(killed) > 20*time.Second {
							t.Fatalf("the restarted %s never served; child said %s", id, third.await(t, time.Second, "READY", "FAILED", "REFUSED"))
						}
						time.Sleep(10 * time.Millisecond)
					}
					took := time.Since(killed)
					t.Logf("%s: killed with SIGKILL, the next process of its id served %s later", id, took.Round(time.Millisecond))
					if took > 2*time.Second {
						t.Errorf("restart of a killed %s served after %s, want within 2s", id, took)
					}
					in, err := reg.Get(ctx, id)
					if err != nil || in.Incarnation != 2 || in.PID != third.cmd.Process.Pid {
						t.Fatalf("row after the restart: %+v %v", in, err)
					}
					past, err := reg.PastIncarnations(ctx)
					if err != nil {
						t.Fatal(err)
					}
					var found bool
					for _, p := range past {
						if p.ID == id && p.Incarnation == 1 && strings.Contains(p.Ended, "process ended") && p.Release == 42 {
							found = true
						}
					}
					if !found {
						t.Fatalf("incarnation 1 of %s not kept in the history: %+v", id, past)
					}
				})
			}
		})
	}
}
