#!/usr/bin/env bash
# Where does each HDF5 artifact crash in-process? Runs it once in the FuzzHDF5 binary and prints
# the sanitizer's summary and the first stack frame outside the sanitizer runtime, so crashes in
# qpk's own code (to fix) stand apart from libhdf5's (contained by the worker isolation).
# Usage: Fuzz/triage-hdf5.sh FILE...   (FUZZ_BIN_DIR overrides Fuzz/.build/release)
set -uo pipefail
bin=${FUZZ_BIN_DIR:-$(dirname "$0")/.build/release}/FuzzHDF5
for f in "$@"; do
  out=$(ASAN_OPTIONS=allocator_may_return_null=1 timeout -s KILL 30 "$bin" -detect_leaks=0 -timeout=10 "$f" 2>&1)
  summary=$(grep -m1 -E "^SUMMARY|ERROR: libFuzzer: timeout|Killed" <<<"$out" | cut -c1-110)
  frame=$(grep -E "^ +#[0-9]+ " <<<"$out" | grep -v -E "compiler-rt|libclang_rt|libFuzzer|/llvm-project/" | head -n 1 | sed -E 's/^ +#[0-9]+ 0x[0-9a-f]+ in //' | cut -c1-110)
  [ -z "$summary" ] && summary="no crash in-process (${#out} bytes of output)"
  echo "$(basename "$f"): ${summary} | ${frame:-?}"
done
