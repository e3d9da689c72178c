#!/usr/bin/env bash
# Runs every fuzz target (fuzz/, cargo-fuzz layout, libFuzzer) for N
# seconds each, starting from the committed seeds (fuzz/seeds/<target>)
# and the corpus earlier runs grew (fuzz/corpus/<target>, not committed).
# A crash leaves its input in fuzz/artifacts/<target>/ and fails the run.
#
#   scripts/fuzz.sh                    # 20 s per target (CI)
#   scripts/fuzz.sh 600                # ten minutes per target
#   scripts/fuzz.sh 3600 wal_record    # one target, an hour
#   FUZZ_RELEASE=1 scripts/fuzz.sh 600 # optimized build, for long runs
#
# With a nightly toolchain cargo-fuzz runs as usual; without one it runs on
# stable with no sanitizer (`-s none`): the coverage instrumentation
# libFuzzer needs is a stable codegen option, only the sanitizers are not.
# The code has no `unsafe`, so what the sanitizers would add is little;
# panics, overflows (debug assertions are on), timeouts and memory blow-ups
# are caught either way.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-20}
[ $# -gt 0 ] && shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(request_bodies feed_inbound wal_record snapshot_chunk)

command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  toolchain=+nightly
else
  toolchain=+stable
fi
echo "fuzz: ${targets[*]}, ${secs}s each, cargo $toolchain"

cd "$root/fuzz"
# Debug assertions on: overflow is a finding, not a wrap. Unoptimized by
# default (a cold build takes minutes, not tens of minutes, on 2 cores);
# FUZZ_RELEASE=1 builds optimized, for long runs (more executions a second).
fuzz=(cargo "$toolchain" fuzz)
opts=(--sanitizer none --debug-assertions)
[ "${FUZZ_RELEASE:-0}" = 1 ] || opts+=(--dev)
"${fuzz[@]}" build "${opts[@]}"
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  echo "== fuzz $t"
  # -rss_limit_mb: a decoder must not blow up memory on small input;
  # -timeout: nor spin on it.
  "${fuzz[@]}" run "${opts[@]}" "$t" "corpus/$t" "seeds/$t" -- \
    -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1
done
