#!/usr/bin/env bash
# Runs one libFuzzer target: Fuzz/run.sh TARGET SECONDS [libFuzzer flags...]
#   TARGET is safetensors, sharded-index, qpk, hdf5 or gguf (build first: make fuzz-build).
# The growing corpus lives in Fuzz/.work/corpus/TARGET (seeded from Fuzz/Corpus/TARGET, which is
# never written to); crashers land in Fuzz/.work/artifacts/TARGET/ and the log in Fuzz/.work/logs/.
# Exits non-zero when the run found a crash, leak, timeout or sanitizer report (hdf5: see below).
set -euo pipefail
cd "$(dirname "$0")"
target=$1 seconds=$2; shift 2
case $target in
  safetensors) binary=FuzzSafetensors ;;
  sharded-index) binary=FuzzShardedIndex ;;
  qpk) binary=FuzzQPK ;;
  hdf5) binary=FuzzHDF5 ;;
  gguf) binary=FuzzGGUF ;;
  *) echo "unknown target '$target' (safetensors, sharded-index, qpk, hdf5, gguf)" >&2; exit 2 ;;
esac
bin=${FUZZ_BIN_DIR:-.build/release}/$binary
[ -x "$bin" ] || { echo "$bin missing: run make fuzz-build" >&2; exit 2; }
work=.work
mkdir -p "$work/corpus/$target" "$work/artifacts/$target" "$work/logs"
log="$work/logs/$target.log"
# No leak detection: the only leaks found are not qpk's (swift-foundation's Data(contentsOf:)
# loses its 4 KiB buffer on an empty file; libhdf5 keeps allocations to the end of the process).
export ASAN_OPTIONS="detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
flags=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 -detect_leaks=0
       -artifact_prefix="$work/artifacts/$target/" -print_final_stats=1)
if [ "$target" = hdf5 ]; then
  # libhdf5 1.10.8 crashes and hangs on some inputs by itself (why qpk runs it in a worker
  # process): keep fuzzing past those, then replay every artifact through `qpk validate`.
  # libhdf5 keeps global allocations to the end of the process: no leak detection.
  # A huge declared allocation returns NULL (as in production) instead of an ASan report.
  export ASAN_OPTIONS="$ASAN_OPTIONS:allocator_may_return_null=1"
  flags+=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
fi
echo "fuzzing $target for ${seconds}s (log: Fuzz/$log)"
stamp=$(mktemp)
trap 'rm -f "$stamp"' EXIT
status=0
"$bin" "${flags[@]}" "$@" "$work/corpus/$target" "Corpus/$target" >"$log" 2>&1 || status=$?
grep -E "^(#[0-9]+|Done|stat::)" "$log" | tail -4 || true
if [ "$target" = hdf5 ]; then
  # Only this run's artifacts (earlier ones were replayed by earlier runs).
  mapfile -t new < <(find "$work/artifacts/$target" -type f -newer "$stamp")
  ./replay-hdf5.sh "${new[@]}"
  exit $?
fi
exit $status
