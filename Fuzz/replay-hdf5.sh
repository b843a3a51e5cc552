#!/usr/bin/env bash
# Replays HDF5 fuzzing artifacts (files that crashed, hung or exhausted memory in the in-process
# FuzzHDF5 target, which runs the reader with libhdf5 unisolated) through the real `qpk validate`,
# which isolates libhdf5 in a worker process. Each must end with exit 0 or 1 and a report naming
# the file, within 60 s: then qpk's isolation held. Usage: Fuzz/replay-hdf5.sh DIR_OR_FILE...
# Needs the release binary (make release); QPK_BIN overrides it.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
qpk=${QPK_BIN:-$root/.build/release/qpk}
[ -x "$qpk" ] || { echo "$qpk missing: run make release" >&2; exit 2; }
files=()
for arg in "$@"; do
  if [ -d "$arg" ]; then
    while IFS= read -r f; do files+=("$f"); done < <(find "$arg" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name '*.h5' \) | sort)
  elif [ -f "$arg" ]; then files+=("$arg"); fi
done
failed=0
for f in "${files[@]}"; do
  out=$(QPK_HDF5_STALL_SECONDS=5 timeout -s KILL 60 "$qpk" validate "$f" 2>&1); status=$?
  if { [ $status -eq 0 ] || [ $status -eq 1 ]; } && grep -qF "$(basename "$f")" <<<"$out"; then
    echo "held  ($status) $f: $(head -n 1 <<<"$out" | cut -c1-160)"
  else
    echo "FAILED ($status) $f: $(head -n 3 <<<"$out")"
    failed=1
  fi
done
echo "replayed ${#files[@]} HDF5 artifact(s) through qpk validate: $([ $failed = 0 ] && echo 'every one a clean report' || echo 'SOME FAILED')"
exit $failed
