package services

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
)

// State is where an instance stands. Missing is never stored: it is derived
// from the heartbeat's age when the registry is read.
type State string

// The states an instance can be in.
const (
	StateUp       State = "up"
	StateDraining State = "draining"
	StateError    State = "error"
	StateMissing  State = "missing"
	StateDeleted  State = "deleted"
)

// ParseState accepts the five state names.
func ParseState(s string) (State, error) {
	switch st := State(strings.ToLower(strings.TrimSpace(s))); st {
	case StateUp, StateDraining, StateError, StateMissing, StateDeleted:
		return st, nil
	}
	return "", &ValidationError{Field: "state", Value: s, Reason: "unknown state: want up, draining, error, missing or deleted"}
}

// API is one RPC API an instance serves: the version it speaks now and the
// oldest request version it still accepts.
type API struct {
	Name    string  `json:"name"`
	Current Version `json:"current"`
	Oldest  Version `json:"oldest"`
}

// Instance is one running process of a service.
type Instance struct {
	ID          string            `json:"id"`
	Service     string            `json:"service"`
	Host        string            `json:"host"`
	Release     int64             `json:"release"`
	APIs        []API             `json:"apis,omitempty"`
	State       State             `json:"state"`
	StartedAt   time.Time         `json:"started_at"`
	HeartbeatAt time.Time         `json:"heartbeat_at"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	// Phases holds, per move, the phase this instance acts on; it is
	// reported with every heartbeat so phase transitions can wait for all.
	Phases map[string]string `json:"phases,omitempty"`
	// Incarnation numbers the process starts that registered this id (1,
	// 2, ...); the registry assigns it. PID is the registering process's.
	Incarnation int64 `json:"incarnation,omitempty"`
	PID         int   `json:"pid,omitempty"`
	// Revision is the registry revision of the instance's last change
	// (see Registry.Revision); 0 for a row no change has touched since
	// revisions were recorded.
	Revision int64 `json:"revision,omitempty"`
	// Freeze is the write freeze state (its seq, see dualwrite.FreezeState)
	// the instance last acknowledged: it refuses the writes that state
	// freezes and no write it began before is still running. 0 when it
	// never acknowledged one.
	Freeze int64 `json:"freeze,omitempty"`
}

// API returns the named API the instance serves.
func (in Instance) API(name string) (API, bool) {
	for _, a := range in.APIs {
		if a.Name == name {
			return a, true
		}
	}
	return API{}, false
}

// Heartbeat is what an instance reports periodically. Zero fields leave the
// stored value as it is.
type Heartbeat struct {
	State  State             `json:"state,omitempty"`
	APIs   []API             `json:"apis,omitempty"`
	Phases map[string]string `json:"phases,omitempty"`
	// Freeze is the write freeze state the instance acknowledges (a
	// dualwrite.Tracker's FreezeAck); 0 leaves the stored one.
	Freeze int64 `json:"freeze,omitempty"`
	// Incarnation is the incarnation that reports; KeepAlive sets it. A
	// heartbeat of a superseded or deleted incarnation is refused with a
	// *FencedError. Zero checks only that the id is not deleted.
	Incarnation int64 `json:"incarnation,omitempty"`
}

func validID(field, v string) error {
	switch {
	case strings.TrimSpace(v) == "":
		return &ValidationError{Field: field, Value: v, Reason: "must not be empty"}
	case len(v) > 200:
		return &ValidationError{Field: field, Value: v[:40] + "...", Reason: "longer than 200 bytes"}
	case strings.IndexFunc(v, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return &ValidationError{Field: field, Value: v, Reason: "must not contain spaces or control characters"}
	}
	return nil
}

func validateAPIs(apis []API) error {
	seen := map[string]bool{}
	for _, a := range apis {
		if err := validID("API name", a.Name); err != nil {
			return err
		}
		if seen[a.Name] {
			return &ValidationError{Field: "API name", Value: a.Name, Reason: "listed twice"}
		}
		seen[a.Name] = true
		for _, v := range []Version{a.Current, a.Oldest} {
			if err := v.Validate(); err != nil {
				return &ValidationError{Field: "API version", Value: a.Name + " " + v.String(), Reason: "major and minor must be non-negative"}
			}
		}
		if a.Current.IsZero() {
			return &ValidationError{Field: "API version", Value: a.Name + " " + a.Current.String(), Reason: "current version must be set (at least 0.1)"}
		}
		if a.Oldest.IsZero() {
			continue // means: accepts only Current
		}
		if a.Current.Less(a.Oldest) {
			return &ValidationError{Field: "API version", Value: fmt.Sprintf("%s %s..%s", a.Name, a.Oldest, a.Current), Reason: "oldest accepted version is above the current one"}
		}
	}
	return nil
}

func (in *Instance) normalize() error {
	if err := validID("instance id", in.ID); err != nil {
		return err
	}
	if err := validID("service name", in.Service); err != nil {
		return err
	}
	if in.Host == "" {
		in.Host = "unknown"
	}
	if err := validID("host", in.Host); err != nil {
		return err
	}
	for k, v := range in.Metadata {
		if len(k) > 200 || len(v) > 4096 {
			return &ValidationError{Field: "metadata", Value: truncate(k), Reason: "keys are at most 200 bytes and values at most 4096"}
		}
	}
	if in.Release <= 0 {
		return &ValidationError{Field: "release", Value: fmt.Sprint(in.Release), Reason: "must be a positive integer that grows with every build"}
	}
	switch in.State {
	case "":
		in.State = StateUp
	case StateUp, StateDraining, StateError:
	case StateMissing, StateDeleted:
		return &ValidationError{Field: "state", Value: string(in.State), Reason: "an instance registers as up, draining or error"}
	default:
		if _, err := ParseState(string(in.State)); err != nil {
			return err
		}
	}
	for i := range in.APIs {
		if in.APIs[i].Oldest.IsZero() {
			in.APIs[i].Oldest = in.APIs[i].Current
		}
	}
	if err := validateAPIs(in.APIs); err != nil {
		return err
	}
	in.normalizeAPIsOnly()
	return nil
}

func (in *Instance) normalizeAPIsOnly() {
	slices.SortFunc(in.APIs, func(a, b API) int { return strings.Compare(a.Name, b.Name) })
}
