package gateway_test

import (
	"sync"
	"testing"

	"github.com/openlbaas/lbaas/api"
	"github.com/openlbaas/lbaas/internal/pgtest"
)

// Concurrent creates never exceed the account's limit nor hand out the
// same virtual IP twice.
func TestConcurrentCreates(t *testing.T) {
	limits := api.DefaultLimits
	limits.LoadBalancers = 5
	t.Run("sqlite", func(t *testing.T) { concurrentCreates(t, newEnv(t, withLimits(limits))) })
	t.Run("postgres", func(t *testing.T) {
		concurrentCreates(t, newEnv(t, withLimits(limits), withDatabase(pgtest.NewDatabase(t))))
	})
}

func concurrentCreates(t *testing.T, e *env) {
	const n = 20
	codes := make([]int, n)
	addresses := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, out := e.call("POST", "/loadbalancers", simpleLB)
			codes[i] = code
			if code == 202 {
				vip := out["loadBalancer"].(map[string]any)["virtualIps"].([]any)[0].(map[string]any)
				addresses[i] = vip["address"].(string)
			}
		}()
	}
	wg.Wait()
	created, seen := 0, map[string]bool{}
	for i, code := range codes {
		switch code {
		case 202:
			created++
			if seen[addresses[i]] {
				t.Errorf("virtual IP %s handed out twice", addresses[i])
			}
			seen[addresses[i]] = true
		case 413:
		default:
			t.Errorf("create answered %d", code)
		}
	}
	if created != 5 {
		t.Errorf("%d load balancers created, the limit is 5 (codes %v)", created, codes)
	}
}
