package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium is the browser's binary: $CHROMIUM_BIN, else Debian's chromium
// on PATH. Without one the test skips loudly (CI installs it and sets
// CHROMIUM_REQUIRED=1, so there it fails instead).
func chromium(t *testing.T) string {
	t.Helper()
	return findTool(t, "CHROMIUM_BIN", "CHROMIUM_REQUIRED", []string{"chromium", "chromium-browser"},
		"the web console's browser test: no chromium on PATH (apt-get install chromium, or set CHROMIUM_BIN)")
}

// artifacts is where the test keeps its screenshots: $LBAAS_ARTIFACTS/name
// when set (.ci/run sets it to ./artifacts), else a temporary directory.
func artifacts(t *testing.T, name string) string {
	t.Helper()
	dir := t.TempDir()
	if base := os.Getenv("LBAAS_ARTIFACTS"); base != "" {
		dir = filepath.Join(base, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// The web console in a real headless Chromium against the real lbaasd:
// sign in, a refused create with the fault beside its field, create, add
// a node (a real gRPC server on loopback), see the load balancer ACTIVE
// and the node ONLINE, then real traffic (a proxyless grpc-go client,
// whose load reports lbaasd aggregates) shows in the requests plot
// without reloading the page. Each page's screenshot is kept.
func TestConsoleBrowser(t *testing.T) {
	t.Parallel()
	browserBin := chromium(t)
	shots := artifacts(t, "console")
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	d := startDaemon(t, bin, dir, nil, "--load-report-interval", "200ms", "--console-refresh", "1s")
	create := exec.Command(bin, "user", "create", "--username", "web", "--tenant", "777")
	create.Dir = dir
	key, err := create.Output()
	if err != nil {
		t.Fatalf("user create: %v", err)
	}
	be := startBackend(t, "web")
	began := time.Now()
	defer func() { t.Logf("the browser's part took %s", time.Since(began).Round(time.Millisecond)) }()

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browserBin), chromedp.NoSandbox, chromedp.WindowSize(1280, 1000),
		chromedp.UserDataDir(filepath.Join(dir, "chromium")))...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	defer cancelTimeout()

	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v\nlbaasd:\n%s", what, err, d.stderr.String())
		}
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return s
	}
	attr := func(sel, name string) string {
		t.Helper()
		a, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(sel), name))
		if err != nil {
			t.Fatalf("read %s of %s: %v", name, sel, err)
		}
		return a.Value
	}
	// waitFor reads the page (which refreshes its live parts by itself)
	// until ok accepts the text of sel.
	waitFor := func(what, sel string, ok func(string) bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			s, err := chromedp.Run(ctx, chromedp.Evaluate[string](
				fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ""`, sel)))
			if err == nil && ok(strings.TrimSpace(s)) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %q (%v)\nlbaasd:\n%s", what, s, err, d.stderr.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// Sign in with the keyboard only: type the name, Tab to the key, Enter.
	run("sign in",
		chromedp.Navigate(d.httpURL+"/console/"),
		chromedp.WaitVisible(chromedp.ID("signin-username")),
		chromedp.SendKeys(chromedp.ID("signin-username"), "web\t"+strings.TrimSpace(string(key))),
	)
	shot("1-signin")
	run("submit the sign-in form with Enter",
		chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(chromedp.ID("lb-list")),
		chromedp.Click(chromedp.CSS(`a[href="/console/loadbalancers/new"]`)),
		chromedp.WaitVisible(chromedp.ID("create-name")),
	)

	// A refused create shows the API's fault beside the field it names.
	run("a refused create",
		chromedp.SendKeys(chromedp.ID("create-name"), "web"),
		chromedp.SetValue(chromedp.ID("create-port"), "70000"),
		chromedp.Submit(chromedp.ID("create-name")),
		chromedp.WaitVisible(chromedp.ID("create-port-error")),
	)
	shot("2-create-refused")
	if got := text("#create-port-error"); got != "loadBalancer.port: must be a port number from 1 to 65535 (got 70000)" {
		t.Fatalf("the fault beside the port: %q", got)
	}

	run("create",
		chromedp.SetValue(chromedp.ID("create-port"), "80"),
		chromedp.Submit(chromedp.ID("create-name")),
		chromedp.WaitVisible(chromedp.ID("lb-status")),
	)
	location, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	var lbID int
	if _, err := fmt.Sscanf(location, d.httpURL+"/console/loadbalancers/%d", &lbID); err != nil {
		t.Fatalf("after create the browser is at %s", location)
	}
	// The status turns ACTIVE by itself: the page refreshes its live parts.
	waitFor("the new load balancer turns ACTIVE", "#lb-status .status", func(s string) bool { return s == "ACTIVE" })

	run("add a node",
		chromedp.SendKeys(chromedp.ID("nodes-node-address"), "127.0.0.1"),
		chromedp.SendKeys(chromedp.ID("nodes-node-port"), fmt.Sprint(be.port)),
		chromedp.Submit(chromedp.ID("nodes-node-address")),
		chromedp.WaitVisible(chromedp.CSS("#nodes tr[data-node]")),
	)
	waitFor("ACTIVE again with the node", "#lb-status .status", func(s string) bool { return s == "ACTIVE" })
	// Every control of the page has a label.
	unlabelled, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("input:not([type=hidden]), select, textarea")]
		.filter(e => !e.labels || e.labels.length === 0).map(e => e.name)`))
	if err != nil || len(unlabelled) > 0 {
		t.Errorf("controls without a label: %v (%v)", unlabelled, err)
	}
	waitFor("the node is ONLINE", "#nodes .node-status", func(s string) bool { return s == "ONLINE" })
	if got := text("#nodes .condition"); got != "ENABLED" {
		t.Errorf("node condition %q", got)
	}
	shot("3-loadbalancer")

	// Real traffic through the load balancer, 3 calls failing: the plot
	// shows it at a later refresh, without reloading the page.
	refreshedBefore := attr("main", "data-refreshed")
	c := newProxyless(t, bin, d, "console-traffic").dial(lbID)
	be.failNext.Store(3)
	if failed := calls(t, c, 20); failed != 3 {
		t.Fatalf("%d of 20 calls failed, want 3", failed)
	}
	waitFor("the requests plot shows the traffic", "#chart-requests .legend", func(s string) bool {
		return strings.Contains(s, "Requests: 20") && strings.Contains(s, "Errors: 3")
	})
	if series := attr("#chart-requests svg", "data-series"); series != "Requests=20 Errors=3" {
		t.Errorf("the requests plot's series: %q", series)
	}
	if got, want := attr("#plots", "data-source"), plotSource(t, newAPI(t, bin, dir, d), lbID); got != want {
		t.Errorf("the plots come from %q, want %q", got, want)
	}
	if after := attr("main", "data-refreshed"); after == refreshedBefore {
		t.Errorf("the page was not refreshed in place (data-refreshed %q)", after)
	}
	lines, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#chart-requests polyline").length`))
	if err != nil || lines != 2 {
		t.Errorf("%d lines in the requests plot (%v), want 2", lines, err)
	}
	run("scroll to the plots", chromedp.ScrollIntoView(chromedp.ID("plots")))
	shot("4-traffic")

	// A feature edited in the console: a health monitor (CONNECT, every
	// second). The node's backend stops; its live status turns OFFLINE and
	// the monitor's event shows, without a reload.
	run("set a health monitor",
		chromedp.SetValue(chromedp.ID("healthmonitor-type"), "CONNECT"),
		chromedp.SetValue(chromedp.ID("healthmonitor-delay"), "1"),
		chromedp.SetValue(chromedp.ID("healthmonitor-timeout"), "1"),
		chromedp.SetValue(chromedp.ID("healthmonitor-attemptsBeforeDeactivation"), "1"),
		chromedp.Submit(chromedp.ID("healthmonitor-type")),
		chromedp.WaitVisible(chromedp.ID("lb-status")),
	)
	if got := attr("#healthmonitor-type option[selected]", "value"); got != "CONNECT" {
		t.Errorf("the health monitor's type after saving: %q", got)
	}
	waitFor("ACTIVE with the monitor", "#lb-status .status", func(s string) bool { return s == "ACTIVE" })
	be.srv.Stop()
	waitFor("the node turns OFFLINE", "#nodes .node-status", func(s string) bool { return s == "OFFLINE" })
	waitFor("the monitor's event", "#events", func(s string) bool { return strings.Contains(s, "status changed to 'OFFLINE'") })
	run("scroll to the nodes", chromedp.ScrollIntoView(chromedp.ID("nodes")))
	shot("5-node-offline")

	// More features: an access-list entry, listed once added; an error
	// page, shown once set.
	run("add an access-list entry",
		chromedp.SendKeys(chromedp.ID("accesslist-address"), "192.0.2.0/24"),
		chromedp.SetValue(chromedp.ID("accesslist-type"), "DENY"),
		chromedp.Submit(chromedp.ID("accesslist-address")),
		chromedp.WaitVisible(chromedp.CSS("#accesslist tr[data-item]")),
	)
	if got := text("#accesslist tr[data-item]"); !strings.Contains(got, "DENY") || !strings.Contains(got, "192.0.2.0/24") {
		t.Errorf("the access list shows %q", got)
	}
	waitFor("ACTIVE with the access list", "#lb-status .status", func(s string) bool { return s == "ACTIVE" })
	const errorPage = "<h1>Back soon</h1>"
	// The page is marked, so that the one read after saving is the new one.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.body.dataset.before = "1"; true`)); err != nil {
		t.Fatal(err)
	}
	run("set an error page",
		chromedp.SetValue(chromedp.ID("errorpage-content"), errorPage),
		chromedp.Submit(chromedp.ID("errorpage-content")),
		chromedp.WaitVisible(chromedp.CSS("body:not([data-before]) #lb-status")),
	)
	if got, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID("errorpage-content"))); err != nil || got != errorPage {
		t.Errorf("the error page after saving: %q (%v)", got, err)
	}
	waitFor("ACTIVE with the error page", "#lb-status .status", func(s string) bool { return s == "ACTIVE" })
	run("scroll to the features", chromedp.ScrollIntoView(chromedp.ID("features-h")))
	shot("7-features")

	run("the list", chromedp.Navigate(d.httpURL+"/console/"), chromedp.WaitVisible(chromedp.CSS("#lb-list table")))
	shot("6-list")
	if got := text("#lb-list td .status"); got != "ACTIVE" {
		t.Errorf("list status %q", got)
	}

	// Delete it, through the confirmation page (no script dialog).
	run("delete the load balancer",
		chromedp.Navigate(fmt.Sprintf("%s/console/loadbalancers/%d", d.httpURL, lbID)),
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`a[href="/console/loadbalancers/%d/delete"]`, lbID))),
		chromedp.WaitVisible(chromedp.CSS("button.danger")),
	)
	shot("8-delete")
	run("confirm", chromedp.Click(chromedp.CSS("button.danger")), chromedp.WaitVisible(chromedp.ID("lb-list")))
	if got := text("#lb-list"); !strings.Contains(got, "PENDING_DELETE") && !strings.Contains(got, "DELETED") && !strings.Contains(got, "No load balancers yet") {
		t.Errorf("after the delete the list shows %q", got)
	}
}

// consoleSignIn signs in to the console over plain HTTP (its pages are
// rendered on the server: what a browser shows is in the HTML).
func consoleSignIn(t *testing.T, base, user, key string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	res, err := c.PostForm(base+"/console/signin", url.Values{"username": {user}, "apiKey": {key}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Request.URL.Path != "/console/" {
		t.Fatalf("console sign-in: %d at %s", res.StatusCode, res.Request.URL)
	}
	return c
}

func consolePage(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	res, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d\n%s", u, res.StatusCode, b)
	}
	return string(b)
}

// plotSource is where the console's plots must come from: the statistics
// history where the API serves it, else readings of /stats.
func plotSource(t *testing.T, a *api, lbID int) string {
	t.Helper()
	req, _ := http.NewRequest("GET", a.base+a.lbPath(lbID, "/stats/history?window=hour"), nil)
	req.Header.Set("X-Auth-Token", a.token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	switch res.StatusCode {
	case http.StatusOK:
		return "history"
	case http.StatusNotFound:
		return "sampled"
	}
	t.Fatalf("GET .../stats/history: %d", res.StatusCode)
	return ""
}
