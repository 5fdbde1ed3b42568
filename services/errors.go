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

// DuplicateError reports an instance id held by a live instance.
type DuplicateError struct {
	ID            string
	Host          string
	LastHeartbeat time.Time
}

func (e *DuplicateError) Error() string {
	return fmt.Sprintf("instance id %q is already registered by host %q (last heartbeat %s ago): give each process a unique id, deregister the old one, or register with services.Replace()",
		e.ID, e.Host, time.Since(e.LastHeartbeat).Round(time.Second))
}

func (e *DuplicateError) Unwrap() error { return ErrDuplicateInstance }

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
