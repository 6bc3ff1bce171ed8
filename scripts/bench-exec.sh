#!/usr/bin/env bash
# What `writ exec` adds to running a command directly.
#
# Starts `writ serve` (rate limit off) in a temporary directory, registers an agent, applies the
# example policies plus a permit for the command, sets up a gate (`writ gate init`) and then
# runs the command N times directly and N times through `writ exec -- CMD` (each a full
# request, local verification, consumption with proof of possession, exec, receipt), after a
# warm-up. Prints median and p99 of each, in ms, and the difference. Everything is removed at
# the end.
#
# Usage: scripts/bench-exec.sh            (WRIT=target/release/writ N=200 CMD=/usr/bin/true)
#        ENV_SPEC=1 scripts/bench-exec.sh  (the gate also measures: binds the executable)
set -euo pipefail

WRIT=${WRIT:-target/release/writ}
N=${N:-200}
CMD=${CMD:-/usr/bin/true}
WARMUP=${WARMUP:-20}
HERE=$(cd "$(dirname "$0")/.." && pwd)
WRIT=$(cd "$(dirname "$WRIT")" && pwd)/$(basename "$WRIT")
[ -x "$WRIT" ] || { echo "no writ binary at $WRIT (cargo build --release -p writ)" >&2; exit 64; }

tmp=$(mktemp -d)
server=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

WRIT_LOG=error "$WRIT" serve --listen 127.0.0.1:0 --rate-limit-per-sec 0 \
  --data-dir "$tmp/data" >/dev/null 2>"$tmp/serve.err" &
server=$!
url=
for _ in $(seq 100); do
  url=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$tmp/serve.err" | head -n1)
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { cat "$tmp/serve.err" >&2; exit 69; }
admin=$(cat "$tmp/data/admin.token")
agent=$("$WRIT" principals add bench-agent --role agent --data-dir "$tmp/data" 2>/dev/null)

mkdir "$tmp/policy"
cp "$HERE/crates/policy/examples/writ.cedarschema" "$HERE/crates/policy/examples/entities.json" "$tmp/policy/"
cp "$HERE/crates/policy/examples/policies.cedar" "$tmp/policy/"
cmd_path=$(readlink -f "$CMD")
cat >>"$tmp/policy/policies.cedar" <<CEDAR

@id("allow-bench")
permit (principal, action == Writ::Action::"exec", resource)
when { principal.role == "agent" && resource.path == "$cmd_path" };
CEDAR
"$WRIT" policy apply "$tmp/policy" --url "$url" --token "$admin" >/dev/null

export XDG_CONFIG_HOME="$tmp/cfg"
spec=()
if [ -n "${ENV_SPEC:-}" ]; then
  echo 'env = ["LANG"]' >"$tmp/env.toml"
  spec=(--env-spec "$tmp/env.toml")
fi
WRIT_TOKEN=$admin "$WRIT" gate init --url "$url" --name bench-gate "${spec[@]}" >/dev/null 2>&1

WRIT_TOKEN=$agent python3 - "$WRIT" "$CMD" "$N" "$WARMUP" <<'PY'
import statistics, subprocess, sys, time
writ, cmd, n, warmup = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

def run(argv):
    t = time.perf_counter()
    r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ms = (time.perf_counter() - t) * 1000
    if r.returncode != 0:
        sys.exit(f"{argv} exited {r.returncode}: {r.stderr.decode()}")
    return ms

def measure(argv):
    for _ in range(warmup):
        run(argv)
    xs = sorted(run(argv) for _ in range(n))
    return statistics.median(xs), xs[min(len(xs) - 1, int(len(xs) * 0.99))]

direct = measure([cmd])
gated = measure([writ, "exec", "--", cmd])
print(f"{'':14}{'median ms':>10}{'p99 ms':>10}   ({n} runs each, {cmd})")
print(f"{'direct':14}{direct[0]:10.2f}{direct[1]:10.2f}")
print(f"{'writ exec':14}{gated[0]:10.2f}{gated[1]:10.2f}")
print(f"{'added':14}{gated[0]-direct[0]:10.2f}{gated[1]-direct[1]:10.2f}")
PY
