package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

func TestVersionFromBuildInfo(t *testing.T) {
	main := debug.Module{Path: "github.com/tandem-go/tandem", Version: "v1.4.0"}
	for _, tc := range []struct {
		name     string
		bi       debug.BuildInfo
		wantLine string
		wantRev  string // "" for none
		wantDirt string // "", "true" or "false"
	}{
		{"tagged, clean", debug.BuildInfo{GoVersion: "go1.26.8", Main: main, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "e99362f05d457e9de9dbfd04f084cfadd6d78f7a"}, {Key: "vcs.time", Value: "2026-12-01T11:37:26Z"},
			{Key: "vcs.modified", Value: "false"}, {Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "arm64"}}},
			"tandem v1.4.0, revision e99362f05d45 of 2026-12-01T11:37:26Z, go1.26.8 linux/arm64", "e99362f05d457e9de9dbfd04f084cfadd6d78f7a", "false"},
		{"dirty checkout", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: main.Path, Version: "v0.0.0-20261201113726-e99362f05d45+dirty"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "e99362f0"}, {Key: "vcs.modified", Value: "true"}, {Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "amd64"}}},
			"tandem v0.0.0-20261201113726-e99362f05d45+dirty, revision e99362f0 (dirty), go1.26.8 linux/amd64", "e99362f0", "true"},
		{"no version control", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: main.Path},
			Settings: []debug.BuildSetting{{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "amd64"}}},
			"tandem (devel), go1.26.8 linux/amd64", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := versionOf(&tc.bi)
			if got := v.String(); got != tc.wantLine {
				t.Errorf("line:\n got %s\nwant %s", got, tc.wantLine)
			}
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			var j map[string]any
			if err := json.Unmarshal(b, &j); err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.wantRev == "" && (j["revision"] != nil || j["dirty"] != nil):
				t.Errorf("no revision should be null: %s", b)
			case tc.wantRev != "" && (j["revision"] != tc.wantRev || j["dirty"] != (tc.wantDirt == "true")):
				t.Errorf("revision and dirty: %s", b)
			}
		})
	}
}

func TestVersionCommand(t *testing.T) {
	out, errOut, code := tandem(t, "version", "--json")
	var v buildVersion
	if err := json.Unmarshal([]byte(out), &v); code != exitOK || err != nil {
		t.Fatalf("version --json: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	if v.Module != "github.com/tandem-go/tandem" || v.GoVersion != runtime.Version() || v.Platform != runtime.GOOS+"/"+runtime.GOARCH || v.Version == "" {
		t.Fatalf("version --json: %+v", v)
	}
	out, _, code = tandem(t, "--version")
	if code != exitOK || !strings.HasPrefix(out, "tandem ") || !strings.HasSuffix(out, runtime.Version()+" "+v.Platform+"\n") || strings.Count(out, "\n") != 1 {
		t.Fatalf("--version: exit %d: %q", code, out)
	}
	out, _, code = tandem(t, "version")
	if code != exitOK || !strings.Contains(out, "Module:    github.com/tandem-go/tandem\n") || !strings.Contains(out, "Go:        "+runtime.Version()) {
		t.Fatalf("version: exit %d:\n%s", code, out)
	}
}

// TestVersionOfABuiltBinary builds tandem from this checkout, as a user
// would, and checks that it reports the checkout's revision and whether it
// has uncommitted changes.
func TestVersionOfABuiltBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	root, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skipf("not in a git checkout: %v", err)
	}
	dir := strings.TrimSpace(string(root))
	if fi, err := os.Stat(filepath.Join(dir, ".git")); err != nil || !fi.IsDir() {
		t.Skip("a git worktree: the go command stamps revisions only in a checkout with a .git directory")
	}
	head, err := exec.Command("git", "-C", dir, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	st, err := exec.Command("git", "-C", dir, "status", "--porcelain").Output()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "tandem")
	build := exec.Command("go", "build", "-buildvcs=true", "-o", bin, "./cmd/tandem")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version", "--json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Revision     *string    `json:"revision"`
		RevisionTime *time.Time `json:"revision_time"`
		Dirty        *bool      `json:"dirty"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatal(err)
	}
	dirty := len(strings.TrimSpace(string(st))) > 0
	if v.Revision == nil || *v.Revision != strings.TrimSpace(string(head)) || v.Dirty == nil || *v.Dirty != dirty || v.RevisionTime == nil {
		t.Fatalf("built from %s (dirty %v), the binary says %s", head, dirty, out)
	}
}
