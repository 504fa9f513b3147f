//go:build !linux

package main

import "os/exec"

// dieWithParent needs Linux's parent-death signal; elsewhere the deferred
// stop and the context's cancellation stop the daemon.
func dieWithParent(*exec.Cmd) {}
