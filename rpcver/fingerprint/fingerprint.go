package fingerprint

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/tandem-go/tandem/rpcver/tandempb"
	"github.com/tandem-go/tandem/services"
)

// Sentinel errors.
var (
	// ErrInvalid means the service or the file cannot be read as an API.
	ErrInvalid = errors.New("fingerprint: invalid input")
	// ErrProblems means Check found problems; Record refuses to record.
	ErrProblems = errors.New("fingerprint: API check failed")
)

// Field is one field as fingerprinted.
type Field struct {
	Number      int32  `json:"number"`
	Name        string `json:"name"`
	Type        string `json:"type"`
	Cardinality string `json:"cardinality"`
	Since       string `json:"since,omitempty"`
	// Oneof names the oneof the field belongs to; empty for none (a proto3
	// optional field's synthetic oneof does not count).
	Oneof string `json:"oneof,omitempty"`
}

// EnumValue is one enum value as fingerprinted.
type EnumValue struct {
	Number int32  `json:"number"`
	Name   string `json:"name"`
	Since  string `json:"since,omitempty"` // (tandem.enum_since)
}

// Enum is one enum's fingerprint and values, by number.
type Enum struct {
	Fingerprint string      `json:"fingerprint"`
	Values      []EnumValue `json:"values"`
}

// Message is one message's fingerprint and fields.
type Message struct {
	Fingerprint string  `json:"fingerprint"`
	Fields      []Field `json:"fields"`
}

// Method is one method as recorded.
type Method struct {
	Input  string `json:"input"`
	Output string `json:"output"`
	Since  string `json:"since,omitempty"`
}

// Snapshot is an API at one version.
type Snapshot struct {
	Version  string             `json:"version"`
	Methods  map[string]Method  `json:"methods"`
	Messages map[string]Message `json:"messages"`
	// Enums are the enums the messages' fields use, by full name.
	Enums map[string]Enum `json:"enums,omitempty"`
	// reserved numbers per message and enum, from the live descriptor; not
	// recorded.
	reserved     map[string]protoreflect.FieldRanges
	enumReserved map[string]protoreflect.EnumRanges
}

// File is the committed record: every released version, oldest first.
type File struct {
	API      string     `json:"api"`
	Versions []Snapshot `json:"versions"`
}

// Problem is one thing Check found wrong.
type Problem struct {
	Kind    Kind
	Subject string // the message, field or method
	Detail  string
}

func (p Problem) String() string { return fmt.Sprintf("%s: %s: %s", p.Kind, p.Subject, p.Detail) }

// Kind classifies a Problem.
type Kind string

// Problem kinds.
const (
	ChangedWithoutBump Kind = "changed without a version bump"
	WireBreak          Kind = "breaks the wire"
	BadSince           Kind = "wrong (tandem.since)"
	NotRecorded        Kind = "version not recorded"
	VersionBackwards   Kind = "version went backwards"
)

// Compute fingerprints the API of sd: its methods and every message and
// enum they reach, plus extra messages (stored objects, say).
func Compute(sd protoreflect.ServiceDescriptor, extra ...protoreflect.MessageDescriptor) (Snapshot, error) {
	vs, _ := proto.GetExtension(sd.Options(), tandempb.E_Version).(string)
	if _, err := services.ParseVersion(vs); err != nil {
		return Snapshot{}, fmt.Errorf("%w: service %s: (tandem.version) %q: %v", ErrInvalid, sd.FullName(), vs, err)
	}
	s := Snapshot{Version: vs, Methods: map[string]Method{}, Messages: map[string]Message{}, Enums: map[string]Enum{},
		reserved: map[string]protoreflect.FieldRanges{}, enumReserved: map[string]protoreflect.EnumRanges{}}
	visitEnum := func(ed protoreflect.EnumDescriptor) {
		name := string(ed.FullName())
		if _, ok := s.Enums[name]; ok {
			return
		}
		vals := ed.Values()
		var vs []EnumValue
		for i := 0; i < vals.Len(); i++ {
			vd := vals.Get(i)
			since, _ := proto.GetExtension(vd.Options(), tandempb.E_EnumSince).(string)
			vs = append(vs, EnumValue{Number: int32(vd.Number()), Name: string(vd.Name()), Since: since})
		}
		// Aliases share a number; order by number, then name, to be stable.
		sort.Slice(vs, func(i, j int) bool {
			return vs[i].Number < vs[j].Number || vs[i].Number == vs[j].Number && vs[i].Name < vs[j].Name
		})
		s.Enums[name] = Enum{Fingerprint: hashEnum(vs), Values: vs}
		s.enumReserved[name] = ed.ReservedRanges()
	}
	var visit func(md protoreflect.MessageDescriptor)
	visit = func(md protoreflect.MessageDescriptor) {
		name := string(md.FullName())
		if _, ok := s.Messages[name]; ok {
			return
		}
		s.Messages[name] = Message{} // placeholder against cycles
		fields := md.Fields()
		var fs []Field
		for i := 0; i < fields.Len(); i++ {
			fd := fields.Get(i)
			since, _ := proto.GetExtension(fd.Options(), tandempb.E_Since).(string)
			f := Field{Number: int32(fd.Number()), Name: string(fd.Name()), Type: typeOf(fd), Cardinality: cardinality(fd), Since: since}
			if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() {
				f.Oneof = string(od.Name())
			}
			fs = append(fs, f)
			ed := fd.Enum()
			if fd.IsMap() {
				ed = fd.MapValue().Enum()
			}
			if ed != nil {
				visitEnum(ed)
			}
			if fd.IsMap() {
				if m := fd.MapValue().Message(); m != nil {
					visit(m)
				}
			} else if m := fd.Message(); m != nil {
				visit(m)
			}
		}
		sort.Slice(fs, func(i, j int) bool { return fs[i].Number < fs[j].Number })
		s.Messages[name] = Message{Fingerprint: hash(fs), Fields: fs}
		s.reserved[name] = md.ReservedRanges()
	}
	methods := sd.Methods()
	for i := 0; i < methods.Len(); i++ {
		md := methods.Get(i)
		since, _ := proto.GetExtension(md.Options(), tandempb.E_MethodSince).(string)
		s.Methods[string(md.Name())] = Method{Input: string(md.Input().FullName()), Output: string(md.Output().FullName()), Since: since}
		visit(md.Input())
		visit(md.Output())
	}
	for _, md := range extra {
		visit(md)
	}
	return s, nil
}

func typeOf(fd protoreflect.FieldDescriptor) string {
	if fd.IsMap() {
		return "map<" + typeOf(fd.MapKey()) + "," + typeOf(fd.MapValue()) + ">"
	}
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return fd.Kind().String() + " " + string(fd.Message().FullName())
	case protoreflect.EnumKind:
		return "enum " + string(fd.Enum().FullName())
	}
	return fd.Kind().String()
}

func cardinality(fd protoreflect.FieldDescriptor) string {
	switch {
	case fd.IsMap():
		return "map"
	case fd.IsList():
		return "repeated"
	case fd.Cardinality() == protoreflect.Required:
		return "required"
	case fd.HasPresence() && fd.Message() == nil && fd.ContainingOneof() == nil:
		return "optional"
	}
	return "singular"
}

func hash(fs []Field) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "%d %s %s %s %s", f.Number, f.Name, f.Type, f.Cardinality, f.Since)
		if f.Oneof != "" {
			// Only when set, so fingerprints recorded before oneofs counted
			// still match for messages without one.
			fmt.Fprintf(&b, " oneof %s", f.Oneof)
		}
		b.WriteByte('\n')
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:8])
}

func hashEnum(vs []EnumValue) string {
	var b strings.Builder
	for _, v := range vs {
		fmt.Fprintf(&b, "%d %s %s\n", v.Number, v.Name, v.Since)
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:8])
}

// Check compares the live snapshot with the recorded file.
func Check(cur Snapshot, f File) []Problem {
	v, err := services.ParseVersion(cur.Version)
	if err != nil {
		return []Problem{{Kind: NotRecorded, Subject: "version", Detail: err.Error()}}
	}
	var out []Problem
	var latest *Snapshot
	for i := range f.Versions {
		rv, err := services.ParseVersion(f.Versions[i].Version)
		if err != nil {
			out = append(out, Problem{Kind: NotRecorded, Subject: "file", Detail: err.Error()})
			continue
		}
		if rv == v {
			return append(out, sameVersion(cur, f.Versions[i])...)
		}
		if v.Less(rv) {
			out = append(out, Problem{Kind: VersionBackwards, Subject: "(tandem.version)",
				Detail: fmt.Sprintf("%s is older than the recorded %s", v, rv)})
		}
		latest = &f.Versions[i]
	}
	// A new version: it must keep the wire with every recorded version,
	// keep what every recorded version of its major has, and its new fields
	// must say they are new.
	for i := range f.Versions {
		out = append(out, wire(cur, f.Versions[i], v)...)
	}
	out = append(out, removals(cur, f, v)...)
	if latest != nil {
		out = append(out, sinceCheck(cur, *latest, v)...)
	}
	return append(out, Problem{Kind: NotRecorded, Subject: "(tandem.version) " + cur.Version,
		Detail: "record it by running the test with -update and commit the file"})
}

func sameVersion(cur, rec Snapshot) []Problem {
	var out []Problem
	bump := fmt.Sprintf("the API is still at %s: bump (tandem.version) and mark what changed with (tandem.since)", cur.Version)
	for _, name := range sortedKeys(cur.Messages) {
		r, ok := rec.Messages[name]
		switch {
		case !ok:
			out = append(out, Problem{ChangedWithoutBump, name, "new message; " + bump})
		case r.Fingerprint != cur.Messages[name].Fingerprint:
			out = append(out, Problem{ChangedWithoutBump, name, fmt.Sprintf("fingerprint %s, recorded %s (%s); %s",
				cur.Messages[name].Fingerprint, r.Fingerprint, diff(r.Fields, cur.Messages[name].Fields), bump)})
		}
	}
	for _, name := range sortedKeys(rec.Messages) {
		if _, ok := cur.Messages[name]; !ok {
			out = append(out, Problem{ChangedWithoutBump, name, "message no longer used; " + bump})
		}
	}
	for _, name := range sortedKeys(cur.Enums) {
		r, ok := rec.Enums[name]
		switch {
		case !ok:
			out = append(out, Problem{ChangedWithoutBump, "enum " + name, "new enum; " + bump})
		case r.Fingerprint != cur.Enums[name].Fingerprint:
			out = append(out, Problem{ChangedWithoutBump, "enum " + name, fmt.Sprintf("fingerprint %s, recorded %s (%s); %s",
				cur.Enums[name].Fingerprint, r.Fingerprint, diff(r.Values, cur.Enums[name].Values), bump)})
		}
	}
	for _, name := range sortedKeys(rec.Enums) {
		if _, ok := cur.Enums[name]; !ok {
			out = append(out, Problem{ChangedWithoutBump, "enum " + name, "enum no longer used; " + bump})
		}
	}
	for _, name := range sortedKeys(cur.Methods) {
		if r, ok := rec.Methods[name]; !ok || r != cur.Methods[name] {
			out = append(out, Problem{ChangedWithoutBump, "method " + name, bump})
		}
	}
	for _, name := range sortedKeys(rec.Methods) {
		if _, ok := cur.Methods[name]; !ok {
			out = append(out, Problem{ChangedWithoutBump, "method " + name, "removed; " + bump})
		}
	}
	return out
}

// wire checks that cur (at v) reads rec's messages as rec wrote them. A
// field or enum value removed since a version of v's major is a problem of
// its own (removals); one removed since an older major needs its number
// reserved.
func wire(cur, rec Snapshot, v services.Version) []Problem {
	var out []Problem
	rv, _ := services.ParseVersion(rec.Version)
	olderMajor := rv.Major < v.Major
	for _, name := range sortedKeys(rec.Messages) {
		cm, ok := cur.Messages[name]
		if !ok {
			continue // no longer used by the API: nothing decodes it as this message
		}
		for _, of := range rec.Messages[name].Fields {
			nf, found := findField(cm.Fields, of.Number)
			subj := fmt.Sprintf("%s field %d", name, of.Number)
			switch {
			case !found && olderMajor && !cur.reserved[name].Has(protoreflect.FieldNumber(of.Number)):
				out = append(out, Problem{WireBreak, subj, fmt.Sprintf("%q (%s) was removed without reserving its number, as recorded in %s; add `reserved %d;`",
					of.Name, of.Type, rec.Version, of.Number)})
			case found && (nf.Type != of.Type || nf.Cardinality != of.Cardinality):
				out = append(out, Problem{WireBreak, subj, fmt.Sprintf("was %s %s %q in %s, now %s %s %q; give the new field a new number and reserve %d",
					of.Cardinality, of.Type, of.Name, rec.Version, nf.Cardinality, nf.Type, nf.Name, of.Number)})
			case found && nf.Oneof != of.Oneof:
				// Setting another member of a oneof clears this one, so a
				// peer on either side of the move may lose a value the
				// other kept.
				out = append(out, Problem{WireBreak, subj, fmt.Sprintf("%q moved from %s to %s since %s; a field cannot move into or out of a oneof, add a new field instead",
					nf.Name, oneofName(of.Oneof), oneofName(nf.Oneof), rec.Version)})
			}
		}
	}
	for _, name := range sortedKeys(rec.Enums) {
		ce, ok := cur.Enums[name]
		if !ok {
			continue
		}
		for _, ov := range rec.Enums[name].Values {
			subj := fmt.Sprintf("enum %s value %s", name, ov.Name)
			_, sameNumber := findValue(ce.Values, ov.Number)
			if !sameNumber && olderMajor && !cur.enumReserved[name].Has(protoreflect.EnumNumber(ov.Number)) {
				out = append(out, Problem{WireBreak, subj, fmt.Sprintf("number %d was removed without reserving it, as recorded in %s; add `reserved %d;` to the enum",
					ov.Number, rec.Version, ov.Number)})
			}
			for _, nv := range ce.Values {
				if nv.Name == ov.Name && nv.Number != ov.Number {
					out = append(out, Problem{WireBreak, subj, fmt.Sprintf("renumbered from %d (in %s) to %d; a peer on either side reads the other's number as unknown, keep %d",
						ov.Number, rec.Version, nv.Number, ov.Number)})
				}
			}
		}
	}
	for _, name := range sortedKeys(rec.Methods) {
		cm, ok := cur.Methods[name]
		switch {
		case !ok:
			out = append(out, Problem{WireBreak, "method " + name, fmt.Sprintf("removed, but %s has it; removing a method needs a new major version", rec.Version)})
		case cm.Input != rec.Methods[name].Input || cm.Output != rec.Methods[name].Output:
			out = append(out, Problem{WireBreak, "method " + name, fmt.Sprintf("types changed from %s -> %s (in %s)", rec.Methods[name].Input, rec.Methods[name].Output, rec.Version)})
		}
	}
	return out
}

// removals reports each field and enum value that a recorded version of
// v's major has and cur lacks, reserved or not, once, naming the newest
// such version. Within a major every version talks to every other: a
// client at that version may set the field (or send the value), and a
// server at v would drop it as unknown, the silent loss versions exist to
// prevent. So, like removing a method, it needs a new major.
func removals(cur Snapshot, f File, v services.Version) []Problem {
	var out []Problem
	seen := map[string]bool{}
	next := fmt.Sprintf("%d.0", v.Major+1)
	for i := len(f.Versions) - 1; i >= 0; i-- {
		rec := f.Versions[i]
		rv, err := services.ParseVersion(rec.Version)
		if err != nil || rv.Major != v.Major || !rv.Less(v) {
			continue
		}
		for _, name := range sortedKeys(rec.Messages) {
			cm, ok := cur.Messages[name]
			if !ok {
				continue // no longer used by the API: a removed or retyped method says so
			}
			for _, of := range rec.Messages[name].Fields {
				key := fmt.Sprintf("%s %d", name, of.Number)
				if _, found := findField(cm.Fields, of.Number); found || seen[key] {
					continue
				}
				seen[key] = true
				reserve := ""
				if !cur.reserved[name].Has(protoreflect.FieldNumber(of.Number)) {
					reserve = fmt.Sprintf(" with `reserved %d;`", of.Number)
				}
				out = append(out, Problem{WireBreak, fmt.Sprintf("%s field %d", name, of.Number), fmt.Sprintf(
					"%q (%s, %s) was removed, but %s has it: a %s client that sets it would reach a %s server that drops it unread; removing a field, reserved or not, needs a new major version: keep the field (unused) or move the API to %s%s",
					of.Name, of.Type, sinceText(of.Since), rec.Version, rec.Version, v, next, reserve)})
			}
		}
		for _, name := range sortedKeys(rec.Enums) {
			ce, ok := cur.Enums[name]
			if !ok {
				continue
			}
			for _, ov := range rec.Enums[name].Values {
				key := fmt.Sprintf("enum %s %d", name, ov.Number)
				if _, found := findValue(ce.Values, ov.Number); found || seen[key] {
					continue
				}
				seen[key] = true
				reserve := ""
				if !cur.enumReserved[name].Has(protoreflect.EnumNumber(ov.Number)) {
					reserve = fmt.Sprintf(" with `reserved %d;` in the enum", ov.Number)
				}
				out = append(out, Problem{WireBreak, fmt.Sprintf("enum %s value %s", name, ov.Name), fmt.Sprintf(
					"number %d (%s) was removed, but %s has it: a %s peer that sends it would reach a %s one with no name for it; removing an enum value, reserved or not, needs a new major version: keep the value (unused) or move the API to %s%s",
					ov.Number, sinceText(ov.Since), rec.Version, rec.Version, v, next, reserve)})
			}
		}
	}
	return out
}

func sinceText(since string) string {
	if since == "" {
		return "there from the first version"
	}
	return "since " + since
}

// sinceCheck: a field or method that the latest recorded version lacks must
// carry a since after that version; one it has keeps its since.
func sinceCheck(cur, latest Snapshot, v services.Version) []Problem {
	lv, _ := services.ParseVersion(latest.Version)
	var out []Problem
	check := func(subj, since string, existed bool, oldSince string) {
		if existed {
			if since != oldSince {
				out = append(out, Problem{BadSince, subj, fmt.Sprintf("since was %q in %s, now %q; history does not change", oldSince, latest.Version, since)})
			}
			return
		}
		sv, err := services.ParseVersion(since)
		if err != nil || !lv.Less(sv) || v.Less(sv) {
			out = append(out, Problem{BadSince, subj, fmt.Sprintf("new since %s but its (tandem.since) is %q; set it to %s", latest.Version, since, v)})
		}
	}
	for _, name := range sortedKeys(cur.Messages) {
		rm, known := latest.Messages[name]
		if !known {
			continue // a new message: its fields are as new as it is
		}
		for _, f := range cur.Messages[name].Fields {
			of, existed := findField(rm.Fields, f.Number)
			check(name+"."+f.Name, f.Since, existed, of.Since)
		}
	}
	for _, name := range sortedKeys(cur.Enums) {
		re, known := latest.Enums[name]
		if !known {
			continue // a new enum: its values are as new as it is
		}
		for _, ev := range cur.Enums[name].Values {
			ov, existed := findValue(re.Values, ev.Number)
			check("enum "+name+" value "+ev.Name, ev.Since, existed, ov.Since)
		}
	}
	for _, name := range sortedKeys(cur.Methods) {
		om, existed := latest.Methods[name]
		check("method "+name, cur.Methods[name].Since, existed, om.Since)
	}
	return out
}

func findValue(vs []EnumValue, n int32) (EnumValue, bool) {
	for _, v := range vs {
		if v.Number == n {
			return v, true
		}
	}
	return EnumValue{}, false
}

func oneofName(o string) string {
	if o == "" {
		return "no oneof"
	}
	return "oneof " + o
}

func findField(fs []Field, n int32) (Field, bool) {
	i, ok := slices.BinarySearchFunc(fs, n, func(f Field, n int32) int { return int(f.Number - n) })
	if !ok {
		return Field{}, false
	}
	return fs[i], true
}

// numbered is a field or an enum value: what a diff lists by number.
type numbered interface {
	comparable
	number() int32
	label() string
}

func (f Field) number() int32     { return f.Number }
func (f Field) label() string     { return f.Name }
func (v EnumValue) number() int32 { return v.Number }
func (v EnumValue) label() string { return v.Name }

// diff lists what was added (+), changed (~) and removed (-), by number.
func diff[T numbered](old, cur []T) string {
	find := func(xs []T, n int32) (T, bool) {
		i := slices.IndexFunc(xs, func(x T) bool { return x.number() == n })
		if i < 0 {
			var zero T
			return zero, false
		}
		return xs[i], true
	}
	var parts []string
	for _, x := range cur {
		if o, ok := find(old, x.number()); !ok {
			parts = append(parts, fmt.Sprintf("+%d %s", x.number(), x.label()))
		} else if o != x {
			parts = append(parts, fmt.Sprintf("~%d %s", x.number(), x.label()))
		}
	}
	for _, x := range old {
		if _, ok := find(cur, x.number()); !ok {
			parts = append(parts, fmt.Sprintf("-%d %s", x.number(), x.label()))
		}
	}
	return strings.Join(parts, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Record returns f with cur recorded, refusing when Check finds anything
// but the version being unrecorded.
func Record(cur Snapshot, f File, api string) (File, error) {
	var blocking []string
	for _, p := range Check(cur, f) {
		if p.Kind != NotRecorded {
			blocking = append(blocking, p.String())
		}
	}
	if len(blocking) > 0 {
		return f, fmt.Errorf("%w: not recording %s:\n  %s", ErrProblems, cur.Version, strings.Join(blocking, "\n  "))
	}
	for _, s := range f.Versions {
		if s.Version == cur.Version {
			return f, nil
		}
	}
	f.API = api
	f.Versions = append(slices.Clone(f.Versions), cur)
	return f, nil
}

// Load reads a file; a missing file is an empty record.
func Load(path string) (File, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return File{}, nil
	}
	if err != nil {
		return File{}, err
	}
	var f File
	if err := json.Unmarshal(b, &f); err != nil {
		return File{}, fmt.Errorf("%w: %s: %v", ErrInvalid, path, err)
	}
	return f, nil
}

// Save writes f as indented JSON.
func Save(path string, f File) error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Verify is the test: it checks sd against the file at path, or with
// update records the current version there first.
func Verify(t testing.TB, path string, update bool, sd protoreflect.ServiceDescriptor, extra ...protoreflect.MessageDescriptor) {
	t.Helper()
	cur, err := Compute(sd, extra...)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if update {
		nf, err := Record(cur, f, string(sd.FullName()))
		if err != nil {
			t.Fatal(err)
		}
		if err := Save(path, nf); err != nil {
			t.Fatal(err)
		}
		f = nf
	}
	for _, p := range Check(cur, f) {
		t.Error(p.String())
	}
}
