#!/usr/bin/env bash
# Greedy generation with a fixture's prefill/ and decode/ exports (or its one
# model.onnx for both, as onnxruntime-genai's builder writes it) must produce
# exactly the ids that the reference in generate.json did: Hugging Face's
# model.generate(do_sample=False) (generate.py), or onnxruntime-genai's
# greedy search (genai_builder.py), stopping at eos_id where it has one.
# usage: run_generate.sh BIN_DIR FIXTURE_DIR PYTHON WORK_DIR
set -euo pipefail
bin=$1 dir=$2 py=$3 work=$4
read -r prompt n expected start eos < <("$py" - "$dir/generate.json" <<'PY'
import json, sys
g = json.load(open(sys.argv[1]))
print(",".join(map(str, g["prompt_ids"])), g["max_new_tokens"],
      ",".join(map(str, g["expected_ids"])), g.get("decoder_start_id", -1),
      g.get("eos_id", -1))
PY
)
"$bin/transfuse" generate "$dir" --prompt-ids "$prompt" --max-new-tokens "$n" \
  --decoder-start-id "$start" --eos-id "$eos" \
  --cache-dir "$work/$(basename "$dir")" --expect-ids "$expected" --quiet
