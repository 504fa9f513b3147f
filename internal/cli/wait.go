package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"
)

// waitFlags are --wait and --wait-timeout, which every mutation has.
type waitFlags struct {
	wait    bool
	timeout time.Duration
}

func addWaitFlags(cmd *cobra.Command, w *waitFlags) {
	cmd.Flags().BoolVarP(&w.wait, "wait", "w", false, "wait until the load balancer is ACTIVE again (exit 4 on ERROR or timeout)")
	cmd.Flags().DurationVar(&w.timeout, "wait-timeout", 5*time.Minute, "how long --wait waits")
}

// WaitError is a wait that ended without the load balancer ACTIVE: on
// ERROR (with the data plane's description) or at the timeout.
type WaitError struct {
	ID          string
	Status      string
	Description string
	TimedOut    bool
}

func (e *WaitError) Error() string {
	if e.TimedOut {
		return fmt.Sprintf("load balancer %s still %s when the wait timed out", e.ID, e.Status)
	}
	msg := fmt.Sprintf("load balancer %s is %s", e.ID, e.Status)
	if e.Description != "" {
		msg += ": " + e.Description
	}
	return msg
}

// progress shows a spinner line on a terminal and nothing otherwise.
type progress struct {
	w     io.Writer
	tty   bool
	frame int
	start time.Time
}

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

func newProgress(w io.Writer) *progress {
	f, ok := w.(*os.File)
	return &progress{w: w, tty: ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())), start: time.Now()}
}

func (p *progress) update(msg string) {
	if !p.tty {
		return
	}
	p.frame++
	fmt.Fprintf(p.w, "\r\033[K%s %s (%s)", spinner[p.frame%len(spinner)], msg, time.Since(p.start).Round(time.Second))
}

func (p *progress) done(msg string) {
	if !p.tty {
		return
	}
	fmt.Fprintf(p.w, "\r\033[K")
	if msg != "" {
		fmt.Fprintf(p.w, "%s (%s)\n", msg, time.Since(p.start).Round(100*time.Millisecond))
	}
}

// waitActive polls the load balancer until it is ACTIVE (nil), ERROR or
// the timeout; gone=true waits for its deletion instead.
func (a *app) waitActive(ctx context.Context, id string, w waitFlags, gone bool) error {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	p := newProgress(a.stderr)
	status := "unknown"
	for delay := 200 * time.Millisecond; ; delay = min(delay*3/2, time.Second) {
		raw, err := a.client.Do(ctx, http.MethodGet, "/loadbalancers/"+id, nil, nil)
		var apiErr *APIError
		switch {
		case gone && errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound:
			p.done("Load balancer " + id + " is deleted")
			return nil
		case ctx.Err() != nil:
			p.done("")
			return &WaitError{ID: id, Status: status, TimedOut: true}
		case err != nil:
			p.done("")
			return err
		}
		var lb struct {
			LoadBalancer struct {
				Status            string `json:"status"`
				StatusDescription string `json:"statusDescription"`
			} `json:"loadBalancer"`
		}
		_ = json.Unmarshal(raw, &lb)
		status = lb.LoadBalancer.Status
		switch {
		case status == "ACTIVE" && !gone:
			p.done("Load balancer " + id + " is ACTIVE")
			return nil
		case status == "DELETED" && gone:
			p.done("Load balancer " + id + " is deleted")
			return nil
		case status == "ERROR" || status == "SUSPENDED" || (status == "DELETED" && !gone):
			p.done("")
			return &WaitError{ID: id, Status: status, Description: lb.LoadBalancer.StatusDescription}
		}
		p.update("Load balancer " + id + ": " + status)
		select {
		case <-ctx.Done():
			p.done("")
			return &WaitError{ID: id, Status: status, TimedOut: true}
		case <-time.After(delay):
		}
	}
}

// idArg checks that an argument is a positive integer id.
func idArg(name, s string) (string, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 {
		return "", usageErrorf("%s %q: not an id (a positive integer)", name, s)
	}
	return s, nil
}
