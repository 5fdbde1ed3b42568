package rpcver_test

import (
	"errors"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/tandem-go/tandem/examples/inventory"
	pb "github.com/tandem-go/tandem/examples/inventory/inventorypb"
	"github.com/tandem-go/tandem/rpcver"
	"github.com/tandem-go/tandem/rpcver/tandempb"
	"github.com/tandem-go/tandem/services"
)

// svcSpec is a one-method service built from descriptorpb, to test how
// NewAPI reads (and refuses) tandem options.
type svcSpec struct {
	api, version, fieldSince, methodSince string
	streaming                             bool
}

func buildService(t *testing.T, s svcSpec) protoreflect.ServiceDescriptor {
	t.Helper()
	fopts := &descriptorpb.FieldOptions{}
	if s.fieldSince != "" {
		proto.SetExtension(fopts, tandempb.E_Since, s.fieldSince)
	}
	msg := &descriptorpb.DescriptorProto{Name: proto.String("M"), Field: []*descriptorpb.FieldDescriptorProto{{
		Name: proto.String("f"), Number: proto.Int32(1), JsonName: proto.String("f"), Options: fopts,
		Type:  descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum(),
		Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()}}}
	sopts := &descriptorpb.ServiceOptions{}
	if s.version != "" {
		proto.SetExtension(sopts, tandempb.E_Version, s.version)
	}
	if s.api != "" {
		proto.SetExtension(sopts, tandempb.E_Api, s.api)
	}
	mopts := &descriptorpb.MethodOptions{}
	if s.methodSince != "" {
		proto.SetExtension(mopts, tandempb.E_MethodSince, s.methodSince)
	}
	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name: proto.String("t/t.proto"), Package: proto.String("t"), Syntax: proto.String("proto3"),
		Dependency:  []string{"tandem/options.proto"},
		MessageType: []*descriptorpb.DescriptorProto{msg},
		Service: []*descriptorpb.ServiceDescriptorProto{{Name: proto.String("Svc"), Options: sopts, Method: []*descriptorpb.MethodDescriptorProto{{
			Name: proto.String("Do"), InputType: proto.String(".t.M"), OutputType: proto.String(".t.M"), Options: mopts,
			ClientStreaming: proto.Bool(s.streaming)}}}},
	}, protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	return fd.Services().Get(0)
}

func TestNewAPI(t *testing.T) {
	a := inventory.API
	if a.Name() != "inventory" || a.Current() != v1_2 || a.Oldest() != v1_0 {
		t.Fatalf("api %s %s-%s", a.Name(), a.Oldest(), a.Current())
	}
	if got := a.Methods(); !slices.Equal(got, []string{"GetItem", "PutItem", "RenameItem"}) {
		t.Fatalf("methods %v", got)
	}
	if got := inventoryAt(t, v1_1).Methods(); !slices.Equal(got, []string{"GetItem", "PutItem"}) {
		t.Fatalf("1.1 methods %v", got)
	}
	if s, ok := a.MethodSince("RenameItem"); !ok || s != v1_2 {
		t.Fatalf("RenameItem since %s", s)
	}
	if r := a.Registration(); r != (services.API{Name: "inventory", Current: v1_2, Oldest: v1_0}) {
		t.Fatalf("registration %+v", r)
	}
	ok := buildService(t, svcSpec{version: "2.3", fieldSince: "2.1", methodSince: "2.2"})
	b, err := rpcver.NewAPI(ok)
	if err != nil {
		t.Fatal(err)
	}
	if b.Name() != "svc" || b.Oldest() != (rpcver.Version{Major: 2}) {
		t.Fatalf("defaults: name %q oldest %s", b.Name(), b.Oldest())
	}
}

func TestNewAPIErrors(t *testing.T) {
	sd := inventory.API.Service()
	tests := []struct {
		name string
		sd   protoreflect.ServiceDescriptor
		opts []rpcver.Option
	}{
		{"no version", buildService(t, svcSpec{}), nil},
		{"version not major.minor", buildService(t, svcSpec{version: "1"}), nil},
		{"api name with a dot", buildService(t, svcSpec{version: "1.0", api: "a.b"}), nil},
		{"field since after the version", buildService(t, svcSpec{version: "1.2", fieldSince: "1.3"}), nil},
		{"field since in another major", buildService(t, svcSpec{version: "2.0", fieldSince: "1.3"}), nil},
		{"bad field since", buildService(t, svcSpec{version: "1.2", fieldSince: "one"}), nil},
		{"method since after the version", buildService(t, svcSpec{version: "1.2", methodSince: "1.4"}), nil},
		{"streaming method", buildService(t, svcSpec{version: "1.0", streaming: true}), nil},
		{"current in another major", sd, []rpcver.Option{rpcver.WithCurrent(rpcver.Version{Major: 2})}},
		{"oldest after current", sd, []rpcver.Option{rpcver.WithOldest(v1_3)}},
		{"backport of an unknown field", sd, []rpcver.Option{rpcver.Backport("nope", func(*pb.Item, rpcver.Version) error { return nil })}},
		{"backport of a field with no since", sd, []rpcver.Option{rpcver.Backport("name", func(*pb.Item, rpcver.Version) error { return nil })}},
		{"two backports of one field", sd, []rpcver.Option{rpcver.Backport("tags", func(*pb.Item, rpcver.Version) error { return nil })}},
		{"upgrade of a message outside the API", sd, []rpcver.Option{rpcver.Upgrade("1.1", func(*descriptorpb.FileOptions) error { return nil })}},
		{"upgrade to a bad version", sd, []rpcver.Option{rpcver.Upgrade("1.x", func(*pb.Item) error { return nil })}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.sd == sd {
				_, err = inventory.NewAPI(tc.opts...)
			} else {
				_, err = rpcver.NewAPI(tc.sd, tc.opts...)
			}
			var de *rpcver.DefinitionError
			if !errors.Is(err, rpcver.ErrInvalid) || !errors.As(err, &de) || de.Reason == "" {
				t.Fatalf("err = %v, want a DefinitionError", err)
			}
		})
	}
}

// TestBackportRules: field by field, newest first, nothing dropped.
func TestBackportRules(t *testing.T) {
	a := inventory.API
	tests := []struct {
		name    string
		msg     proto.Message
		to      rpcver.Version
		strict  bool
		want    proto.Message
		wantErr string // the field named by CannotBackportError
	}{
		{"unset newer fields are fine", &pb.PutItemRequest{Item: &pb.Item{Id: "a"}}, v1_0, true, &pb.PutItemRequest{Item: &pb.Item{Id: "a"}}, ""},
		{"a step moves the value", &pb.PutItemRequest{Item: &pb.Item{PriceCents: 300}}, v1_0, true, &pb.PutItemRequest{Item: &pb.Item{Price: 3}}, ""},
		{"a step refuses the value", &pb.PutItemRequest{Item: &pb.Item{PriceCents: 301}}, v1_0, true, nil, "inventory.v1.Item.price_cents"},
		{"no step", &pb.PutItemRequest{CreateOnly: true}, v1_1, true, nil, "inventory.v1.PutItemRequest.create_only"},
		{"chained: a step's output is itself backported", &pb.PutItemRequest{Item: &pb.Item{Tags: []string{"x"}}}, v1_0, true, nil, "inventory.v1.Item.labels"},
		{"lenient (responses): no step leaves the field", &pb.GetItemResponse{Item: &pb.Item{Labels: map[string]string{"k": "v"}, Tags: []string{"x"}}}, v1_0, false,
			&pb.GetItemResponse{Item: &pb.Item{Labels: map[string]string{"k": "v", "tag/x": ""}}}, ""},
		{"at the current version nothing changes", &pb.PutItemRequest{Item: &pb.Item{Tags: []string{"x"}}, CreateOnly: true}, v1_2, true,
			&pb.PutItemRequest{Item: &pb.Item{Tags: []string{"x"}}, CreateOnly: true}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			needs := rpcver.NeedsBackport(a, tc.msg, tc.to)
			before := proto.Clone(tc.msg)
			err := rpcver.BackportMessage(a, tc.msg, tc.to, tc.strict)
			if needs == proto.Equal(before, tc.msg) && err == nil && tc.strict {
				t.Errorf("NeedsBackport = %v but the backport changed: %v", needs, !proto.Equal(before, tc.msg))
			}
			if tc.wantErr != "" {
				var cb *rpcver.CannotBackportError
				if !errors.As(err, &cb) || cb.Field != tc.wantErr || cb.Target != tc.to {
					t.Fatalf("err = %v, want CannotBackportError on %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(tc.msg, tc.want) {
				t.Fatalf("got %v, want %v", tc.msg, tc.want)
			}
		})
	}
}

// TestUpgradeRules: steps after the source version run, oldest first, and
// a round trip through an older version restores the message.
func TestUpgradeRules(t *testing.T) {
	a := inventory.API
	m := &pb.PutItemRequest{Item: &pb.Item{Id: "a", Price: 3, Labels: map[string]string{"tag/x": "", "tag/a": "", "k": "v"}}}
	if err := rpcver.UpgradeMessage(a, m, v1_0); err != nil {
		t.Fatal(err)
	}
	want := &pb.PutItemRequest{Item: &pb.Item{Id: "a", Price: 3, PriceCents: 300, Labels: map[string]string{"k": "v"}, Tags: []string{"a", "x"}}}
	if !proto.Equal(m, want) {
		t.Fatalf("upgraded %v, want %v", m, want)
	}
	// An older build runs only the steps up to its version.
	m = &pb.PutItemRequest{Item: &pb.Item{Price: 3, Labels: map[string]string{"tag/x": ""}}}
	if err := rpcver.UpgradeMessage(inventoryAt(t, v1_1), m, v1_0); err != nil {
		t.Fatal(err)
	}
	if len(m.Item.Tags) != 0 || m.Item.PriceCents != 300 {
		t.Fatalf("a 1.1 build ran the 1.2 step: %v", m)
	}
	orig := &pb.Item{Id: "r", PriceCents: 1200, QuantityMilli: 4000, Tags: []string{"b"}}
	rt := proto.Clone(orig).(*pb.Item)
	if err := a.BackportTo(rt, v1_1); err != nil {
		t.Fatal(err)
	}
	if err := a.UpgradeFrom(rt, v1_1); err != nil {
		t.Fatal(err)
	}
	rt.Quantity = 0 // the 1.1 form keeps the whole quantity alongside
	if !proto.Equal(rt, orig) {
		t.Fatalf("round trip through 1.1: %v, want %v", rt, orig)
	}
}
