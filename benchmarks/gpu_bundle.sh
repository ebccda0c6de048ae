#!/usr/bin/env bash
# Everything benchmarks/gpu.py needs on a bare GPU machine that has Python 3.12 with torch, transformers and
# sentence-transformers but no network, in one folder under 64 MiB (issue 14, item 5):
#   wheels/   the missing wheels for Python 3.12 (tantivy, faiss-cpu, pydantic-settings and their small deps)
#   minilm-fp16/  the packaged MiniLM converted to fp16 (~45 MB): the dense leg's encoder and the reranker's body
#   src/      this checkout's search_rerank package and benchmarks/gpu.py
# Run here (with network):   bash benchmarks/gpu_bundle.sh /tmp/gpu-bundle
# Then on the GPU machine:   tar -C BUNDLE -xJf BUNDLE/minilm-fp16.tar.xz
#                            pip install --no-index --find-links BUNDLE/wheels BUNDLE/wheels/*.whl
#                            cd BUNDLE/src && python benchmarks/gpu.py --model ../minilm-fp16/cross-encoder \
#                                --encoder ../minilm-fp16/encoder
set -euo pipefail
OUT=${1:-/tmp/gpu-bundle}
HERE=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python}
rm -rf "$OUT" && mkdir -p "$OUT/wheels" "$OUT/src/benchmarks"
"$PY" -m pip download --quiet --python-version 3.12 --only-binary=:all: \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --no-deps -d "$OUT/wheels" \
  "tantivy>=0.27,<0.30" "faiss-cpu>=1.8" "pydantic-settings>=2.3" python-dotenv typing-inspection
cp -r "$HERE/search_rerank" "$OUT/src/"
find "$OUT/src" -name __pycache__ -prune -exec rm -rf {} +
cp "$HERE/benchmarks/gpu.py" "$OUT/src/benchmarks/"
# One fp16 copy of the packaged MiniLM's weights, written as BertForSequenceClassification for the reranker (its
# one-logit head newly initialised: a cross-encoder's cost does not depend on its weights); the encoder directory
# keeps the sentence-transformers files and links to the same weights (the head is ignored when loaded as BertModel).
PYTHONPATH="$HERE" HF_HUB_OFFLINE=1 "$PY" - "$OUT/minilm-fp16" <<'PY'
import shutil, sys
from pathlib import Path

import torch
from transformers import AutoTokenizer, BertForSequenceClassification

from search_rerank.backends.encoder import resolve_model_path
from search_rerank.core.settings import PACKAGED_MINILM

out = Path(sys.argv[1])
src = Path(resolve_model_path(PACKAGED_MINILM))
cross = out / "cross-encoder"
model = BertForSequenceClassification.from_pretrained(str(src), num_labels=1, torch_dtype=torch.float16)
model.save_pretrained(cross, safe_serialization=True)
AutoTokenizer.from_pretrained(str(src)).save_pretrained(cross)
encoder = out / "encoder"
shutil.copytree(src, encoder, ignore=shutil.ignore_patterns("*.safetensors", "*.bin", "onnx", "openvino", "*.onnx"))
# the encoder reads the same fp16 body: the classifier head is ignored when loaded as a BertModel
(encoder / "model.safetensors").symlink_to("../cross-encoder/model.safetensors")
PY
# fp16 weights still compress by about a tenth, which is what brings the bundle under 64 MiB
tar -C "$OUT" -cf - minilm-fp16 | xz -T2 -3 > "$OUT/minilm-fp16.tar.xz" && rm -rf "$OUT/minilm-fp16"
du -sb "$OUT" | awk '{printf "bundle: %.1f MiB\n", $1/1048576; if ($1 > 64*1048576) {print "over 64 MiB"; exit 1}}'
