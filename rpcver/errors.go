package rpcver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/tandem-go/tandem/move"
)

// Sentinel errors. Match them with errors.Is; the typed errors below carry
// the details and unwrap to these.
var (
	// ErrInvalid means an API definition, option or argument is wrong;
	// nothing was sent or started.
	ErrInvalid = errors.New("invalid definition")
	// ErrUnsupportedVersion means a server does not accept the version a
	// request was sent at.
	ErrUnsupportedVersion = errors.New("unsupported API version")
	// ErrMethodTooNew means the method came after the version the client may
	// send at (Cinder's ServiceTooOld); nothing was sent.
	ErrMethodTooNew = errors.New("method newer than the cluster's cap")
	// ErrCannotBackport means a set field has no backport step to the target
	// version, or its step refused; nothing was sent or written.
	ErrCannotBackport = errors.New("cannot backport")
	// ErrUnknownMethod means the API has no method of that name.
	ErrUnknownMethod = errors.New("unknown method")
	// ErrNoServer means no server listens for the API at that major version.
	ErrNoServer = errors.New("no server for the API")
	// ErrDisconnected means the client's NATS connection was not connected
	// when it was to send: nothing was sent, so nothing can run later. A
	// *DisconnectedError with InFlight set means the connection dropped
	// after the request went out (see DisconnectedError).
	ErrDisconnected = errors.New("NATS disconnected")
	// ErrBadRequest means a server could not decode a request.
	ErrBadRequest = errors.New("bad request")
	// ErrRemote means the server's handler returned an error.
	ErrRemote = errors.New("remote error")
	// ErrBadObject means stored bytes are not a versioned object of this API.
	ErrBadObject = errors.New("bad stored object")
	// ErrServerState means a server was started twice, or used after shutdown.
	ErrServerState = errors.New("server state")
	// ErrFrozen means the server refused a write because writes are
	// frozen (CodeFrozen). It is move.ErrFrozen, the value behind
	// dualwrite.ErrFrozen: errors.Is(err, dualwrite.ErrFrozen) holds for a
	// call's error too.
	ErrFrozen = move.ErrFrozen
)

// frozen is what a handler error says when it is a refusal of a frozen
// write (dualwrite.FrozenError has it).
type frozen interface{ Frozen() bool }

// isFrozen says whether err is, or wraps, a frozen write's refusal.
func isFrozen(err error) bool {
	var f frozen
	return errors.As(err, &f) && f.Frozen()
}

// Error codes carried in micro's Nats-Service-Error-Code header.
const (
	CodeBadRequest     = "400"
	CodeNotFound       = "404"
	CodeConflict       = "409"
	CodeCannotBackport = "422"
	// CodeFrozen: the handler refused a write because the operator froze
	// writes (a handler error with a Frozen() bool method returning true,
	// such as *dualwrite.FrozenError). The caller's *RemoteError matches
	// ErrFrozen. Reads go on; retry after the thaw.
	CodeFrozen             = "423"
	CodeInternal           = "500"
	CodeFenced             = "503" // the server's instance was deleted or superseded
	CodeUnavailable        = "503" // the server cannot take the request now (queue full, shutting down)
	CodeDeadlineExceeded   = "504"
	CodeUnsupportedVersion = "505"
)

// DefinitionError reports a wrong API definition or option.
type DefinitionError struct {
	API    string
	Where  string // the message, field, method or option at fault
	Reason string
}

func (e *DefinitionError) Error() string {
	return fmt.Sprintf("rpcver: API %q: %s: %s", e.API, e.Where, e.Reason)
}

func (e *DefinitionError) Unwrap() error { return ErrInvalid }

// UnsupportedVersionError is a request outside the range a server accepts.
// On the client it is what the server answered.
type UnsupportedVersionError struct {
	API       string
	Method    string
	Requested Version
	Oldest    Version // the server's accepted range
	Current   Version
}

func (e *UnsupportedVersionError) Error() string {
	return fmt.Sprintf("rpcver: %s.%s at %s: the server accepts %s to %s", e.API, e.Method, e.Requested, e.Oldest, e.Current)
}

func (e *UnsupportedVersionError) Unwrap() error { return ErrUnsupportedVersion }

// MethodTooNewError is a call to a method introduced after the version the
// client may send at.
type MethodTooNewError struct {
	API    string
	Method string
	Since  Version // the version that introduced the method
	Target Version // min(client's current, cluster cap)
}

func (e *MethodTooNewError) Error() string {
	return fmt.Sprintf("rpcver: %s.%s needs API version %s but the cluster is capped at %s: wait until every %s server runs %s or later",
		e.API, e.Method, e.Since, e.Target, e.API, e.Since)
}

func (e *MethodTooNewError) Unwrap() error { return ErrMethodTooNew }

// CannotBackportError names the field that stopped a backport.
type CannotBackportError struct {
	Field  string // full name, e.g. inventory.v1.PutItemRequest.create_only
	Since  Version
	Target Version
	Reason error // the step's error; nil when no step is registered
}

func (e *CannotBackportError) Error() string {
	if e.Reason == nil {
		return fmt.Sprintf("rpcver: cannot backport %s (since %s) to %s: the field is set and no backport step is registered; leave it unset or register one with rpcver.Backport",
			e.Field, e.Since, e.Target)
	}
	return fmt.Sprintf("rpcver: cannot backport %s (since %s) to %s: %v", e.Field, e.Since, e.Target, e.Reason)
}

func (e *CannotBackportError) Unwrap() []error {
	if e.Reason == nil {
		return []error{ErrCannotBackport}
	}
	return []error{ErrCannotBackport, e.Reason}
}

// NoServerError means no server answered on the method's subject.
type NoServerError struct {
	API     string
	Subject string
	// Reconnected is how long ago the client's connection came back after
	// an outage, when that was recently (zero otherwise): servers
	// resubscribe when their own connections come back, so for a moment
	// after a NATS restart a subject may have no listener yet.
	Reconnected time.Duration
}

func (e *NoServerError) Error() string {
	if e.Reconnected > 0 {
		return fmt.Sprintf("rpcver: no %s server listens on %s yet: NATS reconnected %s ago and the servers may still be resubscribing; retry shortly",
			e.API, e.Subject, e.Reconnected.Round(time.Millisecond))
	}
	return fmt.Sprintf("rpcver: no %s server listens on %s: start one, or check the API's major version and that the servers use the same cluster and prefix", e.API, e.Subject)
}

func (e *NoServerError) Unwrap() error { return ErrNoServer }

// DisconnectedError is a call that met a NATS connection that was not
// connected. The client never buffers a request while its connection is
// down, so a request that was not sent (InFlight false) can never run
// later. A request that was sent before the connection dropped (InFlight
// true) may have reached a server and run there, under its caller's
// budget (see Server); nothing of it was kept to be sent again after the
// reconnect. It unwraps to the timeout it ended with as well.
type DisconnectedError struct {
	API      string
	Method   string
	Status   string // the connection's status, e.g. RECONNECTING or CLOSED
	InFlight bool
	Err      error // what nats.go reported, if anything
}

func (e *DisconnectedError) Error() string {
	next := "nats.go reconnects by itself; retry once it has"
	if e.Status == "CLOSED" {
		next = "the connection is closed; create a new client on an open connection"
	}
	if e.InFlight {
		return fmt.Sprintf("rpcver: call %s.%s: NATS disconnected while the request was in flight (connection %s): it may have reached a server and run; it was not kept to be sent after the reconnect; %s",
			e.API, e.Method, e.Status, next)
	}
	return fmt.Sprintf("rpcver: call %s.%s: not sent, NATS is disconnected (connection %s); %s", e.API, e.Method, e.Status, next)
}

func (e *DisconnectedError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrDisconnected}
	}
	return []error{ErrDisconnected, e.Err}
}

// RemoteError is an error a server answered with, from micro's error
// headers. Code CodeBadRequest unwraps to ErrBadRequest, CodeCannotBackport
// to ErrCannotBackport, CodeFrozen to ErrRemote and ErrFrozen, CodeDeadlineExceeded to ErrRemote and
// context.DeadlineExceeded (the handler ran out of the caller's time),
// anything else to ErrRemote.
type RemoteError struct {
	API         string
	Method      string
	Code        string
	Description string
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("rpcver: %s.%s: server error %s: %s", e.API, e.Method, e.Code, e.Description)
}

func (e *RemoteError) Unwrap() []error {
	switch e.Code {
	case CodeBadRequest:
		return []error{ErrBadRequest}
	case CodeCannotBackport:
		return []error{ErrCannotBackport}
	case CodeFrozen:
		return []error{ErrRemote, ErrFrozen}
	case CodeDeadlineExceeded:
		return []error{ErrRemote, context.DeadlineExceeded}
	}
	return []error{ErrRemote}
}

// StatusError lets a handler choose the code its caller sees, e.g.
// &StatusError{Code: CodeNotFound, Message: "no item 42"}; any other handler
// error goes back as CodeInternal.
type StatusError struct {
	Code    string
	Message string
	Err     error // optional cause, kept on the server side
}

func (e *StatusError) Error() string { return e.Code + " " + e.Message }

func (e *StatusError) Unwrap() error { return e.Err }

// ObjectError reports stored bytes that cannot be read as a versioned object.
type ObjectError struct {
	Message string // the message's full name
	Reason  string
}

func (e *ObjectError) Error() string {
	return fmt.Sprintf("rpcver: stored %s: %s", e.Message, e.Reason)
}

func (e *ObjectError) Unwrap() error { return ErrBadObject }

// newErrorID names one handler failure: the caller gets the id, the
// server's log the error under it, so the two can be matched without the
// caller seeing the server's internals (SQL, hosts, file names).
func newErrorID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// internalMessage is all a caller learns of a handler error that is no
// StatusError.
func internalMessage(id string) string {
	return "internal error (error id " + id + "); the server's log has the details under this id"
}
