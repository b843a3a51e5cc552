#!/usr/bin/env bash
# One command for bench/peft/RESULTS.md: quantize MiniLM with qpk, fine-tune only its outliers (and
# the comparisons), write the tuned values back with `qpk convert --outlier-values`, evaluate.
# Needs the release binary (swift build -c release --product qpk), the qpk Python package
# (pip install ./python) and torch (pip install -r bench/peft/requirements.txt); `make peft` does all.
set -euo pipefail
cd "$(dirname "$0")/../.."
export QPK="${QPK:-$PWD/.build/release/qpk}"
exec python3 bench/peft/run.py "$@"
