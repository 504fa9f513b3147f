package main

// The Envoy fleet phase: N Envoy-like clients per mode connect at once,
// sync the whole fleet, then each change is timed from the start of its
// API call to the moment the last client ACKed a response carrying it.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/procfs"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/openlbaas/lbaas/translator"
)

// Client modes.
const (
	modeGRPC  = "grpc"
	modeDelta = "envoy-delta"
	modeSotW  = "envoy-sotw"
)

// Kinds of change.
const (
	changeNode      = "node"      // a node's condition: EDS only
	changeAlgorithm = "algorithm" // the load balancer's algorithm: CDS only
)

// parseModes reads -mode: grpc alone, or one or both Envoy modes.
func parseModes(s string) ([]string, error) {
	var modes []string
	for _, m := range strings.Split(s, ",") {
		m = strings.TrimSpace(m)
		switch m {
		case modeGRPC, modeDelta, modeSotW:
		default:
			return nil, fmt.Errorf("-mode: %q is not one of grpc, envoy-delta, envoy-sotw", m)
		}
		if slices.Contains(modes, m) {
			return nil, fmt.Errorf("-mode: %q given twice", m)
		}
		modes = append(modes, m)
	}
	if len(modes) > 1 && slices.Contains(modes, modeGRPC) {
		return nil, fmt.Errorf("-mode: grpc runs alone (its changes are timed to ACTIVE, not by content)")
	}
	return modes, nil
}

// parseChanges reads -change.
func parseChanges(s string) ([]string, error) {
	switch s {
	case changeNode, changeAlgorithm:
		return []string{s}, nil
	case "both":
		return []string{changeNode, changeAlgorithm}, nil
	}
	return nil, fmt.Errorf("-change: %q is not one of node, algorithm, both", s)
}

// changer makes the changes on one load balancer, each undoing the
// previous one of its kind, so every change differs from what clients hold.
type changer struct {
	rest      *restClient
	lb        int
	node      int
	port      uint32 // the node's port: it identifies its endpoint
	disabled  bool
	algorithm string
}

func newChanger(ctx context.Context, r *restClient, lb int) (*changer, error) {
	code, b, err := r.do(ctx, "GET", fmt.Sprintf("/loadbalancers/%d/nodes", lb), "")
	if err != nil || code != 200 {
		return nil, fmt.Errorf("list nodes: %d %s %v", code, b, err)
	}
	var out struct {
		Nodes []struct {
			ID   int
			Port uint32
		}
	}
	if err := json.Unmarshal(b, &out); err != nil || len(out.Nodes) == 0 {
		return nil, fmt.Errorf("no nodes: %v", err)
	}
	return &changer{rest: r, lb: lb, node: out.Nodes[0].ID, port: out.Nodes[0].Port}, nil
}

// step is one change: its API call, and how a client recognises it.
type step struct {
	kind, method, path, body string
	typeURL, name            string
	match                    func(*anypb.Any) bool
}

func (c *changer) next(kind string) step {
	name := translator.ResourceName(uint32(c.lb))
	if kind == changeNode {
		c.disabled = !c.disabled
		condition, port, disabled := "ENABLED", c.port, c.disabled
		if disabled {
			condition = "DISABLED"
		}
		return step{kind: kind, method: "PUT", path: fmt.Sprintf("/loadbalancers/%d/nodes/%d", c.lb, c.node),
			body: fmt.Sprintf(`{"node":{"condition":%q}}`, condition), typeURL: resource.EndpointType, name: name,
			// A DISABLED node is absent from the endpoints; an ENABLED one
			// is there and not draining.
			match: func(a *anypb.Any) bool {
				var cla endpointv3.ClusterLoadAssignment
				if a.UnmarshalTo(&cla) != nil {
					return false
				}
				for _, l := range cla.GetEndpoints() {
					for _, e := range l.GetLbEndpoints() {
						if e.GetEndpoint().GetAddress().GetSocketAddress().GetPortValue() == port {
							return !disabled && e.GetHealthStatus() != corev3.HealthStatus_DRAINING
						}
					}
				}
				return disabled
			}}
	}
	algorithm, policy := "ROUND_ROBIN", clusterv3.Cluster_ROUND_ROBIN
	if c.algorithm == algorithm {
		algorithm, policy = "LEAST_CONNECTIONS", clusterv3.Cluster_LEAST_REQUEST
	}
	c.algorithm = algorithm
	return step{kind: kind, method: "PUT", path: fmt.Sprintf("/loadbalancers/%d", c.lb),
		body: fmt.Sprintf(`{"loadBalancer":{"algorithm":%q}}`, algorithm), typeURL: resource.ClusterType, name: name,
		match: func(a *anypb.Any) bool {
			var cl clusterv3.Cluster
			return a.UnmarshalTo(&cl) == nil && cl.GetLbPolicy() == policy
		}}
}

// envoyFleet is the Envoy-like clients of one run, per mode.
type envoyFleet struct {
	modes   []string
	clients map[string][]*envoyClient
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// startFleet starts n clients per mode, spread over the xDS addresses:
// all at once, or spread evenly over connectOver.
func startFleet(ctx context.Context, xdsAddrs []string, fleet string, modes []string, n int, want []string, connectOver time.Duration) *envoyFleet {
	ctx, cancel := context.WithCancel(ctx)
	f := &envoyFleet{modes: modes, clients: map[string][]*envoyClient{}, cancel: cancel}
	for _, m := range modes {
		for i := range n {
			// Spread round robin over the replicas.
			f.clients[m] = append(f.clients[m], newEnvoyClient(envoyClientConfig{addr: xdsAddrs[i%len(xdsAddrs)], fleet: fleet,
				id: fmt.Sprintf("load-%s-%d-%d", m, os.Getpid(), i), delta: m == modeDelta, want: want}))
		}
	}
	all := f.all()
	for i, c := range all {
		delay := connectOver * time.Duration(i) / time.Duration(len(all))
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
			c.run(ctx)
		}()
	}
	return f
}

func (f *envoyFleet) stop() {
	f.cancel()
	f.wg.Wait()
}

func (f *envoyFleet) all() []*envoyClient {
	var all []*envoyClient
	for _, m := range f.modes {
		all = append(all, f.clients[m]...)
	}
	return all
}

// waitSynced waits until every client is in sync.
func (f *envoyFleet) waitSynced(ctx context.Context) error {
	for _, c := range f.all() {
		select {
		case <-c.synced():
		case <-ctx.Done():
			synced := 0
			for _, c := range f.all() {
				if c.syncTime() > 0 {
					synced++
				}
			}
			return fmt.Errorf("initial sync: %d of %d clients in sync: %w", synced, len(f.all()), ctx.Err())
		}
	}
	return nil
}

// resets is the streams that ended in error, and how many of them before
// the client's initial sync, for a mode.
func (f *envoyFleet) resets(mode string) (total, beforeSync int64, last string) {
	for _, c := range f.clients[mode] {
		total += c.resets.Load()
		beforeSync += c.syncResets.Load()
		if s, ok := c.lastErr.Load().(string); ok {
			last = s
		}
	}
	return total, beforeSync, last
}

// changeTimeout bounds the wait for one change to reach every client.
const changeTimeout = 2 * time.Minute

// results are the measurements of the Envoy phase, per mode.
type results struct {
	sync        map[string][]time.Duration            // per client
	convergence map[string]map[string][]time.Duration // per kind, per change
	bytes       map[string]map[string][]int64         // per kind, per change and client
}

func newResults() *results {
	return &results{sync: map[string][]time.Duration{}, convergence: map[string]map[string][]time.Duration{},
		bytes: map[string]map[string][]int64{}}
}

// timeChanges makes n changes one after the other, cycling through kinds,
// and times each per mode.
func timeChanges(ctx context.Context, f *envoyFleet, ch *changer, kinds []string, n int, res *results) error {
	for _, m := range f.modes {
		res.convergence[m] = map[string][]time.Duration{}
		res.bytes[m] = map[string][]int64{}
	}
	for i := range n {
		s := ch.next(kinds[i%len(kinds)])
		before := map[*envoyClient]int64{}
		acked := map[*envoyClient]<-chan time.Time{}
		for _, c := range f.all() {
			before[c] = c.bytes.Load()
			acked[c] = c.expect(s.typeURL, s.name, s.match)
		}
		start := time.Now()
		code, b, err := ch.rest.do(ctx, s.method, s.path, s.body)
		if err != nil || code != 202 {
			return fmt.Errorf("change %d (%s): %d %s %v", i, s.kind, code, b, err)
		}
		wait, cancel := context.WithTimeout(ctx, changeTimeout)
		for _, m := range f.modes {
			var last time.Time
			for _, c := range f.clients[m] {
				select {
				case at := <-acked[c]:
					if at.After(last) {
						last = at
					}
				case <-wait.Done():
					cancel()
					return fmt.Errorf("change %d (%s) not ACKed by every %s client within %s: %w", i, s.kind, m, changeTimeout, wait.Err())
				}
			}
			res.convergence[m][s.kind] = append(res.convergence[m][s.kind], last.Sub(start))
		}
		cancel()
		// Every client has ACKed the change: what each received since its
		// start is what the change caused.
		for _, m := range f.modes {
			for _, c := range f.clients[m] {
				res.bytes[m][s.kind] = append(res.bytes[m][s.kind], c.bytes.Load()-before[c])
			}
		}
		// The next change is refused until the load balancer is ACTIVE.
		if err := ch.rest.waitActive(ctx, ch.lb); err != nil {
			return err
		}
	}
	return nil
}

// timeChangesActive is the proxyless gRPC mode's timing: its clients are
// grpc-go's own, so a change counts from the start of its API call to the
// load balancer turning ACTIVE (every client ACKed it, says the control
// plane).
func timeChangesActive(ctx context.Context, ch *changer, kinds []string, n int) (map[string][]time.Duration, error) {
	out := map[string][]time.Duration{}
	for i := range n {
		s := ch.next(kinds[i%len(kinds)])
		start := time.Now()
		code, b, err := ch.rest.do(ctx, s.method, s.path, s.body)
		if err != nil || code != 202 {
			return out, fmt.Errorf("change %d (%s): %d %s %v", i, s.kind, code, b, err)
		}
		if err := ch.rest.waitActive(ctx, ch.lb); err != nil {
			return out, err
		}
		out[s.kind] = append(out[s.kind], time.Since(start))
	}
	return out, nil
}

// procStats reads a process's memory and CPU from /proc (the daemon's, or this tool's).
type procStats struct{ proc procfs.Proc }

func newProcStats(pid int) (*procStats, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return nil, err
	}
	return &procStats{proc: p}, nil
}

// memory is VmRSS and VmHWM in bytes.
func (d *procStats) memory() (rss, peak uint64, err error) {
	s, err := d.proc.NewStatus()
	return s.VmRSS, s.VmHWM, err
}

// cpu is the user and system CPU seconds used so far.
func (d *procStats) cpu() (float64, error) {
	s, err := d.proc.Stat()
	return s.CPUTime(), err
}

// resetPeak restarts VmHWM from the current RSS (Linux clear_refs 5), so
// the peak covers what follows only. It says whether that worked.
func (d *procStats) resetPeak() bool {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", d.proc.PID), []byte("5"), 0) == nil
}

func quantile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func round(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }

func printLatencies(label string, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	fmt.Printf("  %s, %d changes: p50 %s  p90 %s  p99 %s  max %s\n", label, len(d),
		round(quantile(d, 0.5)), round(quantile(d, 0.9)), round(quantile(d, 0.99)), round(slices.Max(d)))
}

func printBytes(label string, b []int64) {
	if len(b) == 0 {
		return
	}
	var sum int64
	for _, v := range b {
		sum += v
	}
	fmt.Printf("  %s: mean %s  max %s per client and change\n", label, size(sum/int64(len(b))), size(slices.Max(b)))
}

func size(b int64) string {
	switch {
	case b >= 10<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 10<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}

var kindLabel = map[string]string{changeNode: "node condition (EDS)", changeAlgorithm: "algorithm (CDS)"}

func printResults(f *envoyFleet, res *results, kinds []string) {
	for _, m := range f.modes {
		fmt.Printf("%s, %d clients:\n", m, len(f.clients[m]))
		if s := res.sync[m]; len(s) > 0 {
			fmt.Printf("  initial sync (stream open -> every cluster, endpoint, listener and route ACKed): p50 %s  last client %s\n",
				round(quantile(s, 0.5)), round(slices.Max(s)))
		}
		for _, k := range kinds {
			printLatencies("convergence of "+kindLabel[k]+", API call start -> last client ACKed it", res.convergence[m][k])
		}
		for _, k := range kinds {
			printBytes("bytes received for "+kindLabel[k], res.bytes[m][k])
		}
		total, beforeSync, last := f.resets(m)
		fmt.Printf("  stream errors/resets: %d (%d during initial sync)", total, beforeSync)
		if last != "" {
			fmt.Printf("; last: %s", last)
		}
		fmt.Println()
	}
}

// syncTimes collects the clients' initial-sync times per mode.
func syncTimes(f *envoyFleet, res *results) {
	for _, m := range f.modes {
		for _, c := range f.clients[m] {
			res.sync[m] = append(res.sync[m], c.syncTime())
		}
	}
}
