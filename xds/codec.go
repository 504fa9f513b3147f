package xds

import (
	"sync"
	"unique"
	"unsafe"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	protoenc "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// A full state of the world (every cluster or listener of a fleet) is
// the same for every client that gets it but for its nonce. grpc-go
// marshals each response itself, so 500 Envoys getting 10,000 clusters
// would cost 500 marshals of 2.7 MB. The shared states encode their
// resources once; the codec below sends those bytes to every client,
// framed by the few fields that differ (version, type, nonce). The bytes
// are exactly what proto.Marshal would write (fields in number order).

// shared maps the backing array of a shared resource list to its state.
// Only current states are registered (replaced ones are unregistered),
// so an address is never reused while registered.
type shared struct{ m sync.Map }

func (s *shared) add(st *state) {
	store(s, st.res, st)
	store(s, st.delta, st)
}

func (s *shared) remove(st *state) {
	if st != nil {
		store(s, st.res, nil)
		store(s, st.delta, nil)
	}
}

// store registers (or, with st nil, unregisters) a list under its backing
// array.
func store[T any](s *shared, list []T, st *state) {
	switch {
	case len(list) == 0:
	case st == nil:
		s.m.Delete(unsafe.SliceData(list))
	default:
		s.m.Store(unsafe.SliceData(list), st)
	}
}

// lookup finds the shared state whose list (of) is exactly list.
func lookup[T any](s *shared, list []T, of func(*state) []T) *state {
	if len(list) == 0 {
		return nil
	}
	if v, ok := s.m.Load(unsafe.SliceData(list)); ok {
		if st := v.(*state); len(of(st)) == len(list) {
			return st
		}
	}
	return nil
}

func (s *shared) anys(res []*anypb.Any) *state {
	return lookup(s, res, func(st *state) []*anypb.Any { return st.res })
}

func (s *shared) resources(res []*discoveryv3.Resource) *state {
	return lookup(s, res, func(st *state) []*discoveryv3.Resource { return st.delta })
}

// encodedAnys returns field 2 (resources) of a DiscoveryResponse for the
// state's resources, encoded once.
func (st *state) encodedAnys() []byte {
	st.anysOnce.Do(func() { st.anysEnc = encodeField2(st.res) })
	return st.anysEnc
}

// encodedResources returns field 2 (resources) of a DeltaDiscoveryResponse
// for the state's delta resources, encoded once.
func (st *state) encodedResources() []byte {
	st.deltaOnce.Do(func() { st.deltaEnc = encodeField2(st.delta) })
	return st.deltaEnc
}

// encodeField2 encodes messages as repeated field 2, as proto.Marshal
// would (deterministically), sized once.
func encodeField2[M proto.Message](list []M) []byte {
	sizes := make([]int, len(list))
	total := 0
	for i, m := range list {
		sizes[i] = proto.Size(m)
		total += protowire.SizeTag(2) + protowire.SizeBytes(sizes[i])
	}
	b := make([]byte, 0, total)
	for i, m := range list {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(sizes[i]))
		b, _ = proto.MarshalOptions{Deterministic: true, UseCachedSize: true}.MarshalAppend(b, m)
	}
	return b
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// codec is grpc-go's proto codec, but for responses over a shared state.
type codec struct {
	base   encoding.CodecV2
	shared *shared
}

// ServerCodec is the xDS server's codec option: responses carrying one of
// the cache's shared states are sent from its encoding; everything else
// as usual. The resource names of requests are interned (see intern).
func ServerCodec(c *Cache) grpc.ServerOption {
	return grpc.ForceServerCodecV2(codec{base: encoding.GetCodecV2(protoenc.Name), shared: c.shared})
}

func (c codec) Name() string { return c.base.Name() }

func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	if err := c.base.Unmarshal(data, v); err != nil {
		return err
	}
	switch m := v.(type) {
	case *discoveryv3.DiscoveryRequest:
		intern(m.ResourceNames)
	case *discoveryv3.DeltaDiscoveryRequest:
		intern(m.ResourceNamesSubscribe)
	}
	return nil
}

// intern replaces each name by one copy shared by every stream that names
// it. go-control-plane keeps each stream's subscription as a set of the
// names its requests gave; an Envoy names every endpoint, route and filter
// configuration of the fleet, so without this every stream would hold its
// own copy of the same tens of thousands of strings. unique drops a copy
// once no stream holds it.
func intern(names []string) {
	for i, n := range names {
		names[i] = unique.Make(n).Value()
	}
}

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	switch m := v.(type) {
	case *discoveryv3.DiscoveryResponse:
		if st := c.shared.anys(m.GetResources()); st != nil && !m.GetCanary() && m.GetControlPlane() == nil &&
			len(m.GetResourceErrors()) == 0 && len(m.ProtoReflect().GetUnknown()) == 0 {
			head := appendString(nil, 1, m.GetVersionInfo())
			tail := appendString(appendString(nil, 4, m.GetTypeUrl()), 5, m.GetNonce())
			return mem.BufferSlice{mem.SliceBuffer(head), mem.SliceBuffer(st.encodedAnys()), mem.SliceBuffer(tail)}, nil
		}
	case *discoveryv3.DeltaDiscoveryResponse:
		if st := c.shared.resources(m.GetResources()); st != nil && m.GetControlPlane() == nil &&
			len(m.GetRemovedResourceNames()) == 0 && len(m.GetResourceErrors()) == 0 && len(m.ProtoReflect().GetUnknown()) == 0 {
			head := appendString(nil, 1, m.GetSystemVersionInfo())
			tail := appendString(appendString(nil, 4, m.GetTypeUrl()), 5, m.GetNonce())
			for _, name := range m.GetRemovedResources() {
				tail = protowire.AppendTag(tail, 6, protowire.BytesType)
				tail = protowire.AppendString(tail, name)
			}
			return mem.BufferSlice{mem.SliceBuffer(head), mem.SliceBuffer(st.encodedResources()), mem.SliceBuffer(tail)}, nil
		}
	}
	return c.base.Marshal(v)
}
