package rpcver

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/tandem-go/tandem/rpcver/tandempb"
	"github.com/tandem-go/tandem/services"
)

// Version is an API's major.minor version.
type Version = services.Version

// CapSource gives the cluster's cap per API without I/O; *services.Cache
// satisfies it. Refresh is called when a server says the cap moved.
type CapSource interface {
	Cap(api string) (Version, bool)
	Refresh(ctx context.Context) error
}

// API is one versioned RPC API read from a protobuf service: its name, its
// current and oldest accepted versions, when each method and field came,
// and the backport and upgrade steps between versions. It is immutable and
// safe for concurrent use.
type API struct {
	name     string
	service  protoreflect.ServiceDescriptor
	current  Version
	oldest   Version
	declared Version // the version the .proto declares
	methods  map[string]*methodInfo
	msgs     map[protoreflect.FullName]*msgInfo
}

type methodInfo struct {
	name   string
	desc   protoreflect.MethodDescriptor
	since  Version
	input  *msgInfo
	output *msgInfo
}

// stepFunc is a backport step in reflection form.
type stepFunc func(m protoreflect.Message, to Version) error

type fieldInfo struct {
	fd       protoreflect.FieldDescriptor
	since    Version
	backport stepFunc
	// For an enum field whose enum has values with (tandem.enum_since):
	// each such value's version, and the newest of them.
	values    map[protoreflect.EnumNumber]Version
	valuesMax Version
}

type child struct {
	fd       protoreflect.FieldDescriptor
	info     *msgInfo
	singular bool // neither a list nor a map
}

type upgradeStep struct {
	to Version
	fn func(m protoreflect.Message) error
}

// msgInfo is what the walks need of one message type, computed once.
type msgInfo struct {
	desc      protoreflect.MessageDescriptor
	versioned []fieldInfo // fields with a since, newest first
	enums     []fieldInfo // enum fields whose enum has values with a since
	upgrades  []upgradeStep
	children  []child // message fields whose subtree has versioned fields or upgrades
	// maxSince and maxUpgrade summarise the subtree so a walk skips messages
	// that cannot need it.
	maxSince   Version
	maxUpgrade Version
}

type apiConfig struct {
	current, oldest *Version
	messages        []protoreflect.MessageDescriptor
	backports       []backportDecl
	upgrades        []upgradeDecl
	errs            []error
}

type backportDecl struct {
	msg   protoreflect.MessageDescriptor
	field string
	fn    stepFunc
}

type upgradeDecl struct {
	msg protoreflect.MessageDescriptor
	to  string
	fn  func(protoreflect.Message) error
}

// Backport registers the step that turns field of M, when set, into the
// fields an older version knows. It runs on a copy of the caller's message
// and only when the target is older than the field; return an error when
// the value cannot be expressed at version to. rpcver clears the field after
// the step succeeds. On an enum field whose value is newer than the target,
// the step maps the value to one the target knows instead: the field is
// not cleared, and a value still too new afterwards fails the backport.
func Backport[M proto.Message](field string, fn func(m M, to Version) error) Option {
	var zero M
	md := zero.ProtoReflect().Descriptor()
	o := Option{name: "Backport", api: func(c *apiConfig) {
		c.backports = append(c.backports, backportDecl{msg: md, field: field, fn: func(m protoreflect.Message, to Version) error {
			return fn(m.Interface().(M), to)
		}})
	}}
	if fn == nil {
		o.bad, o.val = "a nil step", field
	}
	return o
}

// Upgrade registers the step that brings an M read at a version before to
// up to version to, e.g. filling a new field from old ones. Steps run in
// version order, on requests a server receives, on responses a capped
// client receives and on stored objects read back.
func Upgrade[M proto.Message](to string, fn func(m M) error) Option {
	var zero M
	md := zero.ProtoReflect().Descriptor()
	o := Option{name: "Upgrade", api: func(c *apiConfig) {
		c.upgrades = append(c.upgrades, upgradeDecl{msg: md, to: to, fn: func(m protoreflect.Message) error {
			return fn(m.Interface().(M))
		}})
	}}
	if fn == nil {
		o.bad, o.val = "a nil step", to
	}
	return o
}

// NewAPI reads the API's history from the service descriptor's tandem
// options: (tandem.api), (tandem.version), (tandem.oldest) on the service,
// (tandem.method_since) on methods, (tandem.since) on fields, (tandem.enum_since)
// on enum values.
func NewAPI(sd protoreflect.ServiceDescriptor, opts ...Option) (*API, error) {
	var cfg apiConfig
	if err := applyOptions("NewAPI", &cfg, opts, func(o Option) func(*apiConfig) { return o.api }); err != nil {
		return nil, err
	}
	name, _ := proto.GetExtension(sd.Options(), tandempb.E_Api).(string)
	if name == "" {
		name = strings.ToLower(string(sd.Name()))
	}
	a := &API{name: name, service: sd, methods: map[string]*methodInfo{}, msgs: map[protoreflect.FullName]*msgInfo{}}
	bad := func(where, format string, args ...any) error {
		return &DefinitionError{API: name, Where: where, Reason: fmt.Sprintf(format, args...)}
	}
	if !validName(name) {
		return nil, bad("(tandem.api)", "%q must be letters, digits, '-' or '_' (it becomes a NATS subject token and a micro service name)", name)
	}
	vs, _ := proto.GetExtension(sd.Options(), tandempb.E_Version).(string)
	if vs == "" {
		return nil, bad(string(sd.FullName()), "no (tandem.version) option: add option (tandem.version) = \"1.0\"; to the service")
	}
	declared, err := services.ParseVersion(vs)
	if err != nil {
		return nil, bad("(tandem.version)", "%v", err)
	}
	a.declared, a.current = declared, declared
	if cfg.current != nil {
		if cfg.current.Major != declared.Major {
			return nil, bad("WithCurrent", "%s is not in major %d of the .proto; serve another major as its own API", cfg.current, declared.Major)
		}
		a.current = *cfg.current
	}
	a.oldest = Version{Major: a.current.Major}
	if olds, _ := proto.GetExtension(sd.Options(), tandempb.E_Oldest).(string); olds != "" {
		if a.oldest, err = services.ParseVersion(olds); err != nil {
			return nil, bad("(tandem.oldest)", "%v", err)
		}
	}
	if cfg.oldest != nil {
		a.oldest = *cfg.oldest
	}
	if a.oldest.Major != a.current.Major || a.current.Less(a.oldest) {
		return nil, bad("oldest version", "%s must be in major %d and not after current %s", a.oldest, a.current.Major, a.current)
	}
	since := func(where string, s string) (Version, error) {
		if s == "" {
			return Version{}, nil
		}
		v, err := services.ParseVersion(s)
		if err != nil {
			return v, bad(where, "(tandem.since): %v", err)
		}
		if v.Major != declared.Major || declared.Less(v) {
			return v, bad(where, "since %s is outside the API's major %d up to %s: bump (tandem.version) first", v, declared.Major, declared)
		}
		return v, nil
	}
	// Read every message reachable from the methods and the extra messages.
	var visit func(md protoreflect.MessageDescriptor) (*msgInfo, error)
	visit = func(md protoreflect.MessageDescriptor) (*msgInfo, error) {
		if mi := a.msgs[md.FullName()]; mi != nil {
			return mi, nil
		}
		mi := &msgInfo{desc: md}
		a.msgs[md.FullName()] = mi
		fields := md.Fields()
		for i := 0; i < fields.Len(); i++ {
			fd := fields.Get(i)
			s, _ := proto.GetExtension(fd.Options(), tandempb.E_Since).(string)
			v, err := since(string(fd.FullName()), s)
			if err != nil {
				return nil, err
			}
			if !v.IsZero() {
				mi.versioned = append(mi.versioned, fieldInfo{fd: fd, since: v})
			}
			if ed := enumOf(fd); ed != nil {
				f := fieldInfo{fd: fd, since: v}
				vals := ed.Values()
				for j := 0; j < vals.Len(); j++ {
					vd := vals.Get(j)
					es, _ := proto.GetExtension(vd.Options(), tandempb.E_EnumSince).(string)
					ev, err := since(string(vd.FullName()), es)
					if err != nil {
						return nil, err
					}
					if ev.IsZero() {
						continue
					}
					if f.values == nil {
						f.values = map[protoreflect.EnumNumber]Version{}
					}
					f.values[vd.Number()] = ev
					if f.valuesMax.Less(ev) {
						f.valuesMax = ev
					}
				}
				if f.values != nil {
					mi.enums = append(mi.enums, f)
				}
			}
			if cm := messageOf(fd); cm != nil {
				if _, err := visit(cm); err != nil {
					return nil, err
				}
			}
		}
		slices.SortStableFunc(mi.versioned, func(x, y fieldInfo) int { return y.since.Compare(x.since) })
		return mi, nil
	}
	methods := sd.Methods()
	for i := 0; i < methods.Len(); i++ {
		md := methods.Get(i)
		s, _ := proto.GetExtension(md.Options(), tandempb.E_MethodSince).(string)
		v, err := since(string(md.FullName()), s)
		if err != nil {
			return nil, err
		}
		if v.IsZero() {
			v = Version{Major: declared.Major}
		}
		if md.IsStreamingClient() || md.IsStreamingServer() {
			return nil, bad(string(md.FullName()), "streaming methods are not supported; use unary request/reply")
		}
		if !validName(string(md.Name())) {
			return nil, bad(string(md.FullName()), "method name must be letters, digits, '-' or '_'")
		}
		in, err := visit(md.Input())
		if err != nil {
			return nil, err
		}
		out, err := visit(md.Output())
		if err != nil {
			return nil, err
		}
		a.methods[string(md.Name())] = &methodInfo{name: string(md.Name()), desc: md, since: v, input: in, output: out}
	}
	for _, md := range cfg.messages {
		if _, err := visit(md); err != nil {
			return nil, err
		}
	}
	for _, b := range cfg.backports {
		mi := a.msgs[b.msg.FullName()]
		if mi == nil {
			return nil, bad("Backport", "message %s is not used by the API; add it with WithMessages", b.msg.FullName())
		}
		found := false
		for _, list := range [][]fieldInfo{mi.versioned, mi.enums} {
			for i := range list {
				if string(list[i].fd.Name()) == b.field {
					if list[i].backport != nil {
						return nil, bad("Backport", "two steps for %s.%s", b.msg.FullName(), b.field)
					}
					list[i].backport, found = b.fn, true
				}
			}
		}
		if !found {
			return nil, bad("Backport", "%s has no field %q with a (tandem.since) option, nor an enum field with values with (tandem.enum_since)", b.msg.FullName(), b.field)
		}
	}
	for _, u := range cfg.upgrades {
		mi := a.msgs[u.msg.FullName()]
		if mi == nil {
			return nil, bad("Upgrade", "message %s is not used by the API; add it with WithMessages", u.msg.FullName())
		}
		v, err := since("Upgrade "+string(u.msg.FullName()), u.to)
		if err != nil {
			return nil, err
		}
		mi.upgrades = append(mi.upgrades, upgradeStep{to: v, fn: u.fn})
	}
	a.summarise()
	return a, nil
}

// MustNewAPI is NewAPI for package-level variables; it panics on error.
func MustNewAPI(sd protoreflect.ServiceDescriptor, opts ...Option) *API {
	a, err := NewAPI(sd, opts...)
	if err != nil {
		panic(err)
	}
	return a
}

// summarise computes each message's subtree summary to a fixed point, so
// recursive messages terminate.
func (a *API) summarise() {
	for _, mi := range a.msgs {
		slices.SortStableFunc(mi.upgrades, func(x, y upgradeStep) int { return x.to.Compare(y.to) })
		if len(mi.versioned) > 0 {
			mi.maxSince = mi.versioned[0].since
		}
		for _, f := range mi.enums {
			if mi.maxSince.Less(f.valuesMax) {
				mi.maxSince = f.valuesMax
			}
		}
		if n := len(mi.upgrades); n > 0 {
			mi.maxUpgrade = mi.upgrades[n-1].to
		}
	}
	for changed := true; changed; {
		changed = false
		for _, mi := range a.msgs {
			fields := mi.desc.Fields()
			for i := 0; i < fields.Len(); i++ {
				cd := messageOf(fields.Get(i))
				if cd == nil {
					continue
				}
				ci := a.msgs[cd.FullName()]
				if mi.maxSince.Less(ci.maxSince) {
					mi.maxSince, changed = ci.maxSince, true
				}
				if mi.maxUpgrade.Less(ci.maxUpgrade) {
					mi.maxUpgrade, changed = ci.maxUpgrade, true
				}
			}
		}
	}
	for _, mi := range a.msgs {
		fields := mi.desc.Fields()
		for i := 0; i < fields.Len(); i++ {
			fd := fields.Get(i)
			if cd := messageOf(fd); cd != nil {
				ci := a.msgs[cd.FullName()]
				if !ci.maxSince.IsZero() || !ci.maxUpgrade.IsZero() {
					mi.children = append(mi.children, child{fd: fd, info: ci, singular: !fd.IsList() && !fd.IsMap()})
				}
			}
		}
	}
}

// messageOf returns the message type a field holds (the value type for
// maps), or nil.
func messageOf(fd protoreflect.FieldDescriptor) protoreflect.MessageDescriptor {
	if fd.IsMap() {
		fd = fd.MapValue()
	}
	if fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind {
		return fd.Message()
	}
	return nil
}

// enumOf returns the enum type a field holds (the value type for maps), or
// nil.
func enumOf(fd protoreflect.FieldDescriptor) protoreflect.EnumDescriptor {
	if fd.IsMap() {
		fd = fd.MapValue()
	}
	if fd.Kind() == protoreflect.EnumKind {
		return fd.Enum()
	}
	return nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// Name is the API name servers register under and clients cap on.
func (a *API) Name() string { return a.name }

// Current is the newest version this build speaks.
func (a *API) Current() Version { return a.current }

// Oldest is the oldest version servers of this build accept.
func (a *API) Oldest() Version { return a.oldest }

// Service is the protobuf service the API was read from.
func (a *API) Service() protoreflect.ServiceDescriptor { return a.service }

// Registration is the API as the registry records it.
func (a *API) Registration() services.API {
	return services.API{Name: a.name, Current: a.current, Oldest: a.oldest}
}

// MethodSince returns the version that introduced a method.
func (a *API) MethodSince(method string) (Version, bool) {
	m := a.methods[method]
	if m == nil {
		return Version{}, false
	}
	return m.since, true
}

// Methods lists the API's methods known at the current version, by name.
func (a *API) Methods() []string {
	var out []string
	for n, m := range a.methods {
		if !a.current.Less(m.since) {
			out = append(out, n)
		}
	}
	slices.SortFunc(out, cmp.Compare)
	return out
}

func (a *API) msgInfo(m protoreflect.Message) *msgInfo { return a.msgs[m.Descriptor().FullName()] }

// BackportTo rewrites m in place to version to, as a client does before
// sending: every set field newer than to goes through its Backport step, or
// the result is a *CannotBackportError (m may then be partly rewritten;
// work on a copy when that matters).
func (a *API) BackportTo(m proto.Message, to Version) error {
	r := m.ProtoReflect()
	return a.backport(r, a.msgInfo(r), to, true)
}

// UpgradeFrom runs, in place, the Upgrade steps that bring m from version
// from to the API's current version.
func (a *API) UpgradeFrom(m proto.Message, from Version) error {
	r := m.ProtoReflect()
	return a.upgrade(r, a.msgInfo(r), from)
}
