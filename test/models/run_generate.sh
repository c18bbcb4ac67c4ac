#!/usr/bin/env bash
# Greedy generation with a fixture's prefill/ and decode/ exports must produce
# exactly the ids that Hugging Face's model.generate(do_sample=False) did
# (recorded in generate.json by generate.py).
# usage: run_generate.sh BIN_DIR FIXTURE_DIR PYTHON WORK_DIR
set -euo pipefail
bin=$1 dir=$2 py=$3 work=$4
read -r prompt n expected start < <("$py" - "$dir/generate.json" <<'PY'
import json, sys
g = json.load(open(sys.argv[1]))
print(",".join(map(str, g["prompt_ids"])), g["max_new_tokens"],
      ",".join(map(str, g["expected_ids"])), g.get("decoder_start_id", -1))
PY
)
"$bin/transfuse" generate "$dir" --prompt-ids "$prompt" --max-new-tokens "$n" \
  --decoder-start-id "$start" \
  --cache-dir "$work/$(basename "$dir")" --expect-ids "$expected" --quiet
