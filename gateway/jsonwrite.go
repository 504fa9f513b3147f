package gateway

import (
	"strconv"
	"unicode/utf8"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// appendJSON is the answers' fast JSON path: it writes what protojson
// followed by withEmptyLists writes (the same names, values and empty
// lists; fields in declaration order, no spaces), in one pass over the
// message and without the decode and encode that adding the empty lists
// to protojson's output costs. It knows the kinds the lbaas.v1 answers
// are made of (strings, 32-bit integers, booleans, messages and lists of
// them); for anything else (a well-known type, an enum, a map, ...) and
// for a string that is not UTF-8 it returns false, and the caller takes
// protojson's way.
func appendJSON(out []byte, m protoreflect.Message) ([]byte, bool) {
	md := m.Descriptor()
	if md.FullName().Parent() == "google.protobuf" {
		return out, false
	}
	fields := md.Fields()
	lists := listsOnly(md)
	out = append(out, '{')
	first := true
	for i := 0; i < fields.Len(); i++ {
		f := fields.Get(i)
		shown := m.Has(f)
		if !shown && !(f.IsList() && (lists || alwaysShown[f.FullName()])) {
			continue
		}
		if !first {
			out = append(out, ',')
		}
		first = false
		out = appendString(out, f.JSONName())
		out = append(out, ':')
		ok := true
		switch {
		case f.IsMap():
			return out, false
		case f.IsList():
			out, ok = appendList(out, f, m.Get(f).List())
		default:
			out, ok = appendValue(out, f, m.Get(f))
		}
		if !ok {
			return out, false
		}
	}
	return append(out, '}'), true
}

func appendList(out []byte, f protoreflect.FieldDescriptor, list protoreflect.List) ([]byte, bool) {
	out = append(out, '[')
	for j := 0; j < list.Len(); j++ {
		if j > 0 {
			out = append(out, ',')
		}
		ok := true
		if out, ok = appendValue(out, f, list.Get(j)); !ok {
			return out, false
		}
	}
	return append(out, ']'), true
}

func appendValue(out []byte, f protoreflect.FieldDescriptor, v protoreflect.Value) ([]byte, bool) {
	switch f.Kind() {
	case protoreflect.StringKind:
		s := v.String()
		if !utf8.ValidString(s) {
			return out, false
		}
		return appendString(out, s), true
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return strconv.AppendUint(out, v.Uint(), 10), true
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return strconv.AppendInt(out, v.Int(), 10), true
	case protoreflect.BoolKind:
		return strconv.AppendBool(out, v.Bool()), true
	case protoreflect.MessageKind:
		return appendJSON(out, v.Message())
	}
	return out, false
}

// appendString writes a JSON string as protojson does: only '"', '\\'
// and control characters are escaped. s must be UTF-8.
func appendString(out []byte, s string) []byte {
	out = append(out, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= ' ' && c != '"' && c != '\\' {
			continue
		}
		out = append(out, s[start:i]...)
		start = i + 1
		switch c {
		case '"', '\\':
			out = append(out, '\\', c)
		case '\b':
			out = append(out, '\\', 'b')
		case '\f':
			out = append(out, '\\', 'f')
		case '\n':
			out = append(out, '\\', 'n')
		case '\r':
			out = append(out, '\\', 'r')
		case '\t':
			out = append(out, '\\', 't')
		default:
			const hex = "0123456789abcdef"
			out = append(out, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
	}
	out = append(out, s[start:]...)
	return append(out, '"')
}
