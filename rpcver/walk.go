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
	for i := range mi.enums {
		f := &mi.enums[i]
		if to.Less(f.valuesMax) && m.Has(f.fd) {
			if _, ok := f.newerValue(m, to); ok {
				return true
			}
		}
	}
	for _, ch := range mi.children {
		fd, ci := ch.fd, ch.info
		if !to.Less(ci.maxSince) {
			continue
		}
		if ch.singular {
			// One reflective read instead of Has then Get; an unset field
			// reads as an invalid message.
			if c := m.Get(fd).Message(); c.IsValid() && a.needsBackport(c, ci, to) {
				return true
			}
			continue
		}
		if !m.Has(fd) {
			continue
		}
		switch v := m.Get(fd); {
		case fd.IsMap():
			found := false
			v.Map().Range(func(_ protoreflect.MapKey, e protoreflect.Value) bool {
				found = a.needsBackport(e.Message(), ci, to)
				return !found
			})
			if found {
				return true
			}
		default:
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				if a.needsBackport(l.Get(i).Message(), ci, to) {
					return true
				}
			}
		}
	}
	return false
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
	// Enum values newer than the target, in fields the loop above kept: an
	// older peer would read an unknown number, so the field's step must
	// map them, or the call fails.
	for i := range mi.enums {
		f := &mi.enums[i]
		if !to.Less(f.valuesMax) || !m.Has(f.fd) {
			continue
		}
		n, ok := f.newerValue(m, to)
		if !ok {
			continue
		}
		if f.backport == nil {
			if strict {
				return &CannotBackportError{Field: string(f.fd.FullName()), Since: f.values[n], Target: to,
					Reason: fmt.Errorf("value %s is newer than %s", enumName(f.fd, n), to)}
			}
			continue
		}
		if err := f.backport(m, to); err != nil {
			return &CannotBackportError{Field: string(f.fd.FullName()), Since: f.values[n], Target: to, Reason: err}
		}
		if n, ok := f.newerValue(m, to); ok && strict {
			return &CannotBackportError{Field: string(f.fd.FullName()), Since: f.values[n], Target: to,
				Reason: fmt.Errorf("the backport step left value %s, newer than %s", enumName(f.fd, n), to)}
		}
	}
	for _, ch := range mi.children {
		fd, ci := ch.fd, ch.info
		if !to.Less(ci.maxSince) {
			continue
		}
		if ch.singular {
			// The common case: one reflective read, no closure to allocate.
			if c := m.Get(fd).Message(); c.IsValid() {
				if err := a.backport(c, ci, to, strict); err != nil {
					return err
				}
			}
			continue
		}
		if !m.Has(fd) {
			continue
		}
		if err := a.eachMessage(m.Get(fd), fd, func(c protoreflect.Message) error { return a.backport(c, ci, to, strict) }); err != nil {
			return err
		}
	}
	return nil
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
	for _, ch := range mi.children {
		fd, ci := ch.fd, ch.info
		if !from.Less(ci.maxUpgrade) {
			continue
		}
		if ch.singular {
			if c := m.Get(fd).Message(); c.IsValid() {
				if err := a.upgrade(c, ci, from); err != nil {
					return err
				}
			}
			continue
		}
		if !m.Has(fd) {
			continue
		}
		if err := a.eachMessage(m.Get(fd), fd, func(c protoreflect.Message) error { return a.upgrade(c, ci, from) }); err != nil {
			return err
		}
	}
	return nil
}

// eachMessage calls fn on the message, each list element or each map value
// that v (the value of fd) holds, until fn fails.
func (a *API) eachMessage(v protoreflect.Value, fd protoreflect.FieldDescriptor, fn func(protoreflect.Message) error) error {
	switch {
	case fd.IsMap():
		var err error
		v.Map().Range(func(_ protoreflect.MapKey, e protoreflect.Value) bool {
			err = fn(e.Message())
			return err == nil
		})
		return err
	case fd.IsList():
		l := v.List()
		for i := 0; i < l.Len(); i++ {
			if err := fn(l.Get(i).Message()); err != nil {
				return err
			}
		}
		return nil
	}
	return fn(v.Message())
}

// newerValue returns the first enum value in f (a set field of m) that is
// newer than to.
func (f *fieldInfo) newerValue(m protoreflect.Message, to Version) (protoreflect.EnumNumber, bool) {
	newer := func(n protoreflect.EnumNumber) bool { v, ok := f.values[n]; return ok && to.Less(v) }
	v := m.Get(f.fd)
	switch {
	case f.fd.IsMap():
		var found protoreflect.EnumNumber
		ok := false
		v.Map().Range(func(_ protoreflect.MapKey, e protoreflect.Value) bool {
			if n := e.Enum(); newer(n) {
				found, ok = n, true
			}
			return !ok
		})
		return found, ok
	case f.fd.IsList():
		l := v.List()
		for i := 0; i < l.Len(); i++ {
			if n := l.Get(i).Enum(); newer(n) {
				return n, true
			}
		}
		return 0, false
	}
	n := v.Enum()
	return n, newer(n)
}

func enumName(fd protoreflect.FieldDescriptor, n protoreflect.EnumNumber) string {
	if ed := enumOf(fd); ed != nil {
		if vd := ed.Values().ByNumber(n); vd != nil {
			return string(vd.Name())
		}
	}
	return fmt.Sprint(int32(n))
}
