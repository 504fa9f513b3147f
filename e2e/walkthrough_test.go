// Package e2e drives the real lbaasd binary the way its users do.
package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openlbaas/lbaas/internal/pgtest"
	"github.com/openlbaas/lbaas/internal/secrets"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Cleanup()
	os.Exit(code)
}

// repoRoot is the module root (this file lives in e2e/).
func repoRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// buildBinary builds cmd/lbaasd into dir/bin/lbaasd.
func buildBinary(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "bin", "lbaasd")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/lbaasd")
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// daemon is a running lbaasd process.
type daemon struct {
	cmd     *exec.Cmd
	httpURL string
	xdsAddr string
	exited  chan error
	stderr  *syncBuffer // read while the daemon runs
}

var servingLine = regexp.MustCompile(`msg="lbaasd serving" http=(\S+) grpc=(\S+) xds=(\S+) database=(\S+) startup=(\S+)`)

// startDaemon runs `lbaasd serve` in dir on free loopback ports and waits
// for its "serving" log line; extra flags come last (and win).
func startDaemon(t *testing.T, bin, dir string, env []string, extra ...string) *daemon {
	t.Helper()
	// The tests' nodes are on loopback, which lbaasd refuses by default.
	cmd := exec.Command(bin, append([]string{"serve", "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--xds-addr", "127.0.0.1:0",
		"--denied-node-networks", "none"}, extra...)...)
	cmd.Dir = dir
	// Tests poll faster than the default rate limits allow: off unless
	// env turns them on again (the last value of a variable wins).
	cmd.Env = append(append(os.Environ(), "LBAASD_RATE_LIMITS=false"), env...)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, exited: make(chan error, 1), stderr: &syncBuffer{}}
	found := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			line := sc.Text()
			_, _ = d.stderr.Write([]byte(line + "\n"))
			if m := servingLine.FindStringSubmatch(line); m != nil {
				found <- m
			}
		}
		d.exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
	})
	select {
	case m := <-found:
		d.httpURL = "http://" + m[1]
		d.xdsAddr = m[3]
		t.Logf("lbaasd serving on %s (%s), started in %s", m[1], m[4], m[5])
	case err := <-d.exited:
		t.Fatalf("lbaasd exited before serving: %v\n%s", err, d.stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("lbaasd did not start\n%s", d.stderr)
	}
	return d
}

// stop sends SIGTERM and expects a clean exit.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.exited:
		if err != nil {
			t.Errorf("lbaasd did not exit cleanly on SIGTERM: %v\n%s", err, d.stderr)
		}
		if !strings.Contains(d.stderr.String(), "shutting down") {
			t.Errorf("no graceful shutdown logged:\n%s", d.stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("lbaasd ignored SIGTERM\n%s", d.stderr)
	}
}

// walkthrough extracts the README's curl walk-through.
func walkthrough(t *testing.T) string { return readmeBlock(t, "walkthrough") }

// readmeBlock extracts the README's sh block between <!-- name:start -->
// and <!-- name:end -->.
func readmeBlock(t *testing.T, name string) string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)<!-- " + name + ":start -->\\s*```sh\\n(.*?)```\\s*<!-- " + name + ":end -->")
	m := re.FindSubmatch(readme)
	if m == nil {
		t.Fatalf("README.md has no %s block", name)
	}
	return string(m[1])
}

// featureExamples extracts the sh examples of the README's "Load balancer
// features" section, in order, a second apart: at a reader's pace, under
// the default rate limits (10 GETs and PUTs, 5 POSTs a second), which
// examples sent back to back would exceed.
func featureExamples(t *testing.T) string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)\\n## Load balancer features\\n(.*?)\\n## ").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no Load balancer features section")
	}
	var out strings.Builder
	for _, block := range regexp.MustCompile("(?s)```sh\\n(.*?)```").FindAllSubmatch(m[1], -1) {
		out.Write(block[1])
		out.WriteString("sleep 1\n")
	}
	if out.Len() == 0 {
		t.Fatal("the Load balancer features section has no examples")
	}
	return out.String()
}

// The README's walk-through, run as written by bash against the real
// binary: on the embedded SQLite default, and with the database URL
// pointing at Postgres.
func TestREADMEWalkthrough(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"bash", "curl", "jq", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIPPING the README walk-through: %s is not installed (.ci/run installs it)", tool)
		}
	}
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	// The walk-through twice in one shell (it must run again cleanly),
	// then every feature example after it.
	walk := walkthrough(t)
	script := walk + walk + "echo '" + featuresMark + "'\n" + featureExamples(t)

	t.Run("sqlite", func(t *testing.T) {
		runWalkthrough(t, bin, dir, script, nil)
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := pgtest.NewDatabase(t)
		runWalkthrough(t, bin, t.TempDir(), script, []string{"LBAASD_DATABASE_URL=" + dsn, "LBAASD_SECRETS_KEY=" + newSecretsKey(t)})
	})
}

// newSecretsKey is a key-encryption key for the secrets at rest, as
// LBAASD_SECRETS_KEY takes it (a PostgreSQL database needs one).
func newSecretsKey(t *testing.T) string {
	t.Helper()
	key := make([]byte, secrets.KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(key)
}

func runWalkthrough(t *testing.T, bin, dir, script string, env []string) {
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "bin", "lbaasd")); err != nil {
		if err := os.Symlink(bin, filepath.Join(dir, "bin", "lbaasd")); err != nil {
			t.Fatal(err)
		}
	}
	// The walk-through runs as a reader would: with the default rate limits.
	d := startDaemon(t, bin, dir, append([]string{"LBAASD_RATE_LIMITS=true"}, env...))
	// The walk-through names the default address; point it at this daemon.
	script = strings.ReplaceAll(script, "http://127.0.0.1:8080", d.httpURL)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// As a user runs it: bash with the walk-through's own set -e.
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("walk-through failed: %v\n%s\n%s\n--- lbaasd:\n%s", err, stdout.String(), stderr.String(), d.stderr)
	}
	walked, features, found := strings.Cut(stdout.String(), featuresMark+"\n")
	if !found {
		t.Fatalf("the feature examples did not run:\n%s\n%s", stdout.String(), stderr.String())
	}
	// The last JSON document of the walk-through is the load balancer
	// read back.
	docs := splitJSON(t, walked)
	last := docs[len(docs)-1]
	lb, ok := last["loadBalancer"].(map[string]any)
	if !ok {
		t.Fatalf("walk-through ended with %v", last)
	}
	nodes, _ := lb["nodes"].([]any)
	if lb["name"] != "a-new-loadbalancer" || len(nodes) != 3 || lb["status"] != "ACTIVE" {
		t.Errorf("read back %v", lb)
	}
	// Every feature example succeeds: no fault (each waits for the change
	// before it to be applied, or it would get 422).
	for _, doc := range splitJSONAllowEmpty(t, features) {
		if code, ok := doc["code"].(float64); ok && code >= 400 {
			t.Errorf("a feature example got a fault: %v", doc)
		}
	}
	d.stop(t)
}

// featuresMark separates the walk-through's output from the feature
// examples'.
const featuresMark = "=== feature examples"

// splitJSON decodes the stream of JSON documents a script printed, at
// least one.
func splitJSON(t *testing.T, out string) []map[string]any {
	docs := splitJSONAllowEmpty(t, out)
	if len(docs) == 0 {
		t.Fatalf("walk-through printed nothing:\n%s", out)
	}
	return docs
}

func splitJSONAllowEmpty(t *testing.T, out string) []map[string]any {
	dec := json.NewDecoder(strings.NewReader(out))
	var docs []map[string]any
	for dec.More() {
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			t.Fatalf("walk-through printed non-JSON output: %v\n%s", err, out)
		}
		docs = append(docs, doc)
	}
	return docs
}
