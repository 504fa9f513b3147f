package gateway

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/structpb"

	lbaasv1 "github.com/openlbaas/lbaas/gen/lbaas/v1"
)

// The fast JSON path must answer what protojson with the empty lists
// added answers, for every message of the API filled at random (strings
// that need escaping, zero and unset values, empty and full lists, nested
// messages), and must take the fast path for those made only of the kinds
// it knows.
func TestAppendJSONAsProtojson(t *testing.T) {
	m := newMarshaler()
	rng := rand.New(rand.NewPCG(1, 2))
	var messages []protoreflect.MessageType
	protoregistry.GlobalTypes.RangeMessages(func(mt protoreflect.MessageType) bool {
		if mt.Descriptor().ParentFile().Package() == "lbaas.v1" {
			messages = append(messages, mt)
		}
		return true
	})
	if len(messages) < 50 {
		t.Fatalf("found %d lbaas.v1 messages", len(messages))
	}
	fast := 0
	for _, mt := range messages {
		for range 30 {
			msg := mt.New()
			fill(rng, msg, 0)
			want, err := m.marshalSlowly(msg.Interface())
			if err != nil {
				t.Fatalf("%s: protojson: %v", mt.Descriptor().FullName(), err)
			}
			got, err := m.Marshal(msg.Interface())
			if err != nil {
				t.Fatalf("%s: %v", mt.Descriptor().FullName(), err)
			}
			if !sameJSON(t, got, want) {
				t.Fatalf("%s:\n got %s\nwant %s", mt.Descriptor().FullName(), got, want)
			}
			if _, ok := appendJSON(nil, msg); ok {
				fast++
			}
		}
	}
	// The messages that hold a well-known type (google.protobuf.Value)
	// take protojson's way; nearly all others the fast one.
	if fast < len(messages)*30*9/10 {
		t.Errorf("the fast path wrote %d of %d messages", fast, len(messages)*30)
	}
	// A string that is not UTF-8 is protojson's error.
	bad := &lbaasv1.LoadBalancer{Name: proto.String("\xff")}
	if _, err := m.Marshal(bad); err == nil {
		t.Error("a name that is not UTF-8 was written")
	}
}

var texts = []string{"", "web", "é ü 漢", "\u2028\u2029", `"quoted" \ back`, "\x01\x1f\n\r\t\b\f", "<a&b>", "127.0.0.1"}

// fill sets each field of m at random, or leaves it unset.
func fill(rng *rand.Rand, m protoreflect.Message, depth int) {
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		f := fields.Get(i)
		if rng.IntN(4) == 0 || (f.Message() != nil && depth > 3) {
			continue
		}
		switch {
		case f.IsMap():
			continue
		case f.IsList():
			list := m.Mutable(f).List()
			for range rng.IntN(4) {
				if f.Message() != nil {
					e := list.NewElement()
					fill(rng, e.Message(), depth+1)
					list.Append(e)
				} else if v, ok := randomScalar(rng, f); ok {
					list.Append(v)
				}
			}
			if list.Len() == 0 {
				m.Clear(f)
			}
		case f.Message() != nil:
			if f.Message().FullName().Parent() == "google.protobuf" {
				if f.Message().FullName() == "google.protobuf.Value" {
					m.Set(f, protoreflect.ValueOfMessage(structpb.NewStringValue(texts[rng.IntN(len(texts))]).ProtoReflect()))
				}
				continue
			}
			fill(rng, m.Mutable(f).Message(), depth+1)
		default:
			if v, ok := randomScalar(rng, f); ok {
				m.Set(f, v)
			}
		}
	}
}

func randomScalar(rng *rand.Rand, f protoreflect.FieldDescriptor) (protoreflect.Value, bool) {
	switch f.Kind() {
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(texts[rng.IntN(len(texts))]), true
	case protoreflect.Uint32Kind:
		return protoreflect.ValueOfUint32([]uint32{0, 1, 80, 4294967295}[rng.IntN(4)]), true
	case protoreflect.Int32Kind:
		return protoreflect.ValueOfInt32([]int32{0, -1, 7, -2147483648}[rng.IntN(4)]), true
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(rng.IntN(2) == 0), true
	case protoreflect.EnumKind:
		return protoreflect.ValueOfEnum(f.Enum().Values().Get(rng.IntN(f.Enum().Values().Len())).Number()), true
	}
	return protoreflect.Value{}, false
}

func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	for _, in := range []struct {
		data []byte
		into *any
	}{{a, &x}, {b, &y}} {
		dec := json.NewDecoder(bytes.NewReader(in.data))
		dec.UseNumber()
		if err := dec.Decode(in.into); err != nil {
			t.Fatalf("not JSON: %s: %v", in.data, err)
		}
	}
	return reflect.DeepEqual(x, y)
}

// A GET answer: a load balancer of 3 nodes with the parts every answer
// shows.
func sampleLoadBalancer() *lbaasv1.LoadBalancerResponse {
	lb := &lbaasv1.LoadBalancer{
		Id: proto.Uint32(1042), Name: proto.String("bench"), Protocol: proto.String("HTTP"), Port: proto.Uint32(80),
		Algorithm: proto.String("RANDOM"), Status: proto.String("ACTIVE"), Timeout: proto.Uint32(30),
		HalfClosed: proto.Bool(false), HttpsRedirect: proto.Bool(false), NodeCount: proto.Uint32(3),
		VirtualIps:        []*lbaasv1.VirtualIp{{Id: proto.Uint32(7), Address: proto.String("192.0.2.7"), Type: proto.String("PUBLIC"), IpVersion: proto.String("IPV4")}},
		Cluster:           &lbaasv1.Cluster{Name: proto.String("ztm-n01.lbaas.local")},
		Created:           &lbaasv1.Time{Time: "2026-11-30T23:11:06Z"},
		Updated:           &lbaasv1.Time{Time: "2026-11-30T23:11:07Z"},
		ConnectionLogging: &lbaasv1.Enabled{Enabled: proto.Bool(false)},
		ContentCaching:    &lbaasv1.Enabled{Enabled: proto.Bool(false)},
	}
	for i := range 3 {
		lb.Nodes = append(lb.Nodes, &lbaasv1.Node{
			Id: proto.Uint32(uint32(3000 + i)), Address: proto.String("127.0.0.11"), Port: proto.Uint32(80),
			Condition: proto.String("ENABLED"), Status: proto.String("ONLINE"), Weight: proto.Uint32(1), Type: proto.String("PRIMARY"),
		})
	}
	return &lbaasv1.LoadBalancerResponse{LoadBalancer: lb}
}

func BenchmarkMarshalLoadBalancer(b *testing.B) {
	m, msg := newMarshaler(), sampleLoadBalancer()
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.Marshal(msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("protojson", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.marshalSlowly(msg); err != nil {
				b.Fatal(err)
			}
		}
	})
}
