package translator

import (
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/proto"
)

// Drains tells whether Envoy, running listener before and sent after
// (the same name), drains connections that may be open on before: it
// closes them once its drain time (--drain-time-s) has passed, HTTP
// connections earlier, between requests. It follows Envoy's listener
// manager: a listener whose fields other than its filter chains changed
// (addresses, socket options; a UDP listener, which has no filter chains,
// on any change) is rebuilt and drained whole; otherwise only the chains
// of before that after does not have (the same message) are drained. A
// refusal chain (the access list's) holds no connection, so losing one
// drains nothing.
func Drains(before, after *listenerv3.Listener) bool {
	if before == nil || after == nil {
		return false
	}
	if len(after.GetFilterChains()) == 0 || !proto.Equal(withoutChains(before), withoutChains(after)) {
		return true
	}
	for _, old := range before.GetFilterChains() {
		if refusal(old) {
			continue
		}
		kept := false
		for _, fc := range after.GetFilterChains() {
			if proto.Equal(old, fc) {
				kept = true
				break
			}
		}
		if !kept {
			return true
		}
	}
	return false
}

func withoutChains(l *listenerv3.Listener) *listenerv3.Listener {
	c := proto.Clone(l).(*listenerv3.Listener)
	c.FilterChains, c.DefaultFilterChain, c.FilterChainMatcher = nil, nil, nil
	return c
}

// refusal tells a chain that closes every connection at once.
func refusal(fc *listenerv3.FilterChain) bool {
	f := fc.GetFilters()
	return len(f) == 1 && f[0].GetName() == directResponseFilter
}
