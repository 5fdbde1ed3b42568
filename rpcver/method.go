package rpcver

import (
	"context"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Method names one RPC of an API with its request and response types, so
// calls and handlers are typed. It holds no API, so the same value works
// with an API built at any version (see WithCurrent).
type Method[Req, Resp proto.Message] struct {
	name string
	resp protoreflect.MessageType // looked up once, not per call
}

// NewMethod declares a method by its protobuf name, e.g.
//
//	var GetItem = rpcver.NewMethod[*pb.GetItemRequest, *pb.GetItemResponse]("GetItem")
func NewMethod[Req, Resp proto.Message](name string) Method[Req, Resp] {
	var zero Resp
	return Method[Req, Resp]{name: name, resp: zero.ProtoReflect().Type()}
}

// Name is the method's protobuf name.
func (m Method[Req, Resp]) Name() string { return m.name }

// Call sends req through c at min(c's current version, the cluster cap) and
// returns the response upgraded to c's current version.
func (m Method[Req, Resp]) Call(ctx context.Context, c *Client, req Req) (Resp, error) {
	var zero Resp
	typ := m.resp
	if typ == nil { // a zero Method
		typ = zero.ProtoReflect().Type()
	}
	resp := typ.New().Interface().(Resp)
	if err := c.call(ctx, m.name, req, resp); err != nil {
		return zero, err
	}
	return resp, nil
}
