package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel stop the daemon if this tool dies without
// cleaning up (SIGKILL included).
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
