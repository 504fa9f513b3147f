#!/usr/bin/env bash
# bench-api: REST API throughput and latency of a real lbaasd, measured with
# wrk over loopback. Starts ./bin/lbaasd on a fresh SQLite file in a
# temporary directory (or on BENCH_DATABASE_URL, e.g. an empty PostgreSQL
# database), fills it, runs wrk for BENCH_DURATION per scenario with
# BENCH_CONNECTIONS connections and prints one table row per scenario.
# Bounded: the whole run ends within BENCH_TIMEOUT seconds.
#
#   make bench-api                                   # SQLite, 5 s per scenario
#   BENCH_DATABASE_URL=postgres://... make bench-api # an empty PostgreSQL database
#   BENCH_SCENARIOS="get list" make bench-api        # a subset
#   BENCH_PROFILE=create make bench-api              # also a CPU profile of that scenario
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${BENCH_DURATION:-5}
conns=${BENCH_CONNECTIONS:-32}
threads=${BENCH_THREADS:-2}
fill=${BENCH_FILL:-1000}
accounts=${BENCH_ACCOUNTS:-8}
scenarios=${BENCH_SCENARIOS:-floor get list create node-add node-update}
timeout_s=${BENCH_TIMEOUT:-180}
lbaasd=${LBAASD:-./bin/lbaasd}

for tool in wrk curl jq; do
  command -v "$tool" >/dev/null || { echo "bench-api needs $tool (Debian package $tool)" >&2; exit 1; }
done
[ -x "$lbaasd" ] || { echo "bench-api: build $lbaasd first (make build)" >&2; exit 1; }

# The whole run is bounded: a watchdog ends it (and lbaasd) past the timeout.
self=$$
(
  sleep "$timeout_s" >/dev/null 2>&1 & nap=$!
  trap 'kill $nap; exit' TERM
  wait $nap
  echo "bench-api: over ${timeout_s}s, stopping" >&2
  kill -TERM "$self"
) &
watchdog=$!

tmp=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  kill "$watchdog" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' TERM INT

export LBAASD_DATABASE_URL=${BENCH_DATABASE_URL:-$tmp/bench.db}

# start_lbaasd starts lbaasd on four consecutive free loopback ports and
# waits until it answers; it fails if lbaasd exits (e.g. a port was taken
# meanwhile by another process).
busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
start_lbaasd() {
  while :; do
    http=$((20000 + RANDOM % 40000)) grpc=$((http + 1)) xds=$((http + 2)) debug=$((http + 3))
    busy $http || busy $grpc || busy $xds || busy $debug || break
  done
  base=http://127.0.0.1:$http
  # Nodes are loopback addresses (never probed: health checks are off),
  # and the limits are raised (rate limits off) so that the runs do not hit them.
  "$lbaasd" serve --http-addr 127.0.0.1:$http --grpc-addr 127.0.0.1:$grpc --xds-addr 127.0.0.1:$xds \
    --debug-addr 127.0.0.1:$debug --health-checks=false --demo-user=false --denied-node-networks none \
    --limit-loadbalancers 1000000 --limit-nodes 1000 --rate-limits=false --log-level warn 2>"$tmp/lbaasd.log" &
  pid=$!
  for _ in $(seq 100); do
    curl -sf "$base/healthz" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  wait "$pid" 2>/dev/null || true
  pid=
  return 1
}
for attempt in 1 2 3; do
  start_lbaasd && break
  [ $attempt = 3 ] && { cat "$tmp/lbaasd.log" >&2; exit 1; }
done

# The load is spread over BENCH_ACCOUNTS accounts (bench-0, bench-1, ...),
# as a service's load is: changes of one account are serialised.
: >"$tmp/tokens"
for a in $(seq 0 $((accounts - 1))); do
  key=$("$lbaasd" user create --username "bench-$a" --tenant "bench-$a" --log-level warn)
  curl -sf "$base/v2.0/tokens" -H 'Content-Type: application/json' \
    -d '{"auth":{"RAX-KSKEY:apiKeyCredentials":{"username":"bench-'"$a"'","apiKey":"'"$key"'"}}}' |
    jq -r .access.token.id >>"$tmp/tokens"
done
token=$(head -1 "$tmp/tokens")

# Fill: load balancers with 3 nodes each, round robin over the accounts;
# keep "lb node account" for the node scenarios.
create_body='{"loadBalancer":{"name":"bench","port":80,"protocol":"HTTP","virtualIps":[{"type":"PUBLIC"}],"nodes":[
 {"address":"127.0.0.11","port":80,"condition":"ENABLED"},
 {"address":"127.0.0.12","port":80,"condition":"ENABLED"},
 {"address":"127.0.0.13","port":80,"condition":"ENABLED"}]}}'
export create_body base accounts tmp
seq 0 $((fill - 1)) | xargs -P 4 -n 50 sh -c 'for n in "$@"; do
  a=$((n % accounts))
  curl -sf "$base/v1.0/bench-$a/loadbalancers" -H "X-Auth-Token: $(sed -n "$((a + 1))p" "$tmp/tokens")" \
    -H "Content-Type: application/json" -d "$create_body" | jq -r ".loadBalancer | \"\(.id) \(.nodes[0].id) $((a + 1))\""
done' sh >"$tmp/filled"
[ "$(wc -l <"$tmp/filled")" -eq "$fill" ] || { echo "bench-api: fill failed" >&2; cat "$tmp/lbaasd.log" >&2; exit 1; }
first=$(awk '$3 == 1' "$tmp/filled" | sort -n | awk 'NR == 1 {print $1}')
# Wait until the fill is applied (no xDS client is connected: at once).
for _ in $(seq 100); do
  [ "$(curl -sf "$base/v1.0/bench-0/loadbalancers/$first" -H "X-Auth-Token: $token" | jq -r .loadBalancer.status)" = ACTIVE ] && break
  sleep 0.1
done

# The Lua scripts: a common summary line, and the requests of each scenario.
targets=$(awk '{printf "{%s,%s,%s},", $1, $2, $3}' "$tmp/filled")
tokens=$(awk '{printf "\"%s\",", $1}' "$tmp/tokens")
cat >"$tmp/common.lua" <<EOF
targets = {$targets}
tokens = {$tokens}
counter = 0
function setup(thread) thread:set("offset", math.random(#targets)) end
function pick() counter = counter + 1; return targets[(offset + counter) % #targets + 1], counter end
function account(i) return "/v1.0/bench-" .. (i - 1) end
shown = 0
if os.getenv("BENCH_DEBUG") then
  function response(status, headers, body)
    if status >= 300 and shown < 3 then shown = shown + 1; io.stderr:write(status, " ", body, "\\n") end
  end
end
function done(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %.2f %.2f\\n", summary.requests, summary.errors.status,
    summary.duration, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
EOF
cat >"$tmp/get.lua" <<EOF
dofile("$tmp/common.lua")
wrk.headers["X-Auth-Token"] = tokens[1]
wrk.path = account(1) .. "/loadbalancers/$first"
EOF
# floor: an authenticated request that reads no database (the algorithms
# catalogue), through the same server, middleware and gateway: what any
# request costs on this machine with this tool.
cat >"$tmp/floor.lua" <<EOF
dofile("$tmp/common.lua")
wrk.headers["X-Auth-Token"] = tokens[1]
wrk.path = account(1) .. "/loadbalancers/algorithms"
EOF
cat >"$tmp/list.lua" <<EOF
dofile("$tmp/common.lua")
wrk.headers["X-Auth-Token"] = tokens[1]
wrk.path = account(1) .. "/loadbalancers?limit=100"
EOF
cat >"$tmp/create.lua" <<EOF
dofile("$tmp/common.lua")
body = [[$create_body]]
function request()
  counter = counter + 1
  local a = (offset + counter) % #tokens + 1
  return wrk.format("POST", account(a) .. "/loadbalancers",
    {["X-Auth-Token"] = tokens[a], ["Content-Type"] = "application/json"}, body)
end
EOF
cat >"$tmp/node-add.lua" <<EOF
dofile("$tmp/common.lua")
function request()
  local p, n = pick()
  local body = string.format('{"nodes":[{"address":"127.3.%d.%d","port":%d,"condition":"ENABLED"}]}',
    offset % 250, n % 250 + 1, 1000 + n % 60000)
  return wrk.format("POST", account(p[3]) .. "/loadbalancers/" .. p[1] .. "/nodes",
    {["X-Auth-Token"] = tokens[p[3]], ["Content-Type"] = "application/json"}, body)
end
EOF
cat >"$tmp/node-update.lua" <<EOF
dofile("$tmp/common.lua")
function request()
  local p, n = pick()
  return wrk.format("PUT", account(p[3]) .. "/loadbalancers/" .. p[1] .. "/nodes/" .. p[2],
    {["X-Auth-Token"] = tokens[p[3]], ["Content-Type"] = "application/json"},
    string.format('{"node":{"weight":%d}}', n % 100 + 1))
end
EOF

declare -A label=(
  [floor]="no database (algorithms)" [get]="GET one load balancer" [list]="list of 100 load balancers"
  [create]="create with 3 nodes" [node-add]="add a node" [node-update]="update a node"
)
db=sqlite; [[ $LBAASD_DATABASE_URL == postgres* ]] && db=postgres
echo "lbaasd REST API on $db, wrk: $conns connections, $threads threads, ${duration}s per scenario, $accounts accounts, loopback"
# cpu_ticks prints the CPU time lbaasd used so far, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
printf '%-28s %10s %10s %10s %12s %14s\n' scenario "req/s" "p50 ms" "p99 ms" "non-2xx" "lbaasd CPU/req"
for s in $scenarios; do
  [ -f "$tmp/$s.lua" ] || { echo "bench-api: unknown scenario $s" >&2; exit 1; }
  if [ "${BENCH_PROFILE:-}" = "$s" ]; then
    curl -s "http://127.0.0.1:$debug/debug/pprof/profile?seconds=$duration" -o "bench-$s.pprof" &
    prof=$!
  fi
  before=$(cpu_ticks)
  out=$(wrk -t"$threads" -c"$conns" -d"${duration}s" --timeout 10s -s "$tmp/$s.lua" "$base")
  [ "${BENCH_PROFILE:-}" = "$s" ] && wait "$prof" && echo "(CPU profile: bench-$s.pprof)"
  ticks=$(( $(cpu_ticks) - before ))
  read -r requests bad micros p50 p99 < <(grep '^RESULT' <<<"$out" | cut -d' ' -f2-)
  ok=$(( (requests - bad) * 1000000 / micros ))
  printf '%-28s %10d %10s %10s %12d %11d µs\n' "${label[$s]}" "$ok" "$p50" "$p99" "$bad" \
    $(( ticks * 1000000 / hz / (requests > 0 ? requests : 1) ))
done
