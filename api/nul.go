package api

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// NoNUL refuses a request holding the NUL character in any string: valid
// JSON and protobuf, but no database stores it (PostgreSQL refuses it in
// text) and no header or path can carry it.
func NoNUL(m proto.Message) error {
	if field := NULField(m); field != "" {
		return BadRequest(fmt.Sprintf("%s: must not contain the NUL character", field))
	}
	return nil
}

// NULField names the first string field of m holding a NUL character, or
// returns "".
func NULField(m proto.Message) string { return nulField(m.ProtoReflect()) }

func nulField(m protoreflect.Message) (field string) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		check := func(v protoreflect.Value) {
			switch fd.Kind() {
			case protoreflect.StringKind:
				if strings.ContainsRune(v.String(), 0) {
					field = fd.JSONName()
				}
			case protoreflect.MessageKind:
				if inner := nulField(v.Message()); inner != "" {
					field = fd.JSONName() + "." + inner
				}
			}
		}
		switch {
		case fd.IsList():
			for i := 0; i < v.List().Len() && field == ""; i++ {
				check(v.List().Get(i))
			}
		case !fd.IsMap():
			check(v)
		}
		return field == ""
	})
	return field
}

// RefuseNUL is the gRPC interceptor applying NoNUL to every request.
func RefuseNUL(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if m, ok := req.(proto.Message); ok {
		if err := NoNUL(m); err != nil {
			return nil, err
		}
	}
	return handler(ctx, req)
}
