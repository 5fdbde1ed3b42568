package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/natstest"
	"github.com/tandem-go/tandem/services"
)

// browserSkipped marks a browser test skipped for want of Chromium; CI
// fails when it sees it (see .ci/run).
const browserSkipped = "TANDEM-BROWSER-SKIPPED"

// chromium finds Debian's chromium (or another Chrome) on PATH.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skipf("%s: no chromium on PATH (apt-get install -y chromium)", browserSkipped)
	return ""
}

// artifactDir is where tests keep what a person may want to look at:
// $TANDEM_ARTIFACTS, or tandem-artifacts in the temporary directory.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("TANDEM_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "tandem-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestServePageInBrowser drives the live page in headless Chromium during
// a short rollout and checks what a person watching it sees, without
// reloading: the move's phase advancing, a blocker (an instance still on
// the old phase) appearing and clearing, and the floor rising as the
// instances restart at the next release. It keeps a screenshot taken mid-
// rollout in artifactDir.
func TestServePageInBrowser(t *testing.T) {
	path := chromium(t)
	t.Setenv("TANDEM_PLAN", "")
	plan := writeFile(t, "plan.yaml", servePlan)
	dsn, db := ledgerDB(t, dbtest.Engine{Name: dialect.SQLite})
	ns := natstest.New(t)
	nc := natstest.Connect(t, ns)
	ctx := context.Background()
	reg, err := services.New(ctx, db, services.WithNATS(nc))
	if err != nil {
		t.Fatal(err)
	}
	api := []services.API{{Name: "shop", Current: services.MustParseVersion("1.1"), Oldest: services.MustParseVersion("1.0")}}
	start := func(id string, release int64, phase string) {
		t.Helper()
		if err := reg.Register(ctx, services.Instance{ID: id, Service: "shop", Host: "h-" + id, Release: release, APIs: api,
			Phases: map[string]string{"cents": phase}}); err != nil {
			t.Fatal(err)
		}
	}
	// restart is a rolling restart of one instance at another release.
	restart := func(id string, release int64, phase string) {
		t.Helper()
		if err := reg.Deregister(ctx, id); err != nil {
			t.Fatal(err)
		}
		start(id, release, phase)
	}
	start("web-1", 41, "legacy")
	start("web-2", 41, "legacy")
	args := []string{"--db", dsn, "--plan", plan, "--nats", ns.ClientURL()}
	base := startServe(t, args...)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(1280, 1100), chromedp.UserDataDir(t.TempDir()))
	actx, cancel := chromedp.NewExecAllocator(ctx, opts...)
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	bctx, cancel = context.WithTimeout(bctx, 3*time.Minute)
	defer cancel()
	if err := chromedp.Do(bctx, chromedp.Navigate(base)); err != nil {
		t.Fatal(err)
	}
	// wait polls a JavaScript condition on the page; the page is never
	// reloaded, so each change must come through its event stream.
	wait := func(what, cond string) {
		t.Helper()
		if _, err := chromedp.Run(bctx, chromedp.Poll[bool](cond, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(60*time.Second))); err != nil {
			html, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.getElementById("live").innerText`))
			t.Fatalf("the page never showed %s (%s): %v\npage:\n%s", what, cond, err, html)
		}
	}
	move := `document.querySelector('[data-move="cents"]')`
	instancesBlocker := move + `.querySelector('li.blocker[data-kind="instances"]')`
	floor := `document.getElementById("floor").dataset.floor`

	wait("the page following its event stream", `document.getElementById("conn").dataset.state === "live"`)
	wait("floor 41", floor+` === "41"`)
	wait("cents at legacy", move+`.dataset.phase === "legacy"`)
	wait("the gate to write-both open", move+`.querySelector(".next.open") !== null`)

	// The operator advances the move; web-1 acknowledges, web-2 lags.
	must(t, exitOK, append(args, "moves", "advance", "cents")...)
	if err := reg.Heartbeat(ctx, "web-1", services.Heartbeat{Phases: map[string]string{"cents": "write-both"}}); err != nil {
		t.Fatal(err)
	}
	wait("cents at write-both", move+`.dataset.phase === "write-both" && `+move+`.querySelector(".phases li.current").textContent === "write-both"`)
	wait("the blocker naming web-2", instancesBlocker+` !== null && `+instancesBlocker+`.textContent.includes("web-2")`)
	wait("the overall verdict blocked", `document.getElementById("verdict").className === "blocked"`)

	// web-2 restarts at release 42, acting on write-both: the blocker
	// clears; web-1 still holds the floor at 41.
	restart("web-2", 42, "write-both")
	wait("the instances blocker gone", instancesBlocker+` === null`)
	wait("two releases", `document.querySelectorAll("#releases .release").length === 2`)
	wait("the backfill blocker with its command", move+`.querySelector('li.blocker[data-kind="backfill"] code.cmd').textContent === "tandem moves backfill cents"`)
	wait("floor still 41", floor+` === "41"`)
	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	png := filepath.Join(artifactDir(t), "serve-rollout.png")
	if err := os.WriteFile(png, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot mid-rollout: %s", png)

	// The backfill runs; web-1 restarts at 42: the floor rises.
	must(t, exitOK, append(args, "moves", "backfill", "cents")...)
	wait("the backfill complete", move+`.querySelector(".backfill").dataset.percent === "100"`)
	restart("web-1", 42, "write-both")
	wait("floor 42", floor+` === "42"`)
	wait("one release", `document.querySelectorAll("#releases .release").length === 1`)
	fmt.Fprintln(os.Stderr) // keep chromium's last words off the test's result line
}
