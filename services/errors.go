package services

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Match them with errors.Is; the typed errors below carry
// the details and unwrap to these.
var (
	// ErrInvalid means an input failed validation; nothing was written.
	ErrInvalid = errors.New("invalid input")
	// ErrDuplicateInstance means the instance id is already registered by a live instance.
	ErrDuplicateInstance = errors.New("duplicate instance id")
	// ErrNotFound means no instance has that id.
	ErrNotFound = errors.New("instance not found")
	// ErrBelowFinalized means the release is older than what the cluster finalized.
	ErrBelowFinalized = errors.New("release below the finalized floor")
	// ErrFenced means this process's incarnation of an instance no longer
	// holds its id (deleted, or superseded by a newer one): it must stop
	// serving and writing. See FencedError.
	ErrFenced = errors.New("instance fenced")
	// ErrNoSchema means the registry's tables have not been created yet.
	ErrNoSchema = errors.New("registry tables missing")
)

// ValidationError names the field that is wrong and why.
type ValidationError struct {
	Field  string
	Value  string
	Reason string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("invalid %s %q: %s", e.Field, e.Value, e.Reason)
}

func (e *ValidationError) Unwrap() error { return ErrInvalid }

// VersionError is an API version that does not parse.
type VersionError struct {
	Input  string
	Reason string
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("invalid API version %q: %s", e.Input, e.Reason)
}

func (e *VersionError) Unwrap() error { return ErrInvalid }

// Claim is one process's claim on an instance id, as errors name it.
type Claim struct {
	Host        string    `json:"host"`
	PID         int       `json:"pid,omitempty"`
	Incarnation int64     `json:"incarnation,omitempty"`
	Since       time.Time `json:"since"`
	// LastHeartbeat is zero for a process that is only claiming the id.
	LastHeartbeat time.Time `json:"last_heartbeat,omitempty"`
}

func (c Claim) String() string {
	s := "host " + c.Host
	if c.PID != 0 {
		s += fmt.Sprintf(" pid %d", c.PID)
	}
	if c.Incarnation != 0 {
		s += fmt.Sprintf(" incarnation %d", c.Incarnation)
	}
	if !c.Since.IsZero() {
		s += " since " + c.Since.UTC().Format(time.RFC3339)
	}
	if !c.LastHeartbeat.IsZero() {
		s += fmt.Sprintf(" (last heartbeat %s ago)", time.Since(c.LastHeartbeat).Round(time.Second))
	}
	return s
}

func claimOf(in Instance) Claim {
	return Claim{Host: in.Host, PID: in.PID, Incarnation: in.Incarnation, Since: in.StartedAt, LastHeartbeat: in.HeartbeatAt}
}

// DuplicateError refuses a second live process claiming an instance id: the
// holder is alive (its liveness token is held, or it heartbeats and left no
// token to check), so the claimant may not supersede it.
type DuplicateError struct {
	ID       string `json:"id"`
	Holder   Claim  `json:"holder"`
	Claimant Claim  `json:"claimant"`
}

func (e *DuplicateError) Error() string {
	return fmt.Sprintf("instance id %q is held by a live process (%s); refused the process on %s: two live processes may not share an id. "+
		"Give each process its own id, or stop the other one (a new process of this id registers at once when the old one has exited), or fence it: tandem services delete %s --force",
		e.ID, e.Holder, e.Claimant, e.ID)
}

func (e *DuplicateError) Unwrap() error { return ErrDuplicateInstance }

// Why an incarnation was fenced.
const (
	FencedDeleted    = "deleted"
	FencedSuperseded = "superseded"
)

// FencedError tells an incarnation that it no longer holds its instance
// id: an operator deleted the row, or a newer incarnation superseded it.
// It must stop serving and writing; it must not register again under the
// id it lost. It matches ErrFenced, and ErrNotFound as well when deleted.
type FencedError struct {
	ID          string `json:"id"`
	Incarnation int64  `json:"incarnation,omitempty"`
	Reason      string `json:"reason"` // FencedDeleted or FencedSuperseded
	// By is the successor, when superseded.
	By Claim `json:"by,omitzero"`
}

func (e *FencedError) Error() string {
	who := fmt.Sprintf("instance %q", e.ID)
	if e.Incarnation != 0 {
		who += fmt.Sprintf(" incarnation %d", e.Incarnation)
	}
	if e.Reason == FencedSuperseded {
		return fmt.Sprintf("%s is fenced: a newer process of the id superseded it (%s); stop serving and exit, and do not register this process again", who, e.By)
	}
	return fmt.Sprintf("%s is fenced: it was deleted from the registry; stop serving (start a new process to rejoin)", who)
}

func (e *FencedError) Unwrap() []error {
	if e.Reason == FencedSuperseded {
		return []error{ErrFenced}
	}
	return []error{ErrFenced, ErrNotFound}
}

// BelowFinalizedError refuses an instance older than the finalized floor.
type BelowFinalizedError struct {
	ID        string
	Release   int64
	Finalized int64
	Reason    string
}

func (e *BelowFinalizedError) Error() string {
	msg := fmt.Sprintf("instance %q runs release %d but the cluster finalized release %d", e.ID, e.Release, e.Finalized)
	if e.Reason != "" {
		msg += " (" + e.Reason + ")"
	}
	return msg + ": older releases may no longer join; upgrade this node to release " + fmt.Sprint(e.Finalized) + " or newer"
}

func (e *BelowFinalizedError) Unwrap() error { return ErrBelowFinalized }
