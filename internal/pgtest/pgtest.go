// Package pgtest starts throwaway PostgreSQL servers for tests.
//
// A server is started from the PostgreSQL binaries installed on the machine
// (the highest version under /usr/lib/postgresql/*/bin, or the directory named
// by the PGTEST_BIN_DIR environment variable). It listens on 127.0.0.1 on a
// free TCP port only, trusts every local connection, and runs with durability
// switched off for speed. Everything lives in a fresh directory under
// os.TempDir() that is removed by Stop.
//
// Most tests only need NewDatabase, which returns the DSN of a fresh, empty
// database on a process-wide shared server:
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		pgtest.Cleanup()
//		os.Exit(code)
//	}
//
//	func TestSomething(t *testing.T) {
//		dsn := pgtest.NewDatabase(t)
//		...
//	}
//
// When no PostgreSQL binaries are installed (or the server cannot be
// started), NewDatabase skips the test with a message starting with
// "SKIPPING Postgres test:", unless PGTEST_REQUIRED=1 is set, in which case
// the test fails instead.
//
// PostgreSQL refuses to run as root. When the test process runs as root, initdb
// and postgres are run as the "postgres" system user (through runuser, or su
// when runuser is missing), and the data and socket directories are chowned to
// that user. In that case the directory returned by os.TempDir() and all its
// parents must be traversable by the postgres user.
package pgtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNoPostgres is returned (wrapped) by Start when no PostgreSQL server
// binaries can be found.
var ErrNoPostgres = errors.New("pgtest: no PostgreSQL server binaries found (install the postgresql package)")

const (
	// superuser is the bootstrap superuser created by initdb.
	superuser = "postgres"
	// osUser is the system account used to run PostgreSQL when running as root.
	osUser = "postgres"

	readyTimeout    = 30 * time.Second
	shutdownTimeout = 10 * time.Second
	killWaitTimeout = 5 * time.Second
	portAttempts    = 3
	logTailBytes    = 4096
)

// Server is a running throwaway PostgreSQL server.
type Server struct {
	dir     string // temporary root directory, removed by Stop
	dataDir string
	logPath string
	port    int
	version string // e.g. "15", informational

	cmd       *exec.Cmd     // the process we started (postgres itself, or runuser/su wrapping it)
	postmastr int           // PID of the postmaster itself
	done      chan struct{} // closed when cmd has been waited for
	waitErr   error         // result of cmd.Wait, valid after done is closed
	logFile   *os.File

	stopOnce sync.Once
	stopErr  error
	stopped  atomic.Bool
}

// runAs describes how to run PostgreSQL programs.
type runAs struct {
	root   bool   // running as root: switch to osUser
	uid    int    // osUser's uid (root only)
	gid    int    // osUser's gid (root only)
	runner string // path of runuser, or "" to use su (root only)
	su     string // path of su (root only, when runner == "")
}

// command returns a command that runs prog with args, as osUser when needed.
func (r runAs) command(prog string, args ...string) *exec.Cmd {
	if !r.root {
		return exec.Command(prog, args...)
	}
	if r.runner != "" {
		return exec.Command(r.runner, append([]string{"-u", osUser, "--", prog}, args...)...)
	}
	// su runs its command through a shell; exec so the shell is replaced.
	var sb strings.Builder
	sb.WriteString("exec ")
	sb.WriteString(shellQuote(prog))
	for _, a := range args {
		sb.WriteByte(' ')
		sb.WriteString(shellQuote(a))
	}
	return exec.Command(r.su, osUser, "-s", "/bin/sh", "-c", sb.String())
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Start starts a server in a fresh temporary directory. It returns an error
// (never panics) when no PostgreSQL binaries exist (wrapping ErrNoPostgres) or
// startup fails.
func Start() (srv *Server, err error) {
	defer func() {
		if r := recover(); r != nil {
			srv, err = nil, fmt.Errorf("pgtest: panic while starting PostgreSQL: %v", r)
		}
	}()

	binDir, version, err := findBinDir()
	if err != nil {
		return nil, err
	}
	initdb := filepath.Join(binDir, "initdb")
	postgres := filepath.Join(binDir, "postgres")

	ra, err := runAsConfig()
	if err != nil {
		return nil, err
	}

	dir, err := os.MkdirTemp(os.TempDir(), "pgtest-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: creating temporary directory: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(dir)
		}
	}()
	// The postgres user must be able to traverse the directory.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, fmt.Errorf("pgtest: chmod %s: %w", dir, err)
	}

	dataDir := filepath.Join(dir, "data")
	sockDir := filepath.Join(dir, "sock")
	for _, d := range []string{dataDir, sockDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, fmt.Errorf("pgtest: %w", err)
		}
		if ra.root {
			if err := os.Chown(d, ra.uid, ra.gid); err != nil {
				return nil, fmt.Errorf("pgtest: chown %s to %s: %w", d, osUser, err)
			}
		}
	}

	logPath := filepath.Join(dir, "postgres.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("pgtest: creating log file: %w", err)
	}
	defer func() {
		if !ok {
			_ = logFile.Close()
		}
	}()

	// initdb.
	fmt.Fprintf(logFile, "pgtest: running %s (PostgreSQL %s)\n", initdb, version)
	initCmd := ra.command(initdb,
		"-D", dataDir,
		"--auth=trust",
		"-U", superuser,
		"--encoding=UTF8",
		"--locale=C",
		"-N", // --no-sync (spelled --nosync before PostgreSQL 10)
	)
	initCmd.Dir = dir
	initCmd.Env = childEnv()
	initCmd.Stdout = logFile
	initCmd.Stderr = logFile
	if err := initCmd.Run(); err != nil {
		return nil, fmt.Errorf("pgtest: initdb failed: %w%s", err, logTail(logPath))
	}

	var lastErr error
	for attempt := 0; attempt < portAttempts; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("pgtest: finding a free port: %w", err)
		}
		s := &Server{
			dir:     dir,
			dataDir: dataDir,
			logPath: logPath,
			port:    port,
			version: version,
			logFile: logFile,
			done:    make(chan struct{}),
		}
		fmt.Fprintf(logFile, "pgtest: starting %s on 127.0.0.1:%d\n", postgres, port)
		cmd := ra.command(postgres,
			"-D", dataDir,
			"-p", strconv.Itoa(port),
			"-c", "listen_addresses=127.0.0.1",
			"-c", "unix_socket_directories="+sockDir,
			"-c", "fsync=off",
			"-c", "synchronous_commit=off",
			"-c", "full_page_writes=off",
			"-c", "logging_collector=off",
		)
		cmd.Dir = dir
		cmd.Env = childEnv()
		cmd.Stdout = logFile
		cmd.Stderr = logFile
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Setpgid: true,
			// If the test binary dies without calling Stop, ask the server
			// (or the runuser/su wrapper, which forwards it) to shut down.
			Pdeathsig: syscall.SIGTERM,
		}
		if !ra.root {
			// Fast shutdown when we are postgres's direct parent.
			cmd.SysProcAttr.Pdeathsig = syscall.SIGINT
		}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("pgtest: starting postgres: %w", err)
		}
		s.cmd = cmd
		go func() {
			s.waitErr = cmd.Wait()
			close(s.done)
		}()

		err = s.waitReady()
		if err == nil {
			if ra.root {
				pid, perr := readPostmasterPID(dataDir)
				if perr != nil {
					s.kill()
					return nil, fmt.Errorf("pgtest: %w%s", perr, logTail(logPath))
				}
				s.postmastr = pid
			} else {
				s.postmastr = cmd.Process.Pid
			}
			ok = true
			return s, nil
		}
		s.kill()
		lastErr = err
		if !bindFailed(logPath) {
			break
		}
		// Someone grabbed the port between freePort and postgres binding it; retry.
	}
	return nil, fmt.Errorf("%w%s", lastErr, logTail(logPath))
}

// waitReady waits until the server accepts connections, the process exits, or
// readyTimeout elapses.
func (s *Server) waitReady() error {
	deadline := time.Now().Add(readyTimeout)
	dsn := s.DSN("postgres")
	var lastErr error
	for {
		select {
		case <-s.done:
			return fmt.Errorf("pgtest: postgres exited during startup: %v", s.waitErr)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, dsn)
		if err == nil {
			err = conn.Ping(ctx)
			_ = conn.Close(ctx)
		}
		cancel()
		if err == nil {
			return nil
		}
		lastErr = err
		if time.Now().After(deadline) {
			return fmt.Errorf("pgtest: postgres not ready after %v: %v", readyTimeout, lastErr)
		}
		select {
		case <-s.done:
			return fmt.Errorf("pgtest: postgres exited during startup: %v", s.waitErr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// kill forcibly terminates the server processes and waits (bounded) for the
// started process to be reaped.
func (s *Server) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	pid := s.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGKILL) // our process group (Setpgid)
	if s.postmastr > 0 {
		if pg, err := syscall.Getpgid(s.postmastr); err == nil && pg > 1 {
			_ = syscall.Kill(-pg, syscall.SIGKILL) // su may have put it in its own session
		}
		_ = syscall.Kill(s.postmastr, syscall.SIGKILL)
	}
	_ = s.cmd.Process.Kill()
	select {
	case <-s.done:
	case <-time.After(killWaitTimeout):
	}
}

// DSN returns a postgres:// URL for database name on the server (user
// postgres, sslmode=disable, host 127.0.0.1).
func (s *Server) DSN(name string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(superuser),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)),
		Path:     "/" + name,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Port returns the TCP port the server listens on (on 127.0.0.1).
func (s *Server) Port() int { return s.port }

// Freeze stops every process of the server with SIGSTOP — the postmaster
// first, so that it forks no more, then all its descendants (backends and
// auxiliary processes) — which is how a hung database host looks to its
// clients: connections stay open and new ones are accepted by the kernel,
// but nothing answers. It returns thaw, which resumes them all (SIGCONT)
// and may be called more than once; register it with t.Cleanup so that a
// failing test never leaves the server frozen.
//
// When running as root, the runuser/su wrapper is stopped too, and resumed
// last: seeing its child stop, it would stop itself and stay stopped
// (job-control emulation), and then never reap the server at Stop.
func (s *Server) Freeze() (thaw func(), err error) {
	if s.postmastr <= 0 || s.cmd == nil || s.cmd.Process == nil {
		return nil, errors.New("pgtest: the server's processes are unknown")
	}
	wrapper := s.cmd.Process.Pid
	var stopped []int // in the order they were stopped
	var once sync.Once
	thaw = func() {
		once.Do(func() {
			for i := len(stopped) - 1; i >= 0; i-- {
				_ = syscall.Kill(stopped[i], syscall.SIGCONT)
			}
			// The wrapper (runuser) stops itself when it sees its child
			// stop, possibly after we resumed it, and may stop the child
			// again: resume every one of them until all have run for a
			// while (three checks in a row).
			calm := 0
			for deadline := time.Now().Add(3 * time.Second); calm < 3 && time.Now().Before(deadline); {
				any := false
				for _, pid := range append([]int{wrapper}, stopped...) {
					if processStopped(pid) {
						any = true
						_ = syscall.Kill(pid, syscall.SIGCONT)
					}
				}
				if any {
					calm = 0
				} else {
					calm++
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	stop := func(pid int) error {
		err := syscall.Kill(pid, syscall.SIGSTOP)
		if err == nil {
			stopped = append(stopped, pid)
		}
		return err
	}
	if wrapper != s.postmastr {
		if err := stop(wrapper); err != nil {
			return nil, fmt.Errorf("pgtest: stopping the %s wrapper: %w", filepath.Base(s.cmd.Path), err)
		}
	}
	if err := stop(s.postmastr); err != nil {
		thaw()
		return nil, fmt.Errorf("pgtest: stopping the postmaster: %w", err)
	}
	pids, err := descendants(s.postmastr)
	if err != nil {
		thaw()
		return nil, err
	}
	for _, pid := range pids {
		_ = stop(pid) // one may have exited since
	}
	return thaw, nil
}

// processStopped tells whether pid is stopped (state T in /proc).
func processStopped(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(fields) > 0 && fields[0] == "T"
}

// descendants lists the processes below pid, read from /proc.
func descendants(pid int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("pgtest: listing processes: %w", err)
	}
	children := map[int][]int{}
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone since
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		rest := string(b[bytes.LastIndexByte(b, ')')+1:])
		fields := strings.Fields(rest)
		if len(fields) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(fields[1]); err == nil {
			children[ppid] = append(children[ppid], child)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out, nil
}

var dbCounter atomic.Uint64

// CreateDatabase creates a new empty database with a unique name and returns
// its DSN.
func (s *Server) CreateDatabase(ctx context.Context) (string, error) {
	if s.stopped.Load() {
		return "", errors.New("pgtest: server is stopped")
	}
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	name := fmt.Sprintf("pgtest_%d_%s", dbCounter.Add(1), hex.EncodeToString(rnd[:]))

	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return "", fmt.Errorf("pgtest: connecting to server: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE template0 ENCODING 'UTF8'"); err != nil {
		return "", fmt.Errorf("pgtest: creating database %s: %w", name, err)
	}
	return s.DSN(name), nil
}

// dropDatabase drops the named database, disconnecting its sessions.
func (s *Server) dropDatabase(ctx context.Context, name string) error {
	if s.stopped.Load() {
		return nil
	}
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	q := "DROP DATABASE IF EXISTS " + pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, q+" WITH (FORCE)"); err != nil {
		// WITH (FORCE) needs PostgreSQL 13.
		if _, err2 := conn.Exec(ctx, q); err2 != nil {
			return err
		}
	}
	return nil
}

// Stop stops the server (SIGINT, wait, then SIGKILL after 10 s) and removes
// its directory. It is safe to call more than once; later calls return the
// result of the first.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		s.stopped.Store(true)
		s.stopErr = s.stop()
	})
	return s.stopErr
}

func (s *Server) stop() error {
	var errs []error
	if s.cmd != nil && s.cmd.Process != nil {
		// SIGINT to the postmaster is PostgreSQL's "fast shutdown". The
		// runuser/su wrapper (if any) exits once postgres does.
		target := s.postmastr
		if target <= 0 {
			target = s.cmd.Process.Pid
		}
		_ = syscall.Kill(target, syscall.SIGINT)
		select {
		case <-s.done:
		case <-time.After(shutdownTimeout):
			s.kill()
			errs = append(errs, fmt.Errorf("pgtest: postgres did not shut down within %v; killed it", shutdownTimeout))
		}
	}
	if s.logFile != nil {
		_ = s.logFile.Close()
	}
	if s.dir != "" {
		if err := os.RemoveAll(s.dir); err != nil {
			errs = append(errs, fmt.Errorf("pgtest: removing %s: %w", s.dir, err))
		}
	}
	return errors.Join(errs...)
}

// findBinDir returns the directory holding initdb and postgres, and the
// PostgreSQL version it belongs to (best effort).
func findBinDir() (dir, version string, err error) {
	if d := os.Getenv("PGTEST_BIN_DIR"); d != "" {
		if !hasServerBinaries(d) {
			return "", "", fmt.Errorf("%w: PGTEST_BIN_DIR=%s does not contain initdb and postgres", ErrNoPostgres, d)
		}
		return d, filepath.Base(filepath.Dir(d)), nil
	}

	type cand struct {
		dir string
		ver []int
		raw string
	}
	var cands []cand
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	for _, m := range matches {
		if !hasServerBinaries(m) {
			continue
		}
		raw := filepath.Base(filepath.Dir(m))
		cands = append(cands, cand{dir: m, ver: parseVersion(raw), raw: raw})
	}
	if len(cands) > 0 {
		sort.Slice(cands, func(i, j int) bool { return versionLess(cands[j].ver, cands[i].ver) })
		return cands[0].dir, cands[0].raw, nil
	}

	// Fall back to binaries on PATH (e.g. distributions that install them in /usr/bin).
	if p, err := exec.LookPath("initdb"); err == nil {
		d := filepath.Dir(p)
		if hasServerBinaries(d) {
			return d, "", nil
		}
	}
	return "", "", fmt.Errorf("%w (looked in PGTEST_BIN_DIR, /usr/lib/postgresql/*/bin and PATH)", ErrNoPostgres)
}

func hasServerBinaries(dir string) bool {
	for _, name := range []string{"initdb", "postgres"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			return false
		}
	}
	return true
}

func parseVersion(s string) []int {
	var v []int
	for _, part := range strings.Split(s, ".") {
		n, err := strconv.Atoi(part)
		if err != nil {
			n = -1
		}
		v = append(v, n)
	}
	return v
}

func versionLess(a, b []int) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return len(a) < len(b)
}

// runAsConfig works out whether (and how) to switch to the postgres user.
func runAsConfig() (runAs, error) {
	if os.Geteuid() != 0 {
		return runAs{}, nil
	}
	u, err := user.Lookup(osUser)
	if err != nil {
		return runAs{}, fmt.Errorf("pgtest: running as root but cannot look up the %q user that PostgreSQL must run as: %w", osUser, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return runAs{}, fmt.Errorf("pgtest: bad uid %q for user %s", u.Uid, osUser)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return runAs{}, fmt.Errorf("pgtest: bad gid %q for user %s", u.Gid, osUser)
	}
	ra := runAs{root: true, uid: uid, gid: gid}
	if p, err := lookPath("runuser"); err == nil {
		ra.runner = p
		return ra, nil
	}
	if p, err := lookPath("su"); err == nil {
		ra.su = p
		return ra, nil
	}
	return runAs{}, errors.New("pgtest: running as root but neither runuser nor su is available to switch to the postgres user")
}

// lookPath is exec.LookPath that also tries the sbin directories, which are
// often missing from PATH in containers.
func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

// childEnv is the environment for initdb/postgres: ours, minus libpq/server
// variables that could change their behaviour, with a predictable locale.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "PG") || strings.HasPrefix(k, "LC_") || k == "LANG" || k == "LANGUAGE" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C", "LANG=C")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func readPostmasterPID(dataDir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, fmt.Errorf("reading postmaster.pid: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("bad postmaster.pid contents %q", line)
	}
	return pid, nil
}

func bindFailed(logPath string) bool {
	b, err := os.ReadFile(logPath)
	if err != nil {
		return false
	}
	// Only look at the output of the latest attempt.
	if i := bytes.LastIndex(b, []byte("pgtest: starting ")); i >= 0 {
		b = b[i:]
	}
	return bytes.Contains(b, []byte("could not bind")) || bytes.Contains(b, []byte("Address already in use"))
}

// logTail returns the end of the log file, formatted for appending to an
// error message, or "" if it is empty or unreadable.
func logTail(logPath string) string {
	f, err := os.Open(logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > logTailBytes {
		_, _ = f.Seek(-logTailBytes, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	s := strings.TrimSpace(string(b))
	if s == "" {
		return ""
	}
	return "\n--- postgres log tail ---\n" + s
}

// Shared server.

var errCleanedUp = errors.New("pgtest: the shared server has been stopped by Cleanup")

var shared struct {
	once sync.Once
	mu   sync.Mutex
	srv  *Server
	err  error
}

// Shared returns a process-wide server started once (on first use). Callers
// must not Stop it; call Cleanup from TestMain instead.
func Shared() (*Server, error) {
	shared.once.Do(func() {
		srv, err := Start()
		shared.mu.Lock()
		shared.srv, shared.err = srv, err
		shared.mu.Unlock()
	})
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv != nil && shared.srv.stopped.Load() {
		return nil, errCleanedUp
	}
	return shared.srv, shared.err
}

// Cleanup stops the Shared server if it was started; call it from TestMain
// after m.Run(). It is a no-op otherwise.
func Cleanup() {
	// Waits for a Start in progress; if Shared was never called, marks it as
	// cleaned up so that later calls fail instead of leaking a server.
	shared.once.Do(func() {
		shared.mu.Lock()
		shared.err = errCleanedUp
		shared.mu.Unlock()
	})
	shared.mu.Lock()
	srv := shared.srv
	shared.mu.Unlock()
	if srv != nil {
		if err := srv.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: stopping shared server: %v\n", err)
		}
	}
}

// NewDatabase returns the DSN of a fresh, empty database on the Shared server.
// The database is dropped when the test finishes.
//
// When no server can be had, it skips the test with a message starting with
// "SKIPPING Postgres test:", or fails it if the environment variable
// PGTEST_REQUIRED=1 is set.
func NewDatabase(t testing.TB) string {
	t.Helper()
	srv, err := Shared()
	if err != nil {
		if os.Getenv("PGTEST_REQUIRED") == "1" {
			t.Fatalf("pgtest: PGTEST_REQUIRED=1 but no PostgreSQL server is available: %v", err)
		}
		t.Skipf("SKIPPING Postgres test: %v (set PGTEST_REQUIRED=1 to make this a failure)", err)
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dsn, err := srv.CreateDatabase(ctx)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		u, err := url.Parse(dsn)
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.dropDatabase(ctx, strings.TrimPrefix(u.Path, "/")); err != nil {
			t.Logf("pgtest: dropping test database: %v", err)
		}
	})
	return dsn
}
