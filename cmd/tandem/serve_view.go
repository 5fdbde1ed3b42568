package main

import (
	"slices"
	"strings"
	"time"

	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/services"
)

// pageView is what the rollout page shows: the status document, as
// `tandem status --json` has it, with the instances of the snapshot it was
// read from grouped by release. It holds nothing secret: the database is
// shown redacted, as status shows it.
type pageView struct {
	Database  string
	Updated   string
	Floor     int64
	Finalized int64
	Caps      []capJSON
	Safe      bool
	Blocked   []pageBlocker
	// Freeze is the write freeze in force and who has not acknowledged
	// it, one line each, as status prints it; empty before any freeze.
	Freeze   []string
	Releases []pageRelease
	Moves    []pageMove
}

type pageRelease struct {
	Release   int64
	Count     int
	Instances []pageInstance
}

type pageInstance struct {
	ID, Service, Host, APIs string
	State                   services.State
}

type pageBlocker struct {
	Kind     string
	Text     string
	Commands []string
}

type pageMove struct {
	Name, Description, From, To string
	Triggers                    bool
	SyncTriggers                string
	Phase                       string
	Since                       string
	Finalized                   bool
	Phases                      []pagePhase
	Releases                    []pageReleaseRow
	Backfill                    backfillStateJSON
	Done, Open                  bool
	NextPhase                   string
	Blockers                    []pageBlocker
}

type pagePhase struct{ Name, Class string }

type pageReleaseRow struct {
	Release     int64
	Ships, Acts string
	Does        string
	Instances   int
}

func pageBlockers(bs []blockerJSON) []pageBlocker {
	var out []pageBlocker
	for _, b := range bs {
		pb := pageBlocker{Kind: b.Kind, Text: b.Message}
		if b.NextCommand != nil {
			pb.Commands = []string{*b.NextCommand}
		}
		out = append(out, pb)
	}
	return out
}

func newPageView(rep statusDoc, snap services.Snapshot, now time.Time) pageView {
	v := pageView{Database: rep.Database, Updated: now.UTC().Format(time.RFC3339), Caps: rep.Caps, Safe: rep.Safe,
		Blocked: pageBlockers(rep.Blockers)}
	if rep.Floor != nil {
		v.Floor = rep.Floor.Release
	}
	if rep.Freeze.Seq > 0 {
		var b strings.Builder
		rep.Freeze.text(&b, "")
		for l := range strings.Lines(b.String()) {
			v.Freeze = append(v.Freeze, strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "- ")))
		}
	}
	if rep.Finalized != nil {
		v.Finalized = *rep.Finalized
	}
	byRelease := map[int64]*pageRelease{}
	for _, in := range snap.Instances {
		if in.State == services.StateDeleted {
			continue
		}
		r := byRelease[in.Release]
		if r == nil {
			r = &pageRelease{Release: in.Release}
			byRelease[in.Release] = r
		}
		r.Count++
		r.Instances = append(r.Instances, pageInstance{ID: in.ID, Service: in.Service, Host: in.Host, State: in.State, APIs: apisText(instanceView(in).APIs)})
	}
	for _, r := range byRelease {
		slices.SortFunc(r.Instances, func(a, b pageInstance) int { return strings.Compare(a.ID, b.ID) })
		v.Releases = append(v.Releases, *r)
	}
	slices.SortFunc(v.Releases, func(a, b pageRelease) int { return int(a.Release - b.Release) })
	for _, m := range rep.Moves {
		v.Moves = append(v.Moves, newPageMove(m))
	}
	return v
}

func newPageMove(m moveJSON) pageMove {
	pm := pageMove{Name: m.Name, Description: m.Description, From: m.From, To: m.To, Triggers: m.Triggers,
		Phase: m.Phase, Finalized: m.Finalized, Backfill: m.Backfill, Blockers: pageBlockers(m.Blockers)}
	if m.SyncTriggers != nil {
		pm.SyncTriggers = *m.SyncTriggers
	}
	if m.PhaseSince != nil {
		pm.Since = m.PhaseSince.String()
	}
	cur, _ := move.ParsePhase(m.Phase)
	for _, p := range move.Phases() {
		class := ""
		switch {
		case p == cur:
			class = "current"
		case p < cur:
			class = "passed"
		}
		pm.Phases = append(pm.Phases, pagePhase{Name: p.String(), Class: class})
	}
	for _, r := range m.Releases {
		ships := strings.Join(r.Ships, ", ")
		if ships == "" {
			ships = "-"
		}
		pm.Releases = append(pm.Releases, pageReleaseRow{Release: r.Release, Ships: ships, Acts: r.Acts, Does: r.Does, Instances: r.Instances})
	}
	if g := m.NextGate; g != nil {
		pm.NextPhase = g.To
		pm.Open = g.Open && len(m.Problems) == 0
	} else {
		pm.Done = len(m.Problems) == 0
	}
	return pm
}
