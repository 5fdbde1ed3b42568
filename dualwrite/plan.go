package dualwrite

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"gopkg.in/yaml.v3"

	"github.com/tandem-go/tandem/move"
)

// PlanVersion is the plan file format this build reads.
const PlanVersion = 1

// Plan is the moves of an application as the CLI loads them from a file.
// Applications declare the same moves in Go; a plan carries them to the
// operator's tool. The format (YAML; JSON is valid YAML too):
//
//	version: 1
//	moves:
//	  - name: price_cents            # identifier used in the ledger and on the command line
//	    description: prices in cents  # free text, shown in status
//	    table: products
//	    key: [id]                     # one column, or several for a composite key
//	    old: price
//	    new:
//	      column: price_cents
//	      type: BIGINT                # or {sql: BIGINT, dialects: {mysql: BIGINT}}
//	      # table: product_prices     # for a move into another table, plus:
//	      # key: [product_id]         #   its columns holding the key, in order
//	      # key_type: [BIGINT]        #   their types, if tandem creates the table
//	    forward:                      # new from old; omit for a plain copy
//	      sql: "CAST(ROUND({value} * 100) AS BIGINT)"
//	      dialects:
//	        mysql: "CAST(ROUND({value} * 100) AS SIGNED)"
//	    backward:                     # old from new
//	      sql: "{value} / 100.0"
//	    releases: {write_both: 42, read_new: 43, write_new: 44, contracted: 45}
//	    triggers: false
//	    # freeze: [read-new]          # phases entered under a write freeze (the upgrade path plans it)
//
// A plan holds SQL transforms only: Go functions live in the application.
// Unknown fields are refused, so a typo is not silently ignored.
type Plan struct {
	Version int         `yaml:"version" json:"version"`
	Moves   []move.Move `yaml:"moves" json:"moves"`
}

// MaxPlanSize is the largest plan ParsePlan reads: far above any real
// application's moves, and small enough that a wrong file (a log, a dump)
// is refused before it is held in memory.
const MaxPlanSize = 16 << 20

// ErrPlanTooLarge means a plan is larger than MaxPlanSize; it comes wrapped
// in a *PlanError, so it matches ErrPlan too.
var ErrPlanTooLarge = errors.New("plan larger than the limit")

// ParsePlan reads a plan and validates every move in it. A plan larger than
// MaxPlanSize is refused whole (ErrPlanTooLarge), never cut off.
func ParsePlan(r io.Reader) (Plan, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxPlanSize+1))
	if err != nil {
		return Plan{}, &PlanError{Reason: "cannot read", Err: err}
	}
	if len(data) > MaxPlanSize {
		return Plan{}, &PlanError{Reason: fmt.Sprintf("larger than the %d MiB limit (split the moves over several plan files and record each with `tandem moves apply --plan FILE`)", MaxPlanSize>>20), Err: ErrPlanTooLarge}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var p Plan
	if err := dec.Decode(&p); err != nil {
		if errors.Is(err, io.EOF) {
			return Plan{}, &PlanError{Reason: "empty plan: want `version: 1` and a list of moves"}
		}
		return Plan{}, &PlanError{Reason: "not a valid plan", Err: err}
	}
	if p.Version != PlanVersion {
		return Plan{}, &PlanError{Reason: fmt.Sprintf("version %d: this build reads version %d", p.Version, PlanVersion)}
	}
	if err := move.ValidateAll(p.Moves); err != nil {
		return Plan{}, &PlanError{Reason: "invalid move", Err: err}
	}
	return p, nil
}

// LoadPlan reads the plan file at path.
func LoadPlan(path string) (Plan, error) {
	f, err := os.Open(path)
	if err != nil {
		return Plan{}, &PlanError{File: path, Reason: "cannot open", Err: err}
	}
	defer f.Close()
	p, err := ParsePlan(f)
	if err != nil {
		var pe *PlanError
		if errors.As(err, &pe) {
			pe.File = path
		}
		return Plan{}, err
	}
	return p, nil
}

// WritePlan writes moves in the plan format, so that moves declared once in
// Go reach the CLI as the same definitions: generate the plan from the
// application's declarations (a test or a `go generate` step) rather than
// writing it by hand. A transform that exists only as a Go function cannot
// be written (a plan carries SQL only) and is refused with a *GoOnlyError.
func WritePlan(w io.Writer, moves []move.Move) error {
	for _, m := range moves {
		for _, t := range []struct {
			dir string
			t   move.Transform
		}{{"forward", m.Forward}, {"backward", m.Backward}} {
			if needsGo(t.t) {
				return &GoOnlyError{Move: m.Name, Direction: t.dir}
			}
		}
	}
	out := make([]move.Move, len(moves))
	for i, m := range moves {
		out[i] = m
		out[i].Forward.Go, out[i].Backward.Go = nil, nil
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(Plan{Version: PlanVersion, Moves: out}); err != nil {
		return fmt.Errorf("dualwrite: write plan: %w", err)
	}
	return enc.Close()
}
