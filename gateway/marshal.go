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
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/openlbaas/lbaas/api"
	lbaasv1 "github.com/openlbaas/lbaas/gen/lbaas/v1"
)

// marshaler speaks the Rackspace JSON dialect of the lbaas.v1 messages:
//   - requests are decoded strictly: malformed JSON, wrong types, unknown
//     fields and trailing data are errors (400 badRequest);
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
	out, err := m.MarshalOptions.Marshal(msg)
	if err != nil {
		return nil, err
	}
	if l, ok := msg.(*lbaasv1.GetLimitsResponse); ok {
		// {"limits": {"rate": [], ...}}: the lists are one level down.
		return withEmptyListsIn(l.GetLimits(), "limits", out)
	}
	return withEmptyLists(msg, out)
}

// withEmptyListsIn applies withEmptyLists to the object under name.
func withEmptyListsIn(inner proto.Message, name string, out []byte) ([]byte, error) {
	obj := map[string]json.RawMessage{}
	if err := json.Unmarshal(out, &obj); err != nil {
		return nil, err
	}
	filled, err := withEmptyLists(inner, obj[name])
	if err != nil {
		return nil, err
	}
	obj[name] = filled
	return json.Marshal(obj)
}

// withEmptyLists adds "name": [] for every empty repeated field of a
// top-level message made only of repeated fields (the list wrappers).
func withEmptyLists(msg proto.Message, out []byte) ([]byte, error) {
	fields := msg.ProtoReflect().Descriptor().Fields()
	var missing []string
	for i := 0; i < fields.Len(); i++ {
		f := fields.Get(i)
		if !f.IsList() {
			return out, nil
		}
		if msg.ProtoReflect().Get(f).List().Len() == 0 {
			missing = append(missing, f.JSONName())
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	obj := map[string]json.RawMessage{}
	if err := json.Unmarshal(out, &obj); err != nil {
		return nil, err
	}
	for _, name := range missing {
		obj[name] = json.RawMessage("[]")
	}
	return json.Marshal(obj)
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
