package gateway

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/emptypb"

	lbaasv1 "github.com/openlbaas/lbaas/gen/lbaas/v1"
)

// xmlNamespace is the namespace of the reference's XML.
const xmlNamespace = "http://docs.openstack.org/loadbalancers/api/v1.0"

// atomNamespace qualifies the pagination links of a list.
const atomNamespace = "http://www.w3.org/2005/Atom"

// The reference's XML follows one mapping of the JSON shapes, which this
// marshaler applies to the lbaas.v1 messages by reflection:
//   - a response's one field (its "links" aside) is the root element,
//     in the reference's namespace;
//   - scalar fields are attributes, nested messages child elements named
//     after the field (<created time="..."/>);
//   - a list is an element named after the field holding one element per
//     item, named in the singular (<nodes><node .../></nodes>,
//     <metadata><meta .../></metadata>, <accessList><networkItem .../>);
//     a list item that only wraps one message ({"allowedDomain": {...}})
//     is that message;
//   - long text is element content rather than an attribute (an error
//     page's content, a metadata item's value);
//   - pagination links are <atom:link rel="next" href="..."/>.
//
// Request bodies are read by the inverse mapping into the JSON shape,
// then decoded by the JSON marshaler, so both formats share one set of
// rules about what a body may hold (and one set of faults naming the field).
type xmlMarshaler struct {
	json runtime.Marshaler
}

// singular names a list's items where dropping the final "s" does not.
var singular = map[string]string{
	"metadata":        "meta",
	"accessList":      "networkItem",
	"ipv4Publicnets":  "ipv4Public",
	"ipv6Publicnets":  "ipv6Public",
	"absolute":        "limit",
	"ipv4Servicenets": "ipv4Servicenet",
	"ipv6Servicenets": "ipv6Servicenet",
}

func itemName(list string) string {
	if s, ok := singular[list]; ok {
		return s
	}
	return strings.TrimSuffix(list, "s")
}

// listRoots name the root element of a list answer where the reference
// does not name it after the list (<loadBalancerUsage> holding
// <loadBalancerUsageRecord>s).
var listRoots = map[string]string{"loadBalancerUsageRecords": "loadBalancerUsage"}

// inlineLists are lists whose items the reference writes straight into
// their parent, without an element for the list (the usage records of an
// account's usage).
var inlineLists = map[string]bool{"accountUsageRecords": true, "loadBalancerUsageRecords": true, "loadBalancerUsages": true}

// textFields are string fields written as element content: as a child
// element of their own, or (contentField) as the content of the element
// of their message.
var textFields = map[string]bool{"content": true, "certificate": true, "intermediateCertificate": true, "privateKey": true}

// isContent tells the field that is its element's content: the value of
// a metadata item, <meta id="1" key="color">red</meta>.
func isContent(f protoreflect.FieldDescriptor) bool {
	return f.Name() == "value" && f.ContainingMessage().Name() == "Meta"
}

func elementName(f protoreflect.FieldDescriptor) string {
	n := f.JSONName()
	return strings.ToLower(n[:1]) + n[1:]
}

func (m *xmlMarshaler) ContentType(any) string { return mimeXML }

func (m *xmlMarshaler) Marshal(v any) ([]byte, error) {
	msg, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("xml: cannot marshal %T", v)
	}
	if _, empty := msg.(*emptypb.Empty); empty {
		return nil, nil
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	if err := encodeResponse(enc, msg.ProtoReflect()); err != nil {
		return nil, err
	}
	if err := enc.Flush(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func encodeResponse(enc *xml.Encoder, msg protoreflect.Message) error {
	var root, links protoreflect.FieldDescriptor
	fields := msg.Descriptor().Fields()
	several := false
	for i := 0; i < fields.Len(); i++ {
		f := fields.Get(i)
		switch {
		case f.JSONName() == "links":
			links = f
		case root == nil:
			root = f
		default:
			several = true
		}
	}
	ns := []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: xmlNamespace}}
	if links != nil {
		ns = append(ns, xml.Attr{Name: xml.Name{Local: "xmlns:atom"}, Value: atomNamespace})
	}
	if root == nil || several {
		// Not a wrapper: the message itself, named after it
		// (GetAccountUsageResponse: <accountUsage>).
		name := strings.TrimSuffix(string(msg.Descriptor().Name()), "Response")
		for _, verb := range []string{"Get", "List"} {
			name = strings.TrimPrefix(name, verb)
		}
		if name == "" {
			name = "Response"
		}
		return encodeMessage(enc, strings.ToLower(name[:1])+name[1:], msg, ns)
	}
	name := elementName(root)
	switch {
	case root.IsList():
		wrapper := name
		if w, ok := listRoots[name]; ok {
			wrapper = w
		}
		start := xml.StartElement{Name: xml.Name{Local: wrapper}, Attr: ns}
		if err := enc.EncodeToken(start); err != nil {
			return err
		}
		if err := encodeItems(enc, name, root, msg.Get(root).List()); err != nil {
			return err
		}
		if links != nil {
			if err := encodeLinks(enc, msg.Get(links).List()); err != nil {
				return err
			}
		}
		return enc.EncodeToken(start.End())
	case root.Message() != nil:
		return encodeMessage(enc, name, msg.Get(root).Message(), ns)
	}
	return fmt.Errorf("xml: %s is not a message", root.FullName())
}

func encodeLinks(enc *xml.Encoder, links protoreflect.List) error {
	for i := 0; i < links.Len(); i++ {
		l := links.Get(i).Message().Interface().(*lbaasv1.Link)
		start := xml.StartElement{Name: xml.Name{Local: "atom:link"}, Attr: []xml.Attr{
			{Name: xml.Name{Local: "rel"}, Value: l.GetRel()}, {Name: xml.Name{Local: "href"}, Value: l.GetHref()}}}
		if err := enc.EncodeToken(start); err != nil {
			return err
		}
		if err := enc.EncodeToken(start.End()); err != nil {
			return err
		}
	}
	return nil
}

// encodeItems writes the items of list field f (the list element itself
// is the caller's).
func encodeItems(enc *xml.Encoder, listName string, f protoreflect.FieldDescriptor, list protoreflect.List) error {
	item := itemName(listName)
	for i := 0; i < list.Len(); i++ {
		if !isMessage(f) {
			if err := encodeText(enc, item, scalarText(f, list.Get(i))); err != nil {
				return err
			}
			continue
		}
		m := list.Get(i).Message()
		if inner := onlyMessageField(m.Descriptor()); inner != nil && elementName(inner) == item {
			m = m.Get(inner).Message()
		}
		if err := encodeMessage(enc, item, m, nil); err != nil {
			return err
		}
	}
	return nil
}

// onlyMessageField is the field of a message made of one message field.
func onlyMessageField(md protoreflect.MessageDescriptor) protoreflect.FieldDescriptor {
	if md.Fields().Len() != 1 {
		return nil
	}
	f := md.Fields().Get(0)
	if f.IsList() || f.Message() == nil {
		return nil
	}
	return f
}

func encodeText(enc *xml.Encoder, name, text string) error {
	start := xml.StartElement{Name: xml.Name{Local: name}}
	if err := enc.EncodeToken(start); err != nil {
		return err
	}
	if err := enc.EncodeToken(xml.CharData(text)); err != nil {
		return err
	}
	return enc.EncodeToken(start.End())
}

func encodeMessage(enc *xml.Encoder, name string, m protoreflect.Message, attrs []xml.Attr) error {
	start := xml.StartElement{Name: xml.Name{Local: name}, Attr: attrs}
	var content *string
	var children []protoreflect.FieldDescriptor
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		f := fields.Get(i)
		switch {
		case f.IsList() || isMessage(f) || textFields[f.JSONName()]:
			children = append(children, f)
		case !m.Has(f):
		case isContent(f):
			s := m.Get(f).String()
			content = &s
		default:
			start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: elementName(f)}, Value: scalarText(f, m.Get(f))})
		}
	}
	if err := enc.EncodeToken(start); err != nil {
		return err
	}
	if content != nil {
		if err := enc.EncodeToken(xml.CharData(*content)); err != nil {
			return err
		}
	}
	for _, f := range children {
		if !m.Has(f) {
			continue
		}
		name := elementName(f)
		var err error
		switch {
		case f.IsList() && inlineLists[name]:
			err = encodeItems(enc, name, f, m.Get(f).List())
		case f.IsList():
			list := xml.StartElement{Name: xml.Name{Local: name}}
			if err = enc.EncodeToken(list); err == nil {
				if err = encodeItems(enc, name, f, m.Get(f).List()); err == nil {
					err = enc.EncodeToken(list.End())
				}
			}
		case isMessage(f):
			err = encodeMessage(enc, name, m.Get(f).Message(), nil)
		default:
			err = encodeText(enc, name, m.Get(f).String())
		}
		if err != nil {
			return err
		}
	}
	return enc.EncodeToken(start.End())
}

// isMessage tells a field written as an element of its own: a message,
// other than the well-known types that stand for one value
// (google.protobuf.Value, the wrappers, Timestamp, ...), which are
// written like scalars.
func isMessage(f protoreflect.FieldDescriptor) bool {
	return f.Message() != nil && f.Message().FullName().Parent() != "google.protobuf"
}

func scalarText(f protoreflect.FieldDescriptor, v protoreflect.Value) string {
	switch f.Kind() {
	case protoreflect.MessageKind:
		// A well-known type: its JSON, unquoted when a string.
		b, err := protojson.Marshal(v.Message().Interface())
		if err != nil {
			return ""
		}
		var str string
		if json.Unmarshal(b, &str) == nil {
			return str
		}
		return string(b)
	case protoreflect.BoolKind:
		return strconv.FormatBool(v.Bool())
	case protoreflect.EnumKind:
		if ev := f.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return string(ev.Name())
		}
		return strconv.Itoa(int(v.Enum()))
	default:
		return v.String()
	}
}

// NewDecoder reads an XML body into its JSON shape for the JSON decoder.
func (m *xmlMarshaler) NewDecoder(r io.Reader) runtime.Decoder {
	return runtime.DecoderFunc(func(v any) error {
		md, err := targetDescriptor(v)
		if err != nil {
			return err
		}
		root, err := parseXML(r)
		if err != nil {
			return err
		}
		if root == nil {
			return io.EOF
		}
		var obj any
		// A body with the request's field as root (<loadBalancer> of a
		// create) or the body message itself (<virtualIp> of add-virtual-IP).
		if f := fieldByElement(md, root.name); f != nil {
			val, err := xmlValue(f, root, f.JSONName())
			if err != nil {
				return err
			}
			obj = map[string]any{f.JSONName(): val}
		} else if obj, err = xmlObject(md, root, ""); err != nil {
			return err
		}
		data, err := json.Marshal(obj)
		if err != nil {
			return err
		}
		return m.json.NewDecoder(bytes.NewReader(data)).Decode(v)
	})
}

func (m *xmlMarshaler) NewEncoder(w io.Writer) runtime.Encoder {
	return runtime.EncoderFunc(func(v any) error {
		data, err := m.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	})
}

func (m *xmlMarshaler) Unmarshal(data []byte, v any) error {
	return m.NewDecoder(bytes.NewReader(data)).Decode(v)
}

// targetDescriptor is the message a decoder fills: v is a message, or a
// pointer to a message pointer when the body is one field of the request.
func targetDescriptor(v any) (protoreflect.MessageDescriptor, error) {
	if msg, ok := v.(proto.Message); ok {
		return msg.ProtoReflect().Descriptor(), nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer && rv.Elem().Kind() == reflect.Pointer {
		if msg, ok := reflect.New(rv.Elem().Type().Elem()).Interface().(proto.Message); ok {
			return msg.ProtoReflect().Descriptor(), nil
		}
	}
	return nil, fmt.Errorf("cannot decode into %T", v)
}

// node is a parsed XML element.
type node struct {
	name     string
	attrs    []xml.Attr
	text     strings.Builder
	children []*node
}

// parseXML reads one element tree; namespaces are not checked (clients
// send the reference's or none), DTDs and entities other than XML's own
// are refused by encoding/xml.
func parseXML(r io.Reader) (*node, error) {
	dec := xml.NewDecoder(r)
	var stack []*node
	var root *node
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if len(stack) > 0 {
				return nil, fmt.Errorf("xml: unexpected end of body")
			}
			return root, nil
		}
		if err != nil {
			return nil, fmt.Errorf("malformed XML: %v", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n := &node{name: t.Name.Local}
			for _, a := range t.Attr {
				if a.Name.Space == "xmlns" || a.Name.Local == "xmlns" {
					continue
				}
				n.attrs = append(n.attrs, a)
			}
			if len(stack) > 0 {
				parent := stack[len(stack)-1]
				parent.children = append(parent.children, n)
			} else if root != nil {
				return nil, fmt.Errorf("malformed XML: more than one root element")
			} else {
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text.Write(t)
			} else if len(bytes.TrimSpace(t)) > 0 {
				return nil, fmt.Errorf("malformed XML: text outside the root element")
			}
		case xml.Directive:
			return nil, fmt.Errorf("malformed XML: directives are not accepted")
		}
	}
}

func fieldByElement(md protoreflect.MessageDescriptor, name string) protoreflect.FieldDescriptor {
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		if f := fields.Get(i); elementName(f) == name {
			return f
		}
	}
	return nil
}

// xmlObject is the JSON object of element n as message md.
func xmlObject(md protoreflect.MessageDescriptor, n *node, path string) (map[string]any, error) {
	obj := map[string]any{}
	at := func(name string) string {
		if path == "" {
			return name
		}
		return path + "." + name
	}
	for _, a := range n.attrs {
		f := fieldByElement(md, a.Name.Local)
		if f == nil || f.IsList() || isMessage(f) {
			return nil, fmt.Errorf("%s: unknown field", at(a.Name.Local))
		}
		v, err := scalarJSON(f, a.Value, at(a.Name.Local))
		if err != nil {
			return nil, err
		}
		obj[f.JSONName()] = v
	}
	if text := strings.TrimSpace(n.text.String()); text != "" {
		f := md.Fields().ByName("value")
		if f == nil || !isContent(f) {
			return nil, fmt.Errorf("%s: unexpected text", at(n.name))
		}
		obj[f.JSONName()] = text
	}
	for _, c := range n.children {
		f := fieldByElement(md, c.name)
		if f == nil {
			return nil, fmt.Errorf("%s: unknown field", at(c.name))
		}
		if _, dup := obj[f.JSONName()]; dup {
			return nil, fmt.Errorf("%s: given more than once", at(c.name))
		}
		v, err := xmlValue(f, c, at(f.JSONName()))
		if err != nil {
			return nil, err
		}
		obj[f.JSONName()] = v
	}
	return obj, nil
}

// xmlValue is the JSON value of element n as field f.
func xmlValue(f protoreflect.FieldDescriptor, n *node, path string) (any, error) {
	switch {
	case f.IsList():
		item := itemName(elementName(f))
		items := []any{}
		for i, c := range n.children {
			at := fmt.Sprintf("%s[%d]", path, i)
			if c.name != item {
				return nil, fmt.Errorf("%s: expected <%s>, got <%s>", at, item, c.name)
			}
			var v any
			var err error
			if !isMessage(f) {
				v, err = scalarJSON(f, strings.TrimSpace(c.text.String()), at)
			} else if inner := onlyMessageField(f.Message()); inner != nil && elementName(inner) == item {
				var o map[string]any
				o, err = xmlObject(inner.Message(), c, at)
				v = map[string]any{inner.JSONName(): o}
			} else {
				v, err = xmlObject(f.Message(), c, at)
			}
			if err != nil {
				return nil, err
			}
			items = append(items, v)
		}
		return items, nil
	case isMessage(f):
		return xmlObject(f.Message(), n, path)
	default:
		if len(n.children) > 0 {
			return nil, fmt.Errorf("%s: expected text", path)
		}
		return scalarJSON(f, strings.TrimSpace(n.text.String()), path)
	}
}

// scalarJSON is the JSON value of an XML attribute or text for field f.
func scalarJSON(f protoreflect.FieldDescriptor, s, path string) (any, error) {
	switch f.Kind() {
	case protoreflect.MessageKind: // a well-known type
		if inner := f.Message().Fields().ByName("value"); inner != nil && f.Message().Fields().Len() == 1 {
			return scalarJSON(inner, s, path) // a wrapper (UInt32Value, ...)
		}
		if f.Message().FullName() == "google.protobuf.Value" {
			if s == "true" || s == "false" {
				return s == "true", nil
			}
			if isNumber(s) {
				return json.Number(s), nil
			}
		}
		return s, nil
	case protoreflect.BoolKind:
		b, err := strconv.ParseBool(s)
		if err != nil || (s != "true" && s != "false") {
			return nil, fmt.Errorf("%s: must be true or false (got %q)", path, s)
		}
		return b, nil
	case protoreflect.StringKind, protoreflect.BytesKind, protoreflect.EnumKind:
		return s, nil
	default:
		if s == "" {
			return nil, fmt.Errorf("%s: must be a number (got %q)", path, s)
		}
		// Numbers go through as JSON numbers when they parse; otherwise
		// as the string, for the JSON decoder to refuse with its message.
		if isNumber(s) {
			return json.Number(s), nil
		}
		return s, nil
	}
}

// isNumber tells a decimal number (not Inf or NaN, which JSON lacks).
func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil && strings.Trim(s, "0123456789.-+eE") == ""
}
