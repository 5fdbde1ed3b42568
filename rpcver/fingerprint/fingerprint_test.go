package fingerprint_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/tandem-go/tandem/rpcver/fingerprint"
	"github.com/tandem-go/tandem/rpcver/tandempb"
)

type T = descriptorpb.FieldDescriptorProto_Type

const (
	str   = descriptorpb.FieldDescriptorProto_TYPE_STRING
	i64   = descriptorpb.FieldDescriptorProto_TYPE_INT64
	msgT  = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE
	enumT = descriptorpb.FieldDescriptorProto_TYPE_ENUM
	one   = descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL
	many  = descriptorpb.FieldDescriptorProto_LABEL_REPEATED
	noVer = ""
)

type field struct {
	name  string
	num   int32
	typ   T
	label descriptorpb.FieldDescriptorProto_Label
	since string
	oneof string // the oneof it belongs to, if any
}

// value is a value of enum Color.
type value struct {
	name  string
	num   int32
	since string
}

// api describes a small API: service Svc { rpc Get(Req) returns (Thing) },
// with Req { Thing thing = 1; } and Thing carrying the fields under test.
type api struct {
	version  string
	thing    []field
	reserved []int32
	methods  []string // extra methods, Get(Req) returns (Thing); since "1.1"
	// enum Color, which fields of type enumT hold.
	color         []value
	colorReserved []int32
}

// build turns the description into real descriptors, with the tandem
// options set exactly as protoc would from a .proto file.
func build(t *testing.T, a api) protoreflect.ServiceDescriptor {
	t.Helper()
	thing := &descriptorpb.DescriptorProto{Name: proto.String("Thing")}
	for _, f := range a.thing {
		fd := &descriptorpb.FieldDescriptorProto{Name: proto.String(f.name), Number: proto.Int32(f.num), Type: f.typ.Enum(), Label: f.label.Enum(), JsonName: proto.String(f.name)}
		if f.since != "" {
			fd.Options = &descriptorpb.FieldOptions{}
			proto.SetExtension(fd.Options, tandempb.E_Since, f.since)
		}
		if f.typ == enumT {
			fd.TypeName = proto.String(".fp.test.Color")
		}
		if f.oneof != "" {
			i := slices.IndexFunc(thing.OneofDecl, func(o *descriptorpb.OneofDescriptorProto) bool { return o.GetName() == f.oneof })
			if i < 0 {
				i = len(thing.OneofDecl)
				thing.OneofDecl = append(thing.OneofDecl, &descriptorpb.OneofDescriptorProto{Name: proto.String(f.oneof)})
			}
			fd.OneofIndex = proto.Int32(int32(i))
		}
		thing.Field = append(thing.Field, fd)
	}
	var enums []*descriptorpb.EnumDescriptorProto
	if a.color != nil {
		color := &descriptorpb.EnumDescriptorProto{Name: proto.String("Color")}
		for _, v := range a.color {
			vd := &descriptorpb.EnumValueDescriptorProto{Name: proto.String(v.name), Number: proto.Int32(v.num)}
			if v.since != "" {
				vd.Options = &descriptorpb.EnumValueOptions{}
				proto.SetExtension(vd.Options, tandempb.E_EnumSince, v.since)
			}
			color.Value = append(color.Value, vd)
		}
		for _, n := range a.colorReserved {
			color.ReservedRange = append(color.ReservedRange, &descriptorpb.EnumDescriptorProto_EnumReservedRange{Start: proto.Int32(n), End: proto.Int32(n)})
		}
		enums = append(enums, color)
	}
	for _, n := range a.reserved {
		thing.ReservedRange = append(thing.ReservedRange, &descriptorpb.DescriptorProto_ReservedRange{Start: proto.Int32(n), End: proto.Int32(n + 1)})
	}
	req := &descriptorpb.DescriptorProto{Name: proto.String("Req"), Field: []*descriptorpb.FieldDescriptorProto{{
		Name: proto.String("thing"), Number: proto.Int32(1), Type: msgT.Enum(), Label: one.Enum(), TypeName: proto.String(".fp.test.Thing"), JsonName: proto.String("thing")}}}
	svcOpts := &descriptorpb.ServiceOptions{}
	proto.SetExtension(svcOpts, tandempb.E_Version, a.version)
	svc := &descriptorpb.ServiceDescriptorProto{Name: proto.String("Svc"), Options: svcOpts}
	for _, m := range append([]string{"Get"}, a.methods...) {
		md := &descriptorpb.MethodDescriptorProto{Name: proto.String(m), InputType: proto.String(".fp.test.Req"), OutputType: proto.String(".fp.test.Thing")}
		if m != "Get" {
			md.Options = &descriptorpb.MethodOptions{}
			proto.SetExtension(md.Options, tandempb.E_MethodSince, "1.1")
		}
		svc.Method = append(svc.Method, md)
	}
	fdp := &descriptorpb.FileDescriptorProto{
		Name: proto.String("fp/test.proto"), Package: proto.String("fp.test"), Syntax: proto.String("proto3"),
		Dependency:  []string{"tandem/options.proto"},
		MessageType: []*descriptorpb.DescriptorProto{thing, req},
		EnumType:    enums,
		Service:     []*descriptorpb.ServiceDescriptorProto{svc},
	}
	fd, err := protodesc.NewFile(fdp, protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	return fd.Services().Get(0)
}

var base = api{version: "1.0", thing: []field{{"id", 1, str, one, noVer, ""}, {"name", 2, str, one, noVer, ""}}}

func with(a api, change func(*api)) api {
	a.thing = slices.Clone(a.thing)
	a.reserved = slices.Clone(a.reserved)
	a.methods = slices.Clone(a.methods)
	a.color = slices.Clone(a.color)
	a.colorReserved = slices.Clone(a.colorReserved)
	change(&a)
	return a
}

func record(t *testing.T, f fingerprint.File, a api) fingerprint.File {
	t.Helper()
	s, err := fingerprint.Compute(build(t, a))
	if err != nil {
		t.Fatal(err)
	}
	f, err = fingerprint.Record(s, f, "fp.test.Svc")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func kinds(ps []fingerprint.Problem) []fingerprint.Kind {
	var out []fingerprint.Kind
	for _, p := range ps {
		if !slices.Contains(out, p.Kind) {
			out = append(out, p.Kind)
		}
	}
	slices.Sort(out)
	return out
}

// TestCheck proves the checker fails when it should, on descriptors changed
// on purpose, and passes when it should.
func TestCheck(t *testing.T) {
	withMethod := with(base, func(a *api) { a.methods = []string{"List"}; a.version = "1.1" })
	colored := with(base, func(a *api) {
		a.thing = append(a.thing, field{name: "color", num: 3, typ: enumT, label: one})
		a.color = []value{{"RED", 0, noVer}, {"GREEN", 1, noVer}}
	})
	withNote := with(base, func(a *api) { a.version = "1.1"; a.thing = append(a.thing, field{"note", 3, str, one, "1.1", ""}) })
	bumped := func(a api, change func(*api)) api {
		return with(a, func(a *api) { a.version = "1.1"; change(a) })
	}
	tests := []struct {
		name    string
		history []api // recorded versions, oldest first
		now     api
		want    []fingerprint.Kind
	}{
		{"unchanged", []api{base}, base, nil},
		{"field added without a bump", []api{base}, with(base, func(a *api) { a.thing = append(a.thing, field{"qty", 3, i64, one, noVer, ""}) }),
			[]fingerprint.Kind{fingerprint.ChangedWithoutBump}},
		{"field renamed without a bump", []api{base}, with(base, func(a *api) { a.thing[1].name = "title" }),
			[]fingerprint.Kind{fingerprint.ChangedWithoutBump}},
		{"since edited without a bump", []api{base}, with(base, func(a *api) { a.thing[1].since = "1.0" }),
			[]fingerprint.Kind{fingerprint.ChangedWithoutBump}},
		{"method added without a bump", []api{base}, with(base, func(a *api) { a.methods = []string{"List"} }),
			[]fingerprint.Kind{fingerprint.ChangedWithoutBump}},
		{"field added with a bump", []api{base}, with(base, func(a *api) {
			a.version = "1.1"
			a.thing = append(a.thing, field{"qty", 3, i64, one, "1.1", ""})
		}), []fingerprint.Kind{fingerprint.NotRecorded}},
		{"new field without since", []api{base}, with(base, func(a *api) {
			a.version = "1.1"
			a.thing = append(a.thing, field{"qty", 3, i64, one, noVer, ""})
		}), []fingerprint.Kind{fingerprint.BadSince, fingerprint.NotRecorded}},
		{"new field with an old since", []api{base}, with(base, func(a *api) {
			a.version = "1.1"
			a.thing = append(a.thing, field{"qty", 3, i64, one, "1.0", ""})
		}), []fingerprint.Kind{fingerprint.BadSince, fingerprint.NotRecorded}},
		{"field number reused with another type", []api{base}, with(base, func(a *api) {
			a.version = "1.1"
			a.thing[1] = field{"count", 2, i64, one, "1.1", ""}
		}), []fingerprint.Kind{fingerprint.WireBreak, fingerprint.BadSince, fingerprint.NotRecorded}},
		{"field turned repeated", []api{base}, with(base, func(a *api) {
			a.version = "1.1"
			a.thing[1].label = many
		}), []fingerprint.Kind{fingerprint.WireBreak, fingerprint.NotRecorded}},
		{"field removed without reserving", []api{base}, with(base, func(a *api) {
			a.version = "1.1"
			a.thing = a.thing[:1]
		}), []fingerprint.Kind{fingerprint.WireBreak, fingerprint.NotRecorded}},
		{"field removed and reserved", []api{base}, with(base, func(a *api) {
			a.version = "1.1"
			a.thing = a.thing[:1]
			a.reserved = []int32{2}
		}), []fingerprint.Kind{fingerprint.WireBreak, fingerprint.NotRecorded}},
		{"field of 1.1 removed and reserved in 1.3", []api{base, withNote, with(withNote, func(a *api) { a.version = "1.2" })}, with(base, func(a *api) {
			a.version = "1.3"
			a.reserved = []int32{3}
		}), []fingerprint.Kind{fingerprint.WireBreak, fingerprint.NotRecorded}},
		{"field removed and reserved in a new major", []api{base}, with(base, func(a *api) {
			a.version = "2.0"
			a.thing = a.thing[:1]
			a.reserved = []int32{2}
		}), []fingerprint.Kind{fingerprint.NotRecorded}},
		{"field removed without reserving in a new major", []api{base}, with(base, func(a *api) {
			a.version = "2.0"
			a.thing = a.thing[:1]
		}), []fingerprint.Kind{fingerprint.WireBreak, fingerprint.NotRecorded}},
		{"reserved number reused two versions later", []api{base, with(base, func(a *api) {
			a.version = "2.0"
			a.thing = a.thing[:1]
			a.reserved = []int32{2}
		})}, with(base, func(a *api) {
			a.version = "2.1"
			a.thing = []field{{"id", 1, str, one, noVer, ""}, {"count", 2, i64, one, "2.1", ""}}
		}), []fingerprint.Kind{fingerprint.WireBreak, fingerprint.NotRecorded}},
		{"method removed", []api{withMethod}, with(withMethod, func(a *api) { a.version = "1.2"; a.methods = nil }),
			[]fingerprint.Kind{fingerprint.WireBreak, fingerprint.NotRecorded}},
		{"method added with since", []api{base}, withMethod, []fingerprint.Kind{fingerprint.NotRecorded}},
		{"enum value added without a bump", []api{colored}, with(colored, func(a *api) { a.color = append(a.color, value{"BLUE", 2, noVer}) }),
			[]fingerprint.Kind{fingerprint.ChangedWithoutBump}},
		{"enum value renamed without a bump", []api{colored}, with(colored, func(a *api) { a.color[1].name = "LIME" }),
			[]fingerprint.Kind{fingerprint.ChangedWithoutBump}},
		{"enum value added with a bump and its since", []api{colored}, bumped(colored, func(a *api) { a.color = append(a.color, value{"BLUE", 2, "1.1"}) }),
			[]fingerprint.Kind{fingerprint.NotRecorded}},
		{"enum value added without its since", []api{colored}, bumped(colored, func(a *api) { a.color = append(a.color, value{"BLUE", 2, noVer}) }),
			[]fingerprint.Kind{fingerprint.BadSince, fingerprint.NotRecorded}},
		{"enum value removed without reserving", []api{colored}, bumped(colored, func(a *api) { a.color = a.color[:1] }),
			[]fingerprint.Kind{fingerprint.WireBreak, fingerprint.NotRecorded}},
		{"enum value removed and reserved", []api{colored}, bumped(colored, func(a *api) { a.color = a.color[:1]; a.colorReserved = []int32{1} }),
			[]fingerprint.Kind{fingerprint.WireBreak, fingerprint.NotRecorded}},
		{"enum value removed and reserved in a new major", []api{colored}, with(colored, func(a *api) {
			a.version = "2.0"
			a.color = a.color[:1]
			a.colorReserved = []int32{1}
		}), []fingerprint.Kind{fingerprint.NotRecorded}},
		{"enum value renumbered", []api{colored}, bumped(colored, func(a *api) { a.color[1] = value{"GREEN", 5, "1.1"} }),
			[]fingerprint.Kind{fingerprint.WireBreak, fingerprint.NotRecorded}},
		{"enum value renumbered, old number reserved", []api{colored}, bumped(colored, func(a *api) {
			a.color[1] = value{"GREEN", 5, "1.1"}
			a.colorReserved = []int32{1}
		}), []fingerprint.Kind{fingerprint.WireBreak, fingerprint.NotRecorded}},
		{"field moved into a oneof without a bump", []api{base}, with(base, func(a *api) { a.thing[1].oneof = "kind" }),
			[]fingerprint.Kind{fingerprint.ChangedWithoutBump}},
		{"field moved into a oneof", []api{base}, bumped(base, func(a *api) { a.thing[1].oneof = "kind" }),
			[]fingerprint.Kind{fingerprint.WireBreak, fingerprint.NotRecorded}},
		{"new field in a new oneof", []api{base}, bumped(base, func(a *api) {
			a.thing = append(a.thing, field{name: "qty", num: 3, typ: i64, label: one, since: "1.1", oneof: "kind"})
		}), []fingerprint.Kind{fingerprint.NotRecorded}},
		{"version went backwards", []api{with(base, func(a *api) { a.version = "1.1" })}, base,
			[]fingerprint.Kind{fingerprint.VersionBackwards, fingerprint.NotRecorded}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var f fingerprint.File
			for _, h := range tc.history {
				f = record(t, f, h)
			}
			cur, err := fingerprint.Compute(build(t, tc.now))
			if err != nil {
				t.Fatal(err)
			}
			ps := fingerprint.Check(cur, f)
			want := slices.Sorted(slices.Values(tc.want))
			if got := kinds(ps); !slices.Equal(got, want) {
				t.Fatalf("problems %v, want kinds %v", ps, tc.want)
			}
			// Record accepts exactly the changes whose only problem is
			// being unrecorded, and then the check is clean.
			nf, err := fingerprint.Record(cur, f, "fp.test.Svc")
			onlyUnrecorded := slices.Equal(tc.want, []fingerprint.Kind{fingerprint.NotRecorded})
			switch {
			case onlyUnrecorded && err != nil:
				t.Fatalf("record: %v", err)
			case onlyUnrecorded:
				if ps := fingerprint.Check(cur, nf); len(ps) != 0 {
					t.Fatalf("after recording: %v", ps)
				}
			case len(tc.want) > 0 && err == nil:
				t.Fatalf("recorded a change with problems %v", ps)
			}
		})
	}
}

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestProblemText: a problem tells the developer what to do: the removal
// problems name the field or value, the version that has it, and the
// next step. The texts are golden (testdata/removals.golden; -update
// rewrites it).
func TestProblemText(t *testing.T) {
	withNote := with(base, func(a *api) { a.version = "1.1"; a.thing = append(a.thing, field{"note", 3, str, one, "1.1", ""}) })
	colored := with(base, func(a *api) {
		a.version = "1.1"
		a.thing = append(a.thing, field{name: "color", num: 3, typ: enumT, label: one, since: "1.1"})
		a.color = []value{{"RED", 0, noVer}, {"GREEN", 1, noVer}, {"BLUE", 2, "1.1"}}
	})
	tests := []struct {
		name    string
		history []api
		now     api
	}{
		{"field removed without reserving", []api{base}, with(base, func(a *api) { a.version = "1.1"; a.thing = a.thing[:1] })},
		{"field of 1.1 removed and reserved in 1.3", []api{base, withNote, with(withNote, func(a *api) { a.version = "1.2" })},
			with(base, func(a *api) { a.version = "1.3"; a.reserved = []int32{3} })},
		{"field removed without reserving in 2.0", []api{base}, with(base, func(a *api) { a.version = "2.0"; a.thing = a.thing[:1] })},
		{"enum value of 1.1 removed and reserved in 1.2", []api{base, colored},
			with(colored, func(a *api) { a.version = "1.2"; a.color = a.color[:2]; a.colorReserved = []int32{2} })},
		{"enum value removed without reserving", []api{base, colored},
			with(colored, func(a *api) { a.version = "1.2"; a.color = []value{{"RED", 0, noVer}, {"BLUE", 2, "1.1"}} })},
	}
	var got strings.Builder
	for _, tc := range tests {
		var f fingerprint.File
		for _, h := range tc.history {
			f = record(t, f, h)
		}
		cur, err := fingerprint.Compute(build(t, tc.now))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&got, "== %s\n", tc.name)
		for _, p := range fingerprint.Check(cur, f) {
			if p.Kind != fingerprint.NotRecorded {
				fmt.Fprintf(&got, "%s\n", p)
			}
		}
	}
	path := filepath.Join("testdata", "removals.golden")
	if *updateGolden {
		if err := os.WriteFile(path, []byte(got.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./rpcver/fingerprint -run TestProblemText -update to write it)", err)
	}
	if got.String() != string(want) {
		t.Fatalf("problem texts differ from %s (rerun with -update if the change is meant):\ngot:\n%s\nwant:\n%s", path, got.String(), want)
	}
	for _, must := range []string{`"note" (string, since 1.1) was removed, but 1.2 has it`, "needs a new major version", "move the API to 2.0", "reserved 2;", `"name"`} {
		if !strings.Contains(got.String(), must) {
			t.Errorf("problem texts lack %q", must)
		}
	}
}

// TestVerify runs the update flow on a file: -update records, a plain run
// then passes, and a change without a bump then fails.
func TestVerify(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fingerprints.json")
	svc := build(t, base)
	fingerprint.Verify(t, path, true, svc)
	rec := &recorder{TB: t}
	fingerprint.Verify(rec, path, false, svc)
	if len(rec.errs) != 0 {
		t.Fatalf("clean run failed: %v", rec.errs)
	}
	rec = &recorder{TB: t}
	fingerprint.Verify(rec, path, false, build(t, with(base, func(a *api) { a.thing[0].typ = i64 })))
	if len(rec.errs) == 0 || !strings.Contains(rec.errs[0], string(fingerprint.ChangedWithoutBump)) {
		t.Fatalf("errors %v, want changed without a version bump", rec.errs)
	}
	// The refusal to record a wire break also reaches the test.
	rec = &recorder{TB: t}
	func() {
		defer func() { _ = recover() }()
		fingerprint.Verify(rec, path, true, build(t, with(base, func(a *api) { a.version = "1.1"; a.thing = a.thing[:1] })))
	}()
	if len(rec.errs) == 0 || !strings.Contains(rec.errs[0], "breaks the wire") {
		t.Fatalf("errors %v, want the update refused for a wire break", rec.errs)
	}
}

// recorder is a testing.TB that keeps failures instead of failing.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Error(args ...any) { r.errs = append(r.errs, fmt.Sprint(args...)) }
func (r *recorder) Fatal(args ...any) {
	r.errs = append(r.errs, fmt.Sprint(args...))
	panic("fatal")
}
func (r *recorder) Helper() {}
