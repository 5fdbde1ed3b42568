package upgradepath_test

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/demo"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/services"
	"github.com/tandem-go/tandem/upgradepath"
)

func priceMove() move.Move {
	return move.Move{Name: "price_cents", Table: "items", Key: []string{"id"}, Old: "price",
		New: move.Target{Column: "price_cents"}, Releases: move.Releases{WriteBoth: 42, ReadNew: 43, WriteNew: 44, Contracted: 45}}
}

func instances(releases ...int64) []services.Instance {
	var out []services.Instance
	for i, r := range releases {
		out = append(out, services.Instance{ID: "web-" + string(rune('1'+i)), Release: r, State: services.StateUp})
	}
	return out
}

func api(name, oldest, current string) []services.API {
	return []services.API{{Name: name, Oldest: services.MustParseVersion(oldest), Current: services.MustParseVersion(current)}}
}

// kinds writes a path as one word a step: kind[:move][@release], with
// "!" for irreversible and "*" for frozen.
func kinds(p upgradepath.Path) string {
	var out []string
	for _, s := range p.Steps {
		w := string(s.Kind)
		if s.Move != "" {
			w += ":" + s.Move
		}
		if s.Kind == upgradepath.StepAdvance {
			w += ">" + s.To.String()
		}
		if s.Release != 0 {
			w += "@" + strconv.FormatInt(s.Release, 10)
		}
		if s.Irreversible {
			w += "!"
		}
		if s.Frozen {
			w += "*"
		}
		out = append(out, w)
	}
	return strings.Join(out, " ")
}

func TestPlan(t *testing.T) {
	frozenRN := priceMove()
	frozenRN.Freeze = []move.Phase{move.ReadNew}
	frozenC := priceMove()
	frozenC.Freeze = []move.Phase{move.Contracted}
	oneRelease := priceMove()
	oneRelease.Releases = move.Releases{WriteBoth: 42, ReadNew: 42, WriteNew: 42, Contracted: 42}
	cases := []struct {
		name string
		in   upgradepath.Input
		want string
		// check looks at the steps further.
		check func(t *testing.T, p upgradepath.Path)
	}{
		{"one release per phase", upgradepath.Input{Target: 45, Moves: []upgradepath.Move{{Move: priceMove()}}, Instances: instances(41, 41)},
			"advance:price_cents>write-both roll@43 backfill:price_cents verify:price_cents advance:price_cents>read-new advance:price_cents>write-new roll@45 finalize:price_cents! contract:price_cents!", nil},
		{"one instance one release behind, target the release the others run", upgradepath.Input{Target: 42, Moves: []upgradepath.Move{{Move: priceMove(), Phase: move.WriteBoth}}, Instances: instances(42, 42, 41)},
			"roll@42",
			func(t *testing.T, p upgradepath.Path) {
				if got := p.Steps[0].Instances; !slices.Equal(got, []string{"web-3"}) {
					t.Fatalf("roll restarts %v, want only web-3", got)
				}
			}},
		{"backfilled and verified already", upgradepath.Input{Target: 43, Moves: []upgradepath.Move{{Move: priceMove(), Phase: move.WriteBoth, Backfilled: true, Verified: true}}, Instances: instances(42)},
			"advance:price_cents>read-new roll@43", nil},
		{"mismatches: backfill again from the first key", upgradepath.Input{Target: 43, Moves: []upgradepath.Move{{Move: priceMove(), Phase: move.WriteBoth, Restart: true}}, Instances: instances(42)},
			"backfill:price_cents verify:price_cents advance:price_cents>read-new roll@43",
			func(t *testing.T, p upgradepath.Path) {
				if p.Steps[0].Command != "tandem moves backfill price_cents --restart" {
					t.Fatalf("command %q", p.Steps[0].Command)
				}
			}},
		{"freeze into read-new: backfill, verify and advance in one window", upgradepath.Input{Target: 45, Moves: []upgradepath.Move{{Move: frozenRN}}, Instances: instances(41)},
			"advance:price_cents>write-both roll@43 freeze:price_cents backfill:price_cents* verify:price_cents* advance:price_cents>read-new* thaw:price_cents advance:price_cents>write-new roll@45 finalize:price_cents! contract:price_cents!",
			func(t *testing.T, p upgradepath.Path) {
				if c := p.Steps[2].Command; c != "tandem freeze --move price_cents --reason 'price_cents enters read-new under a write freeze'" {
					t.Fatalf("freeze command %q", c)
				}
				if c := p.Steps[6].Command; c != "tandem thaw --move price_cents" {
					t.Fatalf("thaw command %q", c)
				}
			}},
		{"freeze into contracted: after finalize", upgradepath.Input{Target: 45, Moves: []upgradepath.Move{{Move: frozenC, Phase: move.WriteNew}}, Instances: instances(45)},
			"finalize:price_cents! freeze:price_cents contract:price_cents!* thaw:price_cents", nil},
		{"a release that ships every phase at once is rolled when nothing lower can be", upgradepath.Input{Target: 42, Moves: []upgradepath.Move{{Move: oneRelease, Phase: move.WriteBoth}}, Instances: instances(41)},
			"roll@42 backfill:price_cents verify:price_cents advance:price_cents>read-new advance:price_cents>write-new finalize:price_cents! contract:price_cents!", nil},
		{"no common RPC version: an offline window", upgradepath.Input{Target: 42, Moves: []upgradepath.Move{{Move: priceMove(), Phase: move.WriteBoth}}, Instances: instances(41, 41),
			APIs: map[int64][]services.API{41: api("inventory", "1.0", "1.2"), 42: api("inventory", "2.0", "2.0")}},
			"freeze roll@42* thaw",
			func(t *testing.T, p upgradepath.Path) {
				if !p.Steps[1].Offline || p.Steps[0].Command != "tandem freeze --all --reason 'release 42 shares no RPC version with release 41'" || p.Steps[2].Command != "tandem thaw --all" {
					t.Fatalf("offline window: %+v", p.Steps[:3])
				}
			}},
		{"a common RPC version: rolling", upgradepath.Input{Target: 42, Moves: []upgradepath.Move{{Move: priceMove(), Phase: move.WriteBoth}}, Instances: instances(41),
			APIs: map[int64][]services.API{41: api("inventory", "1.0", "1.2"), 42: api("inventory", "1.2", "2.0")}},
			"roll@42", nil},
		{"no instance: the moves alone", upgradepath.Input{Target: 43, Moves: []upgradepath.Move{{Move: priceMove(), Phase: move.ReadNew}}},
			"", nil},
		{"a target no move names and no instance ran", upgradepath.Input{Target: 50, Moves: []upgradepath.Move{{Move: priceMove(), Phase: move.WriteNew}}, Instances: instances(45)},
			"finalize:price_cents! contract:price_cents! roll@50",
			func(t *testing.T, p upgradepath.Path) {
				if p.TargetKnown {
					t.Fatal("release 50 known")
				}
			}},
		{"at the target already", upgradepath.Input{Target: 45, Moves: []upgradepath.Move{{Move: priceMove(), Phase: move.Contracted, Finalized: true}}, Instances: instances(45)},
			"", nil},
		{"a freeze window the path opened goes on", upgradepath.Input{Target: 43, Moves: []upgradepath.Move{{Move: frozenRN, Phase: move.WriteBoth, Backfilled: true}}, Instances: instances(43),
			Freeze: dualwrite.FreezeState{Seq: 1, Action: "freeze", Moves: []string{"price_cents"}, Reason: "price_cents enters read-new under a write freeze"}},
			"verify:price_cents* advance:price_cents>read-new* thaw:price_cents", nil},
		{"the path's own window, over: thawed first", upgradepath.Input{Target: 43, Moves: []upgradepath.Move{{Move: frozenRN, Phase: move.ReadNew, Backfilled: true, Verified: true}}, Instances: instances(43),
			Freeze: dualwrite.FreezeState{Seq: 1, Action: "freeze", Moves: []string{"price_cents"}, Reason: "price_cents enters read-new under a write freeze"}},
			"thaw:price_cents", nil},
		{"the same freeze of the operator's: kept until the end", upgradepath.Input{Target: 45, Moves: []upgradepath.Move{{Move: frozenRN, Phase: move.ReadNew, Backfilled: true, Verified: true}}, Instances: instances(43),
			Freeze: dualwrite.FreezeState{Seq: 1, Action: "freeze", Moves: []string{"price_cents"}, Reason: "restore of the catalog"}},
			"advance:price_cents>write-new roll@45 finalize:price_cents! contract:price_cents! thaw:price_cents", nil},
		{"the path's offline window, over: thawed first", upgradepath.Input{Target: 42, Moves: []upgradepath.Move{{Move: priceMove(), Phase: move.WriteBoth}}, Instances: instances(42, 42),
			APIs:   map[int64][]services.API{41: api("inventory", "1.0", "1.2"), 42: api("inventory", "2.0", "2.0")},
			Freeze: dualwrite.FreezeState{Seq: 1, Action: "freeze", All: true, Reason: "release 42 shares no RPC version with release 41"}},
			"thaw", nil},
		{"a freeze the path does not need is kept, and lifted last", upgradepath.Input{Target: 45, Moves: []upgradepath.Move{{Move: priceMove(), Phase: move.ReadNew}}, Instances: instances(43),
			Freeze: dualwrite.FreezeState{Seq: 1, Action: "freeze", Moves: []string{"price_cents"}, Reason: "maintenance"}},
			"advance:price_cents>write-new roll@45 finalize:price_cents! contract:price_cents! thaw:price_cents", nil},
		{"at the target under a freeze: only the thaw", upgradepath.Input{Target: 43, Moves: []upgradepath.Move{{Move: priceMove(), Phase: move.ReadNew}}, Instances: instances(43),
			Freeze: dualwrite.FreezeState{Seq: 1, Action: "freeze", Moves: []string{"price_cents"}, Reason: "maintenance"}},
			"thaw:price_cents", nil},
		{"every move frozen by the operator: the path runs under it and thaws last", upgradepath.Input{Target: 43, Moves: []upgradepath.Move{{Move: priceMove(), Phase: move.WriteBoth, Backfilled: true, Verified: true}}, Instances: instances(42),
			Freeze: dualwrite.FreezeState{Seq: 1, Action: "freeze", All: true, Reason: "maintenance"}},
			"advance:price_cents>read-new roll@43 thaw",
			func(t *testing.T, p upgradepath.Path) {
				if last := p.Steps[len(p.Steps)-1]; last.Command != "tandem thaw --all" || !strings.Contains(last.Why, "maintenance") {
					t.Fatalf("%+v", last)
				}
			}},
		{"every move frozen for an offline roll: the roll goes on, then thaw", upgradepath.Input{Target: 42, Moves: []upgradepath.Move{{Move: priceMove(), Phase: move.WriteBoth}}, Instances: instances(41, 41),
			APIs:   map[int64][]services.API{41: api("inventory", "1.0", "1.2"), 42: api("inventory", "2.0", "2.0")},
			Freeze: dualwrite.FreezeState{Seq: 1, Action: "freeze", All: true, Reason: "release 42 shares no RPC version with release 41"}},
			"roll@42* thaw", nil},
		{"the demo's moves", func() upgradepath.Input {
			var ms []upgradepath.Move
			for _, m := range demo.Moves() {
				ms = append(ms, upgradepath.Move{Move: m})
			}
			return upgradepath.Input{Target: 44, Moves: ms, Instances: instances(41, 41, 41)}
		}(),
			"advance:items_price_cents>write-both advance:catalog_price_cents>write-both backfill:catalog_price_cents verify:catalog_price_cents advance:catalog_price_cents>read-new advance:catalog_price_cents>write-new roll@43 backfill:items_price_cents verify:items_price_cents advance:items_price_cents>read-new advance:items_price_cents>write-new finalize:catalog_price_cents! contract:catalog_price_cents! roll@44 finalize:items_price_cents! contract:items_price_cents!", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := upgradepath.Plan(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := kinds(p); got != tc.want {
				t.Fatalf("path:\n got %s\nwant %s", got, tc.want)
			}
			if !p.TargetKnown && tc.in.Target != 50 {
				t.Fatalf("target %d unknown", tc.in.Target)
			}
			if p.Done() != (tc.want == "") {
				t.Fatalf("done %v", p.Done())
			}
			if tc.check != nil {
				tc.check(t, p)
			}
		})
	}
}

func TestPlanRefuses(t *testing.T) {
	cases := []struct {
		name string
		in   upgradepath.Input
		want error
	}{
		{"not a release", upgradepath.Input{Target: 0}, upgradepath.ErrTarget},
		{"older than a release instances run", upgradepath.Input{Target: 42, Instances: instances(43, 42)}, upgradepath.ErrTarget},
		{"below the finalized floor", upgradepath.Input{Target: 42, Finalized: 43}, upgradepath.ErrTarget},
		{"every release up to the target is too old for the ledger", upgradepath.Input{Target: 42, Moves: []upgradepath.Move{{Move: priceMove(), Phase: move.WriteNew}}, Instances: instances(41)}, upgradepath.ErrNoPath},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := upgradepath.Plan(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}

// TestBlockersOfTheFirstStep: what holds the first step is every problem,
// what blocks every move, and its own gate's blockers less what the step
// itself clears.
func TestBlockersOfTheFirstStep(t *testing.T) {
	missing := upgradepath.Blocker{Blocker: dualwrite.Blocker{Kind: dualwrite.BlockInstances, Message: "instance web-9 is missing"}}
	notRun := upgradepath.Blocker{Move: "price_cents", Phase: move.WriteBoth, Blocker: dualwrite.Blocker{Kind: dualwrite.BlockBackfill, Message: "the backfill has not run"}}
	running := upgradepath.Blocker{Move: "price_cents", Phase: move.WriteBoth, Blocker: dualwrite.Blocker{Kind: dualwrite.BlockBackfill, Message: "a backfill is running", Retry: true}}
	drift := upgradepath.Blocker{Move: "other", Problem: true, Blocker: dualwrite.Blocker{Kind: dualwrite.BlockTriggers, Message: "triggers differ"}}
	otherGate := upgradepath.Blocker{Move: "other", Blocker: dualwrite.Blocker{Kind: dualwrite.BlockVerify, Message: "not verified"}}
	base := upgradepath.Input{Target: 43, Moves: []upgradepath.Move{{Move: priceMove(), Phase: move.WriteBoth}}, Instances: instances(42)}
	cases := []struct {
		name     string
		blockers []upgradepath.Blocker
		want     []string
	}{
		{"the backfill the first step runs", []upgradepath.Blocker{notRun}, nil},
		{"a backfill running: wait", []upgradepath.Blocker{running}, []string{"a backfill is running"}},
		{"an instance missing", []upgradepath.Blocker{missing, notRun}, []string{"instance web-9 is missing"}},
		{"another move's problem and gate", []upgradepath.Blocker{drift, otherGate}, []string{"triggers differ"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := base
			in.Blockers = tc.blockers
			p, err := upgradepath.Plan(in)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, b := range p.Now {
				got = append(got, b.Message)
			}
			if !slices.Equal(got, tc.want) || len(p.Blockers) != len(tc.blockers) {
				t.Fatalf("now %q, want %q (all %d)", got, tc.want, len(p.Blockers))
			}
		})
	}
}

func TestCompatibilityWithTriggers(t *testing.T) {
	tb := upgradepath.Compatibility(demo.Moves(), map[string]move.Phase{"catalog_price_cents": move.WriteNew})
	var labels []string
	for _, c := range tb.Columns {
		labels = append(labels, c.Label())
	}
	if strings.Join(labels, " | ") != "<= 41 | 42 | 43 | >= 44" {
		t.Fatalf("columns %q", labels)
	}
	cat := tb.Moves[1]
	if cat.Move != "catalog_price_cents" || cat.Phase != move.WriteNew || !cat.Triggers {
		t.Fatalf("%+v", cat)
	}
	// With triggers, release 41 may start at every phase short of
	// contract; the contract needs every instance on 42.
	for _, r := range cat.Rows {
		want := upgradepath.MayStart
		if r.Phase == move.Contracted {
			want = upgradepath.MayNot
		}
		if r.Cells[0] != want {
			t.Fatalf("%s: release <= 41 %q, want %q", r.Phase, r.Cells[0], want)
		}
	}
	if cat.Rows[move.WriteNew].AdvanceNeeds != 42 || cat.Rows[move.Legacy].AdvanceNeeds != 0 || cat.Rows[move.Contracted].AdvanceNeeds != -1 {
		t.Fatalf("advance needs %+v", cat.Rows)
	}
}

// BenchmarkPlan plans the demo's moves from release 41 to 44 for a fleet
// of 1000 instances.
func BenchmarkPlan(b *testing.B) {
	var ms []upgradepath.Move
	for _, m := range demo.Moves() {
		ms = append(ms, upgradepath.Move{Move: m})
	}
	var ins []services.Instance
	for i := range 1000 {
		ins = append(ins, services.Instance{ID: "web-" + strconv.Itoa(i), Release: 41, State: services.StateUp})
	}
	in := upgradepath.Input{Target: 44, Moves: ms, Instances: ins}
	for b.Loop() {
		if _, err := upgradepath.Plan(in); err != nil {
			b.Fatal(err)
		}
	}
}
