package rpcver

import (
	"fmt"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// The walks visit only messages whose subtree summary says they can matter,
// so a message with nothing newer than the target costs one comparison.

// needsBackport reports whether m holds a set field newer than to, anywhere
// in its tree. It does not modify m.
func (a *API) needsBackport(m protoreflect.Message, mi *msgInfo, to Version) bool {
	if mi == nil || !to.Less(mi.maxSince) {
		return false
	}
	for i := range mi.versioned {
		f := &mi.versioned[i]
		if !to.Less(f.since) {
			break
		}
		if m.Has(f.fd) {
			return true
		}
	}
	found := false
	a.eachChild(m, mi, func(c protoreflect.Message, ci *msgInfo) bool {
		found = a.needsBackport(c, ci, to)
		return !found
	})
	return found
}

// backport rewrites m in place to version to. strict makes a set field
// without a step an error (requests, stored objects); otherwise the field
// is left for the older peer to keep as an unknown field (responses).
func (a *API) backport(m protoreflect.Message, mi *msgInfo, to Version, strict bool) error {
	if mi == nil || !to.Less(mi.maxSince) {
		return nil
	}
	// Newest first: a step may move a value into a field that is itself
	// newer than the target, which the next iterations then handle.
	for i := range mi.versioned {
		f := &mi.versioned[i]
		if !to.Less(f.since) {
			break
		}
		if !m.Has(f.fd) {
			continue
		}
		if f.backport == nil {
			if strict {
				return &CannotBackportError{Field: string(f.fd.FullName()), Since: f.since, Target: to}
			}
			continue
		}
		if err := f.backport(m, to); err != nil {
			return &CannotBackportError{Field: string(f.fd.FullName()), Since: f.since, Target: to, Reason: err}
		}
		m.Clear(f.fd)
	}
	var err error
	a.eachChild(m, mi, func(c protoreflect.Message, ci *msgInfo) bool {
		err = a.backport(c, ci, to, strict)
		return err == nil
	})
	return err
}

// upgrade runs the steps after version from, up to the API's current, on
// m's tree, oldest first.
func (a *API) upgrade(m protoreflect.Message, mi *msgInfo, from Version) error {
	if mi == nil || !from.Less(mi.maxUpgrade) {
		return nil
	}
	for _, u := range mi.upgrades {
		if !from.Less(u.to) || a.current.Less(u.to) {
			continue
		}
		if err := u.fn(m); err != nil {
			return fmt.Errorf("upgrade %s to %s: %w", mi.desc.FullName(), u.to, err)
		}
	}
	var err error
	a.eachChild(m, mi, func(c protoreflect.Message, ci *msgInfo) bool {
		err = a.upgrade(c, ci, from)
		return err == nil
	})
	return err
}

// eachChild calls fn on every set message value below m that can matter,
// until fn returns false.
func (a *API) eachChild(m protoreflect.Message, mi *msgInfo, fn func(protoreflect.Message, *msgInfo) bool) {
	for _, fd := range mi.children {
		if !m.Has(fd) {
			continue
		}
		ci := a.msgs[messageOf(fd).FullName()]
		switch {
		case fd.IsMap():
			ok := true
			m.Get(fd).Map().Range(func(_ protoreflect.MapKey, v protoreflect.Value) bool {
				ok = fn(v.Message(), ci)
				return ok
			})
			if !ok {
				return
			}
		case fd.IsList():
			l := m.Get(fd).List()
			for i := 0; i < l.Len(); i++ {
				if !fn(l.Get(i).Message(), ci) {
					return
				}
			}
		default:
			if !fn(m.Get(fd).Message(), ci) {
				return
			}
		}
	}
}
