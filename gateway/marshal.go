package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/openlbaas/lbaas/api"
)

// marshaler speaks the Rackspace JSON dialect of the lbaas.v1 messages:
//   - requests are decoded strictly: malformed JSON, wrong types, unknown
//     fields and trailing data are errors (400 badRequest), once the body
//     is in its canonical form (root wrapper optional, "true"/"false"
//     strings for booleans: see normalizeBody);
//   - an empty response (google.protobuf.Empty) has no body at all;
//   - a list response shows an empty list as [] rather than leaving it out.
type marshaler struct {
	runtime.JSONPb
}

func newMarshaler() *marshaler {
	return &marshaler{JSONPb: runtime.JSONPb{
		MarshalOptions:   protojson.MarshalOptions{},
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
	}}
}

func (m *marshaler) Marshal(v any) ([]byte, error) {
	msg, ok := v.(proto.Message)
	if !ok {
		return m.JSONPb.Marshal(v)
	}
	if _, empty := msg.(*emptypb.Empty); empty {
		return nil, nil
	}
	if out, ok := appendJSON(make([]byte, 0, 512), msg.ProtoReflect()); ok {
		return out, nil
	}
	return m.marshalSlowly(msg)
}

// marshalSlowly is protojson's way, with the empty lists added to its
// output: for what appendJSON does not write.
func (m *marshaler) marshalSlowly(msg proto.Message) ([]byte, error) {
	out, err := m.MarshalOptions.Marshal(msg)
	if err != nil {
		return nil, err
	}
	return withEmptyLists(msg, out)
}

// withEmptyLists adds "name": [] for every empty repeated field of a
// message made only of repeated fields (the list wrappers, and lists such
// as the source addresses inside an answer), at the top level or in a
// message field or a list of messages, and for the alwaysShown lists.
func withEmptyLists(msg proto.Message, out []byte) ([]byte, error) {
	if !fillEmptyLists(msg.ProtoReflect(), nil) {
		return out, nil
	}
	var obj map[string]any
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil {
		return nil, err
	}
	fillEmptyLists(msg.ProtoReflect(), obj)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(obj); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// alwaysShown are the lists of other messages the reference shows even
// when empty ("metadata": [] of each node, "links": [] of each load
// balancer's usage).
var alwaysShown = map[protoreflect.FullName]bool{"lbaas.v1.Node.metadata": true, "lbaas.v1.LoadBalancerUsageOfAccount.links": true}

// listsOnly tells whether every field of md is repeated.
func listsOnly(md protoreflect.MessageDescriptor) bool {
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		if !fields.Get(i).IsList() {
			return false
		}
	}
	return fields.Len() > 0
}

// fillEmptyLists adds the empty lists to obj, the JSON of m; with a nil
// obj it only tells whether there is any to add.
func fillEmptyLists(m protoreflect.Message, obj map[string]any) bool {
	found := false
	fields := m.Descriptor().Fields()
	lists := listsOnly(m.Descriptor())
	for i := 0; i < fields.Len(); i++ {
		f := fields.Get(i)
		switch {
		case (lists || alwaysShown[f.FullName()]) && m.Get(f).List().Len() == 0:
			found = true
			if obj != nil {
				obj[f.JSONName()] = []any{}
			}
		case singularMessage(f) && m.Has(f):
			inner, _ := obj[f.JSONName()].(map[string]any)
			if (obj == nil || inner != nil) && fillEmptyLists(m.Get(f).Message(), inner) {
				found = true
			}
		case f.IsList() && f.Kind() == protoreflect.MessageKind:
			list := m.Get(f).List()
			items, _ := obj[f.JSONName()].([]any)
			for j := 0; j < list.Len(); j++ {
				var inner map[string]any
				if j < len(items) {
					inner, _ = items[j].(map[string]any)
				}
				if (obj == nil || inner != nil) && fillEmptyLists(list.Get(j).Message(), inner) {
					found = true
				}
			}
		}
		if found && obj == nil {
			return true
		}
	}
	return found
}

func singularMessage(f protoreflect.FieldDescriptor) bool {
	return f.Kind() == protoreflect.MessageKind && !f.IsList() && !f.IsMap()
}

// NewDecoder reads the whole body and decodes it strictly.
func (m *marshaler) NewDecoder(r io.Reader) runtime.Decoder {
	return runtime.DecoderFunc(func(v any) error {
		data, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(data)) == 0 {
			return io.EOF
		}
		return m.decode(data, v)
	})
}

func (m *marshaler) decode(data []byte, v any) error {
	if msg, ok := v.(proto.Message); ok {
		data = normalizeBody(data, msg.ProtoReflect().Descriptor())
		if err := m.UnmarshalOptions.Unmarshal(data, msg); err != nil {
			return err
		}
		return refuseNUL(msg)
	}
	// A body mapped to one field arrives as a pointer to a message pointer.
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer && rv.Elem().Kind() == reflect.Pointer {
		fresh := reflect.New(rv.Elem().Type().Elem())
		if msg, ok := fresh.Interface().(proto.Message); ok {
			data = normalizeBody(data, msg.ProtoReflect().Descriptor())
			if err := m.UnmarshalOptions.Unmarshal(data, msg); err != nil {
				return err
			}
			rv.Elem().Set(fresh)
			return refuseNUL(msg)
		}
	}
	return fmt.Errorf("cannot decode into %T", v)
}

// refuseNUL is api.NoNUL for the decoder, whose errors grpc-gateway turns
// into a 400 with the error's text.
func refuseNUL(m proto.Message) error {
	if field := api.NULField(m); field != "" {
		return fmt.Errorf("%s: must not contain the NUL character", field)
	}
	return nil
}
