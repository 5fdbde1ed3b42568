package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"
)

func init() {
	extraCommands = append(extraCommands, func(a *app) *cobra.Command { return a.versionCommand() })
}

// buildVersion is what `tandem version` reports, read from the build
// information the Go toolchain embeds in the binary.
type buildVersion struct {
	// Module is the main module's path; Version its version: a tag or a
	// pseudo-version when built from a module or a stamped checkout,
	// "(devel)" when the toolchain knew none.
	Module  string `json:"module"`
	Version string `json:"version"`
	// Revision, RevisionTime and Dirty come from the version control
	// checkout the binary was built in; null when it was built without one
	// (go run, -buildvcs=false, or a test binary).
	Revision     *string  `json:"revision"`
	RevisionTime *rfc3339 `json:"revision_time"`
	Dirty        *bool    `json:"dirty"`
	GoVersion    string   `json:"go_version"`
	Platform     string   `json:"platform"`
}

// readVersion reads the running binary's build information.
func readVersion() buildVersion {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return buildVersion{Module: "github.com/tandem-go/tandem", Version: "(unknown)", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	}
	return versionOf(bi)
}

// versionOf reads what tandem reports from build information.
func versionOf(bi *debug.BuildInfo) buildVersion {
	v := buildVersion{Module: bi.Main.Path, Version: bi.Main.Version, GoVersion: bi.GoVersion, Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if v.Version == "" {
		v.Version = "(devel)"
	}
	if v.GoVersion == "" {
		v.GoVersion = runtime.Version()
	}
	var goos, goarch string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			r := s.Value
			v.Revision = &r
		case "vcs.time":
			if t, err := time.Parse(time.RFC3339, s.Value); err == nil {
				v.RevisionTime = ts(t.UTC())
			}
		case "vcs.modified":
			d := s.Value == "true"
			v.Dirty = &d
		case "GOOS":
			goos = s.Value
		case "GOARCH":
			goarch = s.Value
		}
	}
	if goos != "" && goarch != "" {
		v.Platform = goos + "/" + goarch
	}
	return v
}

// String is the one line of `tandem --version`.
func (v buildVersion) String() string {
	s := "tandem " + v.Version
	if v.Revision != nil {
		rev := *v.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		s += ", revision " + rev
		if v.Dirty != nil && *v.Dirty {
			s += " (dirty)"
		}
		if v.RevisionTime != nil {
			s += " of " + v.RevisionTime.String()
		}
	}
	return s + ", " + v.GoVersion + " " + v.Platform
}

func (v buildVersion) writeText(w io.Writer) {
	fmt.Fprintf(w, "Module:    %s\nVersion:   %s\n", v.Module, v.Version)
	switch {
	case v.Revision == nil:
		fmt.Fprintln(w, "Revision:  unknown (built without version control information)")
	default:
		dirty := ""
		if v.Dirty != nil && *v.Dirty {
			dirty = " (dirty: built with uncommitted changes)"
		}
		fmt.Fprintf(w, "Revision:  %s%s\n", *v.Revision, dirty)
		if v.RevisionTime != nil {
			fmt.Fprintf(w, "Committed: %s\n", v.RevisionTime)
		}
	}
	fmt.Fprintf(w, "Go:        %s %s\n", v.GoVersion, v.Platform)
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the module version, the revision it was built from, and the Go version",
		Long: `Print what the binary was built from, as the Go toolchain recorded it: the
module version, the version control revision (and whether the checkout had
uncommitted changes), and the Go version and platform. --version prints the
same on one line. It opens nothing.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := readVersion()
			return a.emit(v, v.writeText, nil)
		},
	}
}
