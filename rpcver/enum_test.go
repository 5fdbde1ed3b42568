package rpcver

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/tandem-go/tandem/rpcver/tandempb"
)

// enumService is API "e" at 1.1 over message M { Color c = 1; repeated
// Color cs = 2; map<string, Color> cm = 3; } where Color's BLUE came in 1.1.
func enumService(t *testing.T) protoreflect.ServiceDescriptor {
	t.Helper()
	blue := &descriptorpb.EnumValueOptions{}
	proto.SetExtension(blue, tandempb.E_EnumSince, "1.1")
	sopts := &descriptorpb.ServiceOptions{}
	proto.SetExtension(sopts, tandempb.E_Version, "1.1")
	proto.SetExtension(sopts, tandempb.E_Api, "e")
	field := func(name string, n int32, label descriptorpb.FieldDescriptorProto_Label, typ descriptorpb.FieldDescriptorProto_Type, typeName string) *descriptorpb.FieldDescriptorProto {
		f := &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(n), JsonName: proto.String(name), Label: label.Enum(), Type: typ.Enum()}
		if typeName != "" {
			f.TypeName = proto.String(typeName)
		}
		return f
	}
	opt, rep := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL, descriptorpb.FieldDescriptorProto_LABEL_REPEATED
	enumT := descriptorpb.FieldDescriptorProto_TYPE_ENUM
	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name: proto.String("te/te.proto"), Package: proto.String("te"), Syntax: proto.String("proto3"),
		Dependency: []string{"tandem/options.proto"},
		EnumType: []*descriptorpb.EnumDescriptorProto{{Name: proto.String("Color"), Value: []*descriptorpb.EnumValueDescriptorProto{
			{Name: proto.String("RED"), Number: proto.Int32(0)},
			{Name: proto.String("GREEN"), Number: proto.Int32(1)},
			{Name: proto.String("BLUE"), Number: proto.Int32(2), Options: blue},
		}}},
		MessageType: []*descriptorpb.DescriptorProto{{Name: proto.String("M"),
			Field: []*descriptorpb.FieldDescriptorProto{
				field("c", 1, opt, enumT, ".te.Color"),
				field("cs", 2, rep, enumT, ".te.Color"),
				field("cm", 3, rep, descriptorpb.FieldDescriptorProto_TYPE_MESSAGE, ".te.M.CmEntry"),
			},
			NestedType: []*descriptorpb.DescriptorProto{{Name: proto.String("CmEntry"), Options: &descriptorpb.MessageOptions{MapEntry: proto.Bool(true)},
				Field: []*descriptorpb.FieldDescriptorProto{
					field("key", 1, opt, descriptorpb.FieldDescriptorProto_TYPE_STRING, ""),
					field("value", 2, opt, enumT, ".te.Color"),
				}}},
		}},
		Service: []*descriptorpb.ServiceDescriptorProto{{Name: proto.String("Svc"), Options: sopts, Method: []*descriptorpb.MethodDescriptorProto{{
			Name: proto.String("Do"), InputType: proto.String(".te.M"), OutputType: proto.String(".te.M")}}}},
	}, protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	return fd.Services().Get(0)
}

// TestEnumValueBackport: a set enum value newer than the target fails the
// backport (ErrCannotBackport) unless the field's step maps it, in a
// singular, repeated or map field; older values and responses pass.
func TestEnumValueBackport(t *testing.T) {
	sd := enumService(t)
	md := sd.Methods().Get(0).Input()
	c, cs, cm := md.Fields().ByName("c"), md.Fields().ByName("cs"), md.Fields().ByName("cm")
	const green, blue = protoreflect.EnumNumber(1), protoreflect.EnumNumber(2)
	v1_0, v1_1 := Version{Major: 1}, Version{Major: 1, Minor: 1}
	step := func(fn stepFunc) Option {
		return Option{name: "Backport", api: func(cfg *apiConfig) { cfg.backports = append(cfg.backports, backportDecl{msg: md, field: "c", fn: fn}) }}
	}
	toGreen := step(func(m protoreflect.Message, _ Version) error {
		if m.Get(c).Enum() == blue {
			m.Set(c, protoreflect.ValueOfEnum(green))
		}
		return nil
	})
	leaves := step(func(protoreflect.Message, Version) error { return nil })
	refuses := step(func(protoreflect.Message, Version) error { return errors.New("no 1.0 form") })

	msg := func(set func(m *dynamicpb.Message)) *dynamicpb.Message {
		m := dynamicpb.NewMessage(md)
		set(m)
		return m
	}
	single := func(n protoreflect.EnumNumber) func(*dynamicpb.Message) {
		return func(m *dynamicpb.Message) { m.Set(c, protoreflect.ValueOfEnum(n)) }
	}
	list := func(m *dynamicpb.Message) {
		l := m.Mutable(cs).List()
		l.Append(protoreflect.ValueOfEnum(green))
		l.Append(protoreflect.ValueOfEnum(blue))
	}
	mapped := func(m *dynamicpb.Message) {
		m.Mutable(cm).Map().Set(protoreflect.ValueOfString("k").MapKey(), protoreflect.ValueOfEnum(blue))
	}
	tests := []struct {
		name    string
		opts    []Option
		m       *dynamicpb.Message
		to      Version
		strict  bool
		wantErr bool
		wantC   protoreflect.EnumNumber
	}{
		{"new value, no step", nil, msg(single(blue)), v1_0, true, true, 0},
		{"old value", nil, msg(single(green)), v1_0, true, false, green},
		{"new value at its own version", nil, msg(single(blue)), v1_1, true, false, blue},
		{"new value in a repeated field", nil, msg(list), v1_0, true, true, 0},
		{"new value in a map", nil, msg(mapped), v1_0, true, true, 0},
		{"a step maps it", []Option{toGreen}, msg(single(blue)), v1_0, true, false, green},
		{"the step leaves it", []Option{leaves}, msg(single(blue)), v1_0, true, true, 0},
		{"the step refuses", []Option{refuses}, msg(single(blue)), v1_0, true, true, 0},
		{"lenient (responses) keeps it", nil, msg(single(blue)), v1_0, false, false, blue},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := NewAPI(sd, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			r := tc.m.ProtoReflect()
			needs := a.needsBackport(r, a.msgInfo(r), tc.to)
			err = a.backport(r, a.msgInfo(r), tc.to, tc.strict)
			if tc.wantErr {
				var cb *CannotBackportError
				if !errors.Is(err, ErrCannotBackport) || !errors.As(err, &cb) || cb.Since != v1_1 || cb.Target != tc.to {
					t.Fatalf("err = %v, want CannotBackportError since 1.1", err)
				}
				if !needs {
					t.Fatal("NeedsBackport = false for a value newer than the target")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Get(c).Enum(); got != tc.wantC {
				t.Fatalf("c = %d, want %d", got, tc.wantC)
			}
		})
	}
	if _, err := NewAPI(sd, Option{name: "Backport", api: func(cfg *apiConfig) {
		cfg.backports = append(cfg.backports, backportDecl{msg: md, field: "cs", fn: func(protoreflect.Message, Version) error { return nil }})
	}}); err != nil {
		t.Fatalf("a step on a repeated enum field with versioned values: %v", err)
	}
}
