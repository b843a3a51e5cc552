#!/usr/bin/env bash
# Rebuilds the committed seed corpora in Fuzz/Corpus from the repository's fixtures: small valid
# files of each format, plus the safetensors files that break one rule each. Needs the release
# binary for the QPK seeds (make release). Run from anywhere: Fuzz/make-corpus.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
qpk=${QPK_BIN:-$root/.build/release/qpk}
corpus=$root/Fuzz/Corpus
fixtures=$root/fixtures
rm -rf "$corpus/safetensors" "$corpus/qpk" "$corpus/hdf5" "$corpus/gguf"
mkdir -p "$corpus/safetensors" "$corpus/qpk" "$corpus/hdf5" "$corpus/sharded-index" "$corpus/gguf"

cp "$fixtures"/safetensors/mixed.safetensors "$fixtures"/safetensors/dtype_{BF16,F4,F16,I8,BOOL,C64}.safetensors \
   "$fixtures"/safetensors/invalid/*.safetensors "$corpus/safetensors/"
cp "$fixtures"/hdf5/*.h5 "$corpus/hdf5/"
# GGUF: every ggml type qpk reads (fixtures/gen_gguf.py, written by the gguf package), and one it
# only lists.
cp "$fixtures"/gguf/*.gguf "$corpus/gguf/"
# Importance matrices (spec/gguf.md §9): llama.cpp's GGUF form and its legacy .dat form.
python3 - "$corpus/gguf" <<'PY'
import struct, sys
import gguf
import numpy as np
out = sys.argv[1]
w = gguf.GGUFWriter(f"{out}/imatrix.gguf", arch="")
w.add_string("general.type", "imatrix")
w.add_array("imatrix.datasets", ["calib.txt"])
w.add_uint32("imatrix.chunk_count", 2)
w.add_uint32("imatrix.chunk_size", 8)
for name, columns, experts in (("blk.0.attn_q.weight", 8, 1), ("blk.0.ffn_down_exps.weight", 4, 2)):
    w.add_tensor(name + ".in_sum2", np.arange(columns * experts, dtype=np.float32).reshape(experts, columns))
    w.add_tensor(name + ".counts", np.full((experts, 1), 16, dtype=np.float32))
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
with open(f"{out}/imatrix-legacy.dat", "wb") as f:
    name = b"blk.0.attn_k.weight"
    f.write(struct.pack("<ii", 1, len(name)) + name + struct.pack("<ii", 2, 4))
    f.write(np.array([1, 2, 3, 4], "<f4").tobytes() + struct.pack("<ii", 2, 9) + b"calib.txt")
PY

mixed=$fixtures/safetensors/mixed.safetensors
"$qpk" convert "$mixed" "$corpus/qpk/mixed-g8-b4.qpk" --include noise --group-size 8 --bits 4 --force >/dev/null
"$qpk" convert "$mixed" "$corpus/qpk/mixed-b2-sym.qpk" --include noise --include 'encoder*' --group-size 8 --bits 2 --scheme symmetric --force >/dev/null
"$qpk" convert "$mixed" "$corpus/qpk/mixed-b8-rows.qpk" --include noise --group-size 16 --bits 8 --outlier-kind rows --force >/dev/null
"$qpk" convert "$mixed" "$corpus/qpk/mixed-raw.qpk" --exclude '*' --force >/dev/null
"$qpk" convert "$fixtures/safetensors/dtype_BF16.safetensors" "$corpus/qpk/bf16.qpk" --include '*' --group-size 4 --bits 3 --force >/dev/null
# QPK v2 (spec/qpk-format.md §5.3, §5.6, §5.8): packed zero-points; implicit zero-points with a
# transform; 6-bit log-coded group scales (their bit stream straddles bytes) under a fitted
# codebook, with packed zero-points.
"$qpk" convert "$mixed" "$corpus/qpk/mixed-v2-packed.qpk" --include noise --include 'encoder*' --group-size 8 --bits 3 --zero-points packed --force >/dev/null
"$qpk" convert "$mixed" "$corpus/qpk/mixed-v2-hadamard.qpk" --include noise --group-size 8 --bits 4 --scheme symmetric --zero-points none --transform hadamard --transform-block 8 --force >/dev/null
"$qpk" convert "$mixed" "$corpus/qpk/mixed-v2-scalecodes.qpk" --include noise --include 'encoder*' --group-size 8 --bits 3 --scheme symmetric --codebook lloyd --zero-points packed --scale-bits 6 --scale-octaves 6 --force >/dev/null

# Index files for the three fixed shards the FuzzShardedIndex target writes beside its input.
shards='"layer1.weight":"model-00001-of-00003.safetensors","layer2.weight":"model-00002-of-00003.safetensors"'
printf '{"metadata":{"total_size":48},"weight_map":{%s,"layer3.weight":"model-00003-of-00003.safetensors"}}\n' "$shards" >"$corpus/sharded-index/valid.json"
printf '{"weight_map":{%s,"layer3.weight":"../model-00003-of-00003.safetensors"}}' "$shards" >"$corpus/sharded-index/parent-path.json"
printf '{"metadata":{},"weight_map":{}}' >"$corpus/sharded-index/empty-map.json"
printf '{"metadata":{"total_size":"48"},"weight_map":{"layer1.weight":"model-00001-of-00003.safetensors","layer1.weight":"model-00002-of-00003.safetensors"}}' >"$corpus/sharded-index/duplicate.json"
echo "seed corpora written to $corpus"
