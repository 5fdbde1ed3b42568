package services

import (
	"slices"
	"time"
)

// Snapshot is the registry as read at one moment: every instance that is not
// deleted, with missing derived, and the finalized release.
type Snapshot struct {
	Cluster   string     `json:"cluster"` // the cluster's identity (see ClusterTable)
	Instances []Instance `json:"instances"`
	Finalized int64      `json:"finalized"`
	// Revision is the registry revision the snapshot holds every change
	// up to (see Registry.Revision).
	Revision int64     `json:"revision"`
	TakenAt  time.Time `json:"taken_at"`
}

// Floor is the lowest release among instances that are not deleted, and the
// instances that hold it there.
type Floor struct {
	Release int64      `json:"release"`
	Holders []Instance `json:"holders"`
	// Since is when the oldest holder started: how long the floor has been pinned.
	Since time.Time `json:"since"`
}

// Cap is, for one API, the lowest current version among its servers that are
// not deleted: clients never send above it.
type Cap struct {
	API     string     `json:"api"`
	Version Version    `json:"version"`
	Holders []Instance `json:"holders"`
	Since   time.Time  `json:"since"`
}

// Floor computes the release floor. Down, missing and error instances count:
// they may come back old. Release is 0 when no instance is registered.
func (s Snapshot) Floor() Floor {
	var f Floor
	for _, in := range s.Instances {
		if in.State == StateDeleted {
			continue
		}
		switch {
		case f.Release == 0 || in.Release < f.Release:
			f = Floor{Release: in.Release, Holders: []Instance{in}, Since: in.StartedAt}
		case in.Release == f.Release:
			f.Holders = append(f.Holders, in)
			if in.StartedAt.Before(f.Since) {
				f.Since = in.StartedAt
			}
		}
	}
	return f
}

// Caps computes the cap of every API served by an instance that is not deleted.
func (s Snapshot) Caps() map[string]Cap {
	caps := map[string]Cap{}
	for _, in := range s.Instances {
		if in.State == StateDeleted {
			continue
		}
		for _, a := range in.APIs {
			c, ok := caps[a.Name]
			switch {
			case !ok || a.Current.Less(c.Version):
				caps[a.Name] = Cap{API: a.Name, Version: a.Current, Holders: []Instance{in}, Since: in.StartedAt}
			case a.Current == c.Version:
				c.Holders = append(c.Holders, in)
				if in.StartedAt.Before(c.Since) {
					c.Since = in.StartedAt
				}
				caps[a.Name] = c
			}
		}
	}
	return caps
}

// Oldest returns, for one API, the highest "oldest accepted" version among
// its servers: the lowest version every server still accepts. ok is false
// when no server serves the API.
func (s Snapshot) Oldest(api string) (Version, bool) {
	var v Version
	found := false
	for _, in := range s.Instances {
		if in.State == StateDeleted {
			continue
		}
		if a, ok := in.API(api); ok {
			if !found || v.Less(a.Oldest) {
				v = a.Oldest
			}
			found = true
		}
	}
	return v, found
}

// Instance returns the instance with that id.
func (s Snapshot) Instance(id string) (Instance, bool) {
	i := slices.IndexFunc(s.Instances, func(in Instance) bool { return in.ID == id })
	if i < 0 {
		return Instance{}, false
	}
	return s.Instances[i], true
}
