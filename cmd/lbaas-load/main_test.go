package main

import (
	"strings"
	"testing"
	"time"
)

// Every bound is enforced with a message naming the flag.
func TestConfigBounds(t *testing.T) {
	good := config{loadBalancers: 10_000, nodes: 10, mode: "envoy-delta", clients: 500, change: "both", changes: 200,
		workers: 8, debugAddr: "127.0.0.1:6061", maxDuration: 30 * time.Minute, replicas: 3}
	if err := good.check(); err != nil {
		t.Fatalf("good config refused: %v", err)
	}
	for flag, bad := range map[string]func(*config){
		"-clients":        func(c *config) { c.clients = maxClients + 1 },
		"-load-balancers": func(c *config) { c.loadBalancers = 0 },
		"-changes":        func(c *config) { c.changes = maxChanges + 1 },
		"-nodes":          func(c *config) { c.nodes = 26 },
		"-workers":        func(c *config) { c.workers = 0 },
		"-mode":           func(c *config) { c.mode = "grpc,envoy-sotw" },
		"-change":         func(c *config) { c.change = "weight" },
		"-max-duration":   func(c *config) { c.maxDuration = 2 * time.Hour },
		"-connect-over":   func(c *config) { c.connectOver = time.Hour },
		"-debug-addr":     func(c *config) { c.debugAddr = "0.0.0.0:6061" },
		"-replicas":       func(c *config) { c.replicas = maxReplicas + 1 },
	} {
		c := good
		bad(&c)
		if err := c.check(); err == nil || !strings.Contains(err.Error(), flag+":") {
			t.Errorf("%s out of bounds: error %v", flag, err)
		}
	}
}
