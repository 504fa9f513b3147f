package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/jedib0t/go-pretty/v6/table"
	"sigs.k8s.io/yaml"
)

// column is one column of a list: its header and the field it shows
// (dotted for nested objects: healthMonitor.type).
type column struct{ header, field string }

func cols(spec ...string) []column {
	out := make([]column, 0, len(spec)/2)
	for i := 0; i+1 < len(spec); i += 2 {
		out = append(out, column{spec[i], spec[i+1]})
	}
	return out
}

// view says how to show an answer: the key of its document holding the
// resource, and the columns when it is a list (nil: every field).
type view struct {
	key     string
	columns []column
}

// render prints the resource under v.key of the answer raw as a table,
// JSON or YAML. JSON keeps the API's field order; scripts get the resource
// itself ({"id": 1, ...} or a list), not the answer's wrapper.
func render(w io.Writer, format string, raw json.RawMessage, v view) error {
	doc := unwrap(raw, v.key)
	switch format {
	case "json":
		var buf bytes.Buffer
		if err := json.Indent(&buf, doc, "", "  "); err != nil {
			return err
		}
		buf.WriteByte('\n')
		_, err := w.Write(buf.Bytes())
		return err
	case "yaml":
		y, err := yaml.JSONToYAML(doc)
		if err != nil {
			return err
		}
		_, err = w.Write(y)
		return err
	}
	var val any
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if err := dec.Decode(&val); err != nil {
		return err
	}
	switch val := val.(type) {
	case []any:
		renderList(w, val, v.columns)
	case map[string]any:
		renderObject(w, val)
	default:
		fmt.Fprintln(w, cell(val))
	}
	return nil
}

// unwrap returns the value under key (dotted for nested objects:
// history.points), or the whole document.
func unwrap(raw json.RawMessage, key string) json.RawMessage {
	if len(bytes.TrimSpace(raw)) == 0 {
		return json.RawMessage("{}")
	}
	if key == "" {
		return raw
	}
	doc := raw
	for _, k := range strings.Split(key, ".") {
		var m map[string]json.RawMessage
		if json.Unmarshal(doc, &m) != nil || m[k] == nil {
			return raw
		}
		doc = m[k]
	}
	return doc
}

func newTable(w io.Writer) table.Writer {
	t := table.NewWriter()
	t.SetOutputMirror(w)
	t.SetStyle(table.StyleLight)
	t.Style().Options = table.OptionsNoBordersAndSeparators
	t.Style().Format.Header = 0 // as written (upper case)
	t.Style().Box.PaddingLeft, t.Style().Box.PaddingRight = "", "   "
	t.SuppressTrailingSpaces()
	return t
}

func renderList(w io.Writer, items []any, columns []column) {
	if len(items) == 0 {
		fmt.Fprintln(w, "(none)")
		return
	}
	if columns == nil {
		columns = allColumns(items)
	}
	t := newTable(w)
	header := table.Row{}
	for _, c := range columns {
		header = append(header, c.header)
	}
	t.AppendHeader(header)
	for _, it := range items {
		row := table.Row{}
		for _, c := range columns {
			row = append(row, cell(field(it, c.field)))
		}
		t.AppendRow(row)
	}
	t.Render()
}

// allColumns lists the fields of a list's items, sorted.
func allColumns(items []any) []column {
	seen := map[string]bool{}
	for _, it := range items {
		if m, ok := it.(map[string]any); ok {
			for k := range m {
				seen[k] = true
			}
		}
	}
	var out []column
	for k := range seen {
		out = append(out, column{strings.ToUpper(k), k})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].field < out[j].field })
	return out
}

// renderObject prints one resource as FIELD VALUE lines, nested objects
// flattened (healthMonitor.delay), then each list of objects it holds
// (nodes, virtualIps, ...) as its own table.
func renderObject(w io.Writer, obj map[string]any) {
	if len(obj) == 0 {
		fmt.Fprintln(w, "(none)")
		return
	}
	t := newTable(w)
	t.AppendHeader(table.Row{"FIELD", "VALUE"})
	var lists []string
	var flatten func(prefix string, m map[string]any)
	flatten = func(prefix string, m map[string]any) {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool {
			pi, pj := firstFields[keys[i]], firstFields[keys[j]]
			if pi != pj {
				return pi > pj
			}
			return keys[i] < keys[j]
		})
		for _, k := range keys {
			name := prefix + k
			switch v := m[k].(type) {
			case map[string]any:
				if tm, ok := v["time"]; ok && len(v) == 1 {
					t.AppendRow(table.Row{name, cell(tm)})
				} else {
					flatten(name+".", v)
				}
			case []any:
				if prefix == "" && len(v) > 0 && isObject(v[0]) {
					lists = append(lists, k)
				} else {
					t.AppendRow(table.Row{name, cell(v)})
				}
			default:
				t.AppendRow(table.Row{name, cell(v)})
			}
		}
	}
	flatten("", obj)
	if t.Length() > 0 {
		t.Render()
	}
	for _, k := range lists {
		if t.Length() > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s:\n", strings.ToUpper(k))
		renderList(w, obj[k].([]any), listColumns[k])
	}
}

// firstFields come first in an object's table, in this order.
var firstFields = map[string]int{"id": 10, "name": 9, "address": 8, "protocol": 7, "port": 6, "algorithm": 5,
	"status": 4, "statusDescription": 3, "condition": 2, "type": 1}

func isObject(v any) bool { _, ok := v.(map[string]any); return ok }

// field follows a dotted path into an object.
func field(v any, path string) any {
	for _, part := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[part]
	}
	return v
}

// cell formats a value for a table cell.
func cell(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	case []any:
		parts := make([]string, 0, len(v))
		for _, e := range v {
			parts = append(parts, cell(e))
		}
		return strings.Join(parts, ", ")
	case map[string]any:
		if t, ok := v["time"]; ok && len(v) == 1 {
			return cell(t)
		}
		for _, k := range []string{"address", "name", "key"} {
			if s, ok := v[k]; ok {
				return cell(s)
			}
		}
		b, _ := json.Marshal(v)
		return string(b)
	}
	return fmt.Sprint(v)
}

// listColumns are the columns of the lists the API answers, by key.
var listColumns = map[string][]column{
	"loadBalancers": cols("ID", "id", "NAME", "name", "PROTOCOL", "protocol", "PORT", "port",
		"ALGORITHM", "algorithm", "STATUS", "status", "NODES", "nodeCount", "VIRTUAL IPS", "virtualIps"),
	"nodes": cols("ID", "id", "ADDRESS", "address", "PORT", "port", "CONDITION", "condition",
		"STATUS", "status", "WEIGHT", "weight", "TYPE", "type"),
	"virtualIps":          cols("ID", "id", "ADDRESS", "address", "TYPE", "type", "VERSION", "ipVersion"),
	"accessList":          cols("ID", "id", "ADDRESS", "address", "TYPE", "type"),
	"metadata":            cols("ID", "id", "KEY", "key", "VALUE", "value"),
	"protocols":           cols("NAME", "name", "DEFAULT PORT", "port"),
	"algorithms":          cols("NAME", "name"),
	"ciphers":             cols("NAME", "name"),
	"certificateMappings": cols("ID", "certificateMapping.id", "HOST NAME", "certificateMapping.hostName"),
	"absolute":            cols("NAME", "name", "VALUE", "value"),
	"allowedDomains":      cols("NAME", "allowedDomain.name"),
	"loadBalancerUsageRecords": cols("START", "startTime", "END", "endTime", "EVENT", "eventType", "IN", "incomingTransfer",
		"OUT", "outgoingTransfer", "IN SSL", "incomingTransferSsl", "OUT SSL", "outgoingTransferSsl",
		"AVG CONN", "averageNumConnections", "REQUESTS", "requests", "ERRORS", "requestErrors", "VIPS", "numVips", "SSL", "sslMode"),
	"history.points": cols("TIME", "time", "REQUESTS", "requests", "ERRORS", "requestErrors", "CONN", "currentConn",
		"IN", "incomingTransfer", "OUT", "outgoingTransfer"),
	"nodeServiceEvents": cols("ID", "id", "NODE", "nodeId", "CREATED", "created", "SEVERITY", "severity",
		"TITLE", "title", "MESSAGE", "detailedMessage"),
}

// listView is the view of a list answered under key.
func listView(key string) view { return view{key: key, columns: listColumns[key]} }

// renderValue prints a value of ours like an answer of the API.
func renderValue(w io.Writer, format string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return render(w, format, b, view{})
}
