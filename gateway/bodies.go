package gateway

import (
	"bytes"
	"encoding/json"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// Bodies as clients send them. Rackspace SDKs and the reference's own
// examples send some bodies without their root wrapper ({"type": "PUBLIC",
// ...} for {"virtualIp": {...}}, a health monitor without
// {"healthMonitor": ...}) and some values as strings ("port": "80",
// "halfClosed": "false"). normalizeBody rewrites such a body into the
// canonical form before the strict decoder sees it, guided by the target
// message's descriptor alone, so that every route gets the same rules:
//
//   - an object with none of the target's own fields whose keys include
//     fields of exactly one wrapper (a singular message field of the
//     target) is that wrapper unwrapped, and gets wrapped (its other keys
//     are then unknown fields of the wrapper, which the decoder names); a
//     body whose keys fit no wrapper, or several, is left alone;
//   - "true" and "false" strings are booleans where a bool belongs
//     (protojson already takes "80" for an integer field).
//
// Anything else — unknown fields, wrong types, malformed JSON — is left for
// the strict decoder to refuse.
func normalizeBody(data []byte, md protoreflect.MessageDescriptor) []byte {
	var body any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil || dec.More() {
		return data
	}
	obj, ok := body.(map[string]any)
	if !ok {
		return data
	}
	changed := false
	if wrapped, ok := wrap(obj, md); ok {
		obj, changed = wrapped, true
	}
	if fixStrings(obj, md) {
		changed = true
	}
	if !changed {
		return data
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return data
	}
	return out
}

// wrap returns the wrapped form of an unwrapped body.
func wrap(obj map[string]any, md protoreflect.MessageDescriptor) (map[string]any, bool) {
	if len(obj) == 0 {
		return nil, false
	}
	for key := range obj {
		if fieldByName(md, key) != nil {
			return nil, false
		}
	}
	var found []string
	for _, w := range wrappers(md) {
		for key := range obj {
			if fieldByName(w.msg, key) != nil {
				found = append(found, w.name)
				break
			}
		}
	}
	if len(found) != 1 {
		return nil, false
	}
	return map[string]any{found[0]: obj}, true
}

type wrapper struct {
	name string
	msg  protoreflect.MessageDescriptor
}

// wrappers are the singular message fields of md, by JSON name.
func wrappers(md protoreflect.MessageDescriptor) []wrapper {
	var out []wrapper
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		f := fields.Get(i)
		if singularMessage(f) {
			out = append(out, wrapper{name: f.JSONName(), msg: f.Message()})
		}
	}
	return out
}

// fieldByName finds a field by its JSON or proto name, as protojson does.
func fieldByName(md protoreflect.MessageDescriptor, name string) protoreflect.FieldDescriptor {
	fields := md.Fields()
	if f := fields.ByJSONName(name); f != nil {
		return f
	}
	return fields.ByName(protoreflect.Name(name))
}

// fixStrings turns "true" / "false" into booleans where md has a bool, in
// obj and the messages inside it; it tells whether it changed anything.
func fixStrings(obj map[string]any, md protoreflect.MessageDescriptor) bool {
	changed := false
	for key, val := range obj {
		f := fieldByName(md, key)
		if f == nil {
			continue
		}
		switch f.Kind() {
		case protoreflect.BoolKind:
			if f.IsList() {
				if list, ok := val.([]any); ok {
					for i, v := range list {
						if b, ok := boolString(v); ok {
							list[i], changed = b, true
						}
					}
				}
			} else if b, ok := boolString(val); ok {
				obj[key], changed = b, true
			}
		case protoreflect.MessageKind:
			if f.IsMap() {
				continue
			}
			items := []any{val}
			if f.IsList() {
				items, _ = val.([]any)
			}
			for _, item := range items {
				if inner, ok := item.(map[string]any); ok && fixStrings(inner, f.Message()) {
					changed = true
				}
			}
		}
	}
	return changed
}

func boolString(v any) (bool, bool) {
	switch v {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}
