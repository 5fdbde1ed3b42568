package move

import (
	"strconv"
	"strings"
)

// Phase is where a move stands. Adjacent phases are always safe to run side
// by side; that is what lets a cluster upgrade one instance at a time.
type Phase int

// The five phases, in order.
const (
	Legacy     Phase = iota // write old, read old
	WriteBoth               // write old and new, read old
	ReadNew                 // write old and new, read new
	WriteNew                // write new, read new
	Contracted              // old column dropped
)

var phaseNames = [...]string{"legacy", "write-both", "read-new", "write-new", "contracted"}

// Phases lists every phase in order.
func Phases() []Phase { return []Phase{Legacy, WriteBoth, ReadNew, WriteNew, Contracted} }

func (p Phase) String() string {
	if p.Valid() {
		return phaseNames[p]
	}
	return "phase(" + strconv.Itoa(int(p)) + ")"
}

// Valid reports whether p is one of the five phases.
func (p Phase) Valid() bool { return p >= Legacy && p <= Contracted }

// ParsePhase reads a phase name as String writes it ("write-both"); it also
// accepts underscores and any case, since operators type these.
func ParsePhase(s string) (Phase, error) {
	n := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), "_", "-")
	for i, name := range phaseNames {
		if n == name {
			return Phase(i), nil
		}
	}
	return 0, &PhaseError{Input: s}
}

// MarshalText writes the phase name.
func (p Phase) MarshalText() ([]byte, error) {
	if !p.Valid() {
		return nil, &PhaseError{Input: p.String()}
	}
	return []byte(p.String()), nil
}

// UnmarshalText reads a phase name.
func (p *Phase) UnmarshalText(b []byte) error {
	v, err := ParsePhase(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// Next returns the phase after p; ok is false at Contracted.
func (p Phase) Next() (next Phase, ok bool) {
	if p < Legacy || p >= Contracted {
		return p, false
	}
	return p + 1, true
}

// Prev returns the phase before p; ok is false at Legacy.
func (p Phase) Prev() (prev Phase, ok bool) {
	if p <= Legacy || p > Contracted {
		return p, false
	}
	return p - 1, true
}

// WritesOld reports whether an instance acting on p writes the old column.
func (p Phase) WritesOld() bool { return p <= ReadNew }

// WritesNew reports whether an instance acting on p writes the new column.
func (p Phase) WritesNew() bool { return p >= WriteBoth }

// ReadsNew reports whether an instance acting on p reads the new column.
func (p Phase) ReadsNew() bool { return p >= ReadNew }

// ReadsOld reports whether an instance acting on p reads the old column.
func (p Phase) ReadsOld() bool { return p <= WriteBoth }

// Does says in a few words what an instance acting on p does, for status.
func (p Phase) Does() string {
	switch p {
	case Legacy:
		return "writes old, reads old"
	case WriteBoth:
		return "writes old and new, reads old"
	case ReadNew:
		return "writes old and new, reads new"
	case WriteNew:
		return "writes new, reads new"
	case Contracted:
		return "old column dropped; writes and reads new"
	}
	return "unknown"
}
