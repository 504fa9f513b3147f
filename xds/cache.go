// Package xds serves load balancer configuration to the data plane over
// xDS (ADS, state of the world and delta) with go-control-plane, and
// tracks what every connected client has acknowledged. It knows nothing of
// HTTP or the database: it is given Envoy resources per store revision and
// reports which changes each fleet has applied or rejected.
package xds

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/log"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// Kind is a kind of data plane; each gets its own variant of the resources.
type Kind string

const (
	// KindEnvoy is an Envoy proxy: listeners on the virtual IPs.
	KindEnvoy Kind = "envoy"
	// KindGRPC is a proxyless gRPC client: API listeners.
	KindGRPC Kind = "grpc"
)

// Group is what a client reads: the resources of one fleet for one kind.
type Group struct {
	Fleet string
	Kind  Kind
}

// GroupOf places a client: its fleet is the xDS node's cluster, its kind
// follows the user agent (grpc-go says "gRPC Go").
func GroupOf(n *corev3.Node, defaultFleet string) Group {
	g := Group{Fleet: n.GetCluster(), Kind: KindEnvoy}
	if g.Fleet == "" {
		g.Fleet = defaultFleet
	}
	if strings.HasPrefix(strings.ToLower(n.GetUserAgentName()), "grpc") {
		g.Kind = KindGRPC
	}
	return g
}

// TypeOrder is the order resources are published in on ADS: clusters
// before endpoints before listeners before routes, so that nothing refers
// to what a client has not received yet.
var TypeOrder = []string{resource.ClusterType, resource.EndpointType, resource.ListenerType, resource.RouteType}

// Update is the change to one group's resources at a revision.
type Update struct {
	// Upsert holds new or changed resources by type URL and name.
	Upsert map[string]map[string]types.Resource
	// Remove holds removed resource names by type URL.
	Remove map[string][]string
}

// Cache holds, per group and type, a go-control-plane linear cache. A
// linear cache updates and notifies per resource, so the cost of a change
// does not grow with the number of load balancers, and delta clients get
// only what changed. Every version a cache hands out is mapped to the
// store revision it reflects, which is how acknowledgements become
// load balancer status.
type Cache struct {
	defaultFleet string
	prefix       string
	logger       log.Logger

	mu       sync.Mutex
	groups   map[Group]map[string]*typeCache
	revision int64
}

type typeCache struct {
	linear  *cache.LinearCache
	updates uint64 // mirrors the linear cache's version counter
	// revAt maps a version to the newest revision at which it was current.
	revAt map[string]int64
	order []string // versions in revAt, oldest first, to bound it
}

// maxVersions bounds revAt; an acknowledgement of an older version counts
// as revision 0 (that client is far behind anyway).
const maxVersions = 256

// NewCache returns an empty cache whose versions start from revision.
func NewCache(defaultFleet string, revision int64, logger log.Logger) *Cache {
	return &Cache{
		defaultFleet: defaultFleet,
		prefix:       "r" + strconv.FormatInt(revision, 10) + ".",
		logger:       logger,
		groups:       map[Group]map[string]*typeCache{},
		revision:     revision,
	}
}

func (c *Cache) typeCache(g Group, typeURL string) *typeCache {
	caches := c.groups[g]
	if caches == nil {
		caches = map[string]*typeCache{}
		c.groups[g] = caches
	}
	tc := caches[typeURL]
	if tc == nil {
		tc = &typeCache{
			linear: cache.NewLinearCache(typeURL, cache.WithVersionPrefix(c.prefix), cache.WithLogger(c.logger)),
			revAt:  map[string]int64{},
		}
		tc.mark(c.version(tc), c.revision)
		caches[typeURL] = tc
	}
	return tc
}

func (c *Cache) version(tc *typeCache) string {
	return c.prefix + strconv.FormatUint(tc.updates, 10)
}

func (tc *typeCache) mark(version string, rev int64) {
	if _, ok := tc.revAt[version]; !ok {
		tc.order = append(tc.order, version)
		if len(tc.order) > maxVersions {
			delete(tc.revAt, tc.order[0])
			tc.order = tc.order[1:]
		}
	}
	tc.revAt[version] = rev
}

// Apply publishes the updates of one store revision, in TypeOrder for
// additions and the reverse for removals, and marks every cache as current
// at that revision.
func (c *Cache) Apply(revision int64, updates map[Group]*Update) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for g, u := range updates {
		for _, typeURL := range TypeOrder {
			if len(u.Upsert[typeURL]) > 0 {
				errs = append(errs, c.update(g, typeURL, u.Upsert[typeURL], nil))
			}
		}
		for i := len(TypeOrder) - 1; i >= 0; i-- {
			if typeURL := TypeOrder[i]; len(u.Remove[typeURL]) > 0 {
				errs = append(errs, c.update(g, typeURL, nil, u.Remove[typeURL]))
			}
		}
	}
	if revision > c.revision {
		c.revision = revision
	}
	for _, caches := range c.groups {
		for _, tc := range caches {
			tc.mark(c.version(tc), c.revision)
		}
	}
	return errors.Join(errs...)
}

func (c *Cache) update(g Group, typeURL string, upsert map[string]types.Resource, remove []string) error {
	tc := c.typeCache(g, typeURL)
	tc.updates++
	return tc.linear.UpdateResources(upsert, remove)
}

// Revision is the newest revision applied.
func (c *Cache) Revision() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.revision
}

// RevisionOf returns the store revision a version handed out to a group
// reflects, or 0 when it is unknown.
func (c *Cache) RevisionOf(g Group, typeURL, version string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if tc := c.groups[g][typeURL]; tc != nil {
		return tc.revAt[version]
	}
	return 0
}

// Resources returns a copy of one group's resources of a type.
func (c *Cache) Resources(g Group, typeURL string) map[string]types.Resource {
	c.mu.Lock()
	tc := c.typeCache(g, typeURL)
	c.mu.Unlock()
	return tc.linear.GetResources()
}

func (c *Cache) forNode(n *corev3.Node, typeURL string) (*cache.LinearCache, error) {
	if typeURL == "" {
		return nil, fmt.Errorf("xds: request without a type URL")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch typeURL {
	case resource.ClusterType, resource.EndpointType, resource.ListenerType, resource.RouteType:
		return c.typeCache(GroupOf(n, c.defaultFleet), typeURL).linear, nil
	}
	return nil, fmt.Errorf("xds: type %s is not served", typeURL)
}

// CreateWatch implements cache.ConfigWatcher.
func (c *Cache) CreateWatch(req *cache.Request, sub cache.Subscription, ch chan cache.Response) (func(), error) {
	lc, err := c.forNode(req.GetNode(), req.GetTypeUrl())
	if err != nil {
		return nil, err
	}
	return lc.CreateWatch(req, sub, ch)
}

// CreateDeltaWatch implements cache.ConfigWatcher.
func (c *Cache) CreateDeltaWatch(req *cache.DeltaRequest, sub cache.Subscription, ch chan cache.DeltaResponse) (func(), error) {
	lc, err := c.forNode(req.GetNode(), req.GetTypeUrl())
	if err != nil {
		return nil, err
	}
	return lc.CreateDeltaWatch(req, sub, ch)
}

// Fetch implements cache.ConfigFetcher: REST polling is not offered.
func (c *Cache) Fetch(context.Context, *cache.Request) (cache.Response, error) {
	return nil, errors.New("xds: fetch is not supported; use a stream")
}

var _ cache.Cache = (*Cache)(nil)
