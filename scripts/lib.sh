# Shared by the benchmark scripts (sourced, not run). Expects $root, $port.
# Builds the release binary (or takes $surge_bin, set by the caller to an
# existing build, as is) and sets up a scratch directory; a private server
# on 127.0.0.1:$port is stopped on exit.

if [ -n "${surge_bin:-}" ]; then
  surge=$surge_bin
else
  cargo build --release --quiet --manifest-path "$root/Cargo.toml"
  surge=$root/target/release/surge
fi
work=$(mktemp -d)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# start_surge [VAR=value ...]: a fresh server on empty data, with these
# settings in its environment; returns once /healthz answers.
start_surge() {
  rm -rf "$work/data"
  env SURGE_LOG=warn "$@" "$surge" serve --data-dir "$work/data" --listen "127.0.0.1:$port" &
  server=$!
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "surge did not start" >&2; exit 1
}

stop_surge() { kill -TERM "$server"; wait "$server" || true; server=""; }

# A TCP port free on 127.0.0.1 right now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The median of the numbers on stdin, one per line.
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
