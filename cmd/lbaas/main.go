// Command lbaas is the command-line client of the load balancer API; see
// internal/cli and the README's "Command-line client" section.
package main

import "github.com/openlbaas/lbaas/internal/cli"

func main() { cli.Run() }
