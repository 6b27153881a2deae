#!/usr/bin/env bash
# Check that clinkd's ShareGPT export, in each Qwen family's own box convention, loads with
# LLaMA-Factory's own SFT data pipeline, and that the image sizes clinkd recorded in
# <stem>.boxes.json ("resized") are the sizes LLaMA-Factory's pipeline feeds the model.
#
#   scripts/check_llamafactory.sh            # work dir /tmp/lf-check, venv /tmp/lf-venv
#
# Env: LF_VENV (virtualenv for LLaMA-Factory, created if missing), LF_VERSION (default 0.9.5),
#      LF_WORK (scratch dir), CLINKD (clinkd CLI), LF_PIP_ARGS (extra pip args, e.g.
#      "--extra-index-url https://download.pytorch.org/whl/cpu" for CPU-only torch wheels).
# No network beyond pip; the models are clinkd's offline hub-layout stand-ins (real Qwen tokenizer and
# the hub's preprocessor_config.json). Exits non-zero if LLaMA-Factory drops a record, a turn does
# not decode back verbatim, or any fed image size differs from clinkd's recorded one.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
LF_VENV=${LF_VENV:-/tmp/lf-venv}
LF_VERSION=${LF_VERSION:-0.9.5}
LF_WORK=${LF_WORK:-/tmp/lf-check}
CLINKD=${CLINKD:-$root/.venv/bin/clinkd}

# 1. LLaMA-Factory in its own venv (it pins transformers/torch versions clinkd's venv does not use).
if ! "$LF_VENV/bin/python" -c "import llamafactory, sys; sys.exit(llamafactory.__version__ != '$LF_VERSION')" 2>/dev/null; then
    py=$(command -v python3.11 || command -v python3)
    [ -x "$LF_VENV/bin/python" ] || "$py" -m venv "$LF_VENV"
    "$LF_VENV/bin/pip" install -q --upgrade pip
    # shellcheck disable=SC2086  # LF_PIP_ARGS is a list of words
    "$LF_VENV/bin/pip" install -q ${LF_PIP_ARGS:-} "llamafactory==$LF_VERSION"
fi
"$LF_VENV/bin/python" -c "import llamafactory, transformers, torch
print(f'llamafactory {llamafactory.__version__}, transformers {transformers.__version__}, torch {torch.__version__}')"

# 2. Synthetic Med-GRIT data (256x256-ish PNGs in data/images) and the three stand-in checkpoints.
rm -rf "$LF_WORK" && mkdir -p "$LF_WORK"
clinkd() {  # quiet clinkd; its output goes to clinkd.log, shown if it fails
    "$CLINKD" "$@" >>"$LF_WORK/clinkd.log" 2>&1 || { tail -20 "$LF_WORK/clinkd.log"; exit 1; }
}
clinkd data synth --out "$LF_WORK/data" --images 16
for like in Qwen2-VL-2B-Instruct Qwen2.5-VL-3B-Instruct Qwen3-VL-2B-Instruct; do
    clinkd model init --like "$like" --out "$LF_WORK/$like"
done

# 3. Per family: the checkpoint, LLaMA-Factory template, and clinkd pixel budget. The budget must be the
#    HF processor's own min/max pixels from the checkpoint's preprocessor_config.json (Qwen2/2.5-VL:
#    min_pixels/max_pixels; Qwen3-VL: size.shortest_edge/longest_edge): LLaMA-Factory's image_min/max_pixels
#    only pre-resize with PIL, and are a no-op for images whose area lies inside them (defaults 32²..768²).
status=0
while read -r family model template min max; do
    [ -n "$family" ] || continue
    out="$LF_WORK/sg_$family"
    clinkd data convert "$LF_WORK/data" "$out" --to sharegpt --box-convention "$family" \
        --min-pixels "$min" --max-pixels "$max"
    log="$LF_WORK/$family.log"
    if "$LF_VENV/bin/python" "$here/check_llamafactory.py" "$out" "$LF_WORK/data/images" \
            "$LF_WORK/$model" "$template" >"$log" 2>&1; then
        verdict=OK
    else
        verdict=FAIL; status=1
    fi
    # One line per family from the Python summary (full output, incl. a decoded example, in $log).
    "$LF_VENV/bin/python" - "$log" "$family" "$verdict" <<'EOF'
import json, sys
log, family, verdict = sys.argv[1:]
lines = [l for l in open(log, encoding="utf-8") if l.startswith("SUMMARY ")]
if not lines:
    print(f"{verdict} {family}: no summary, see {log}"); sys.exit()
s = json.loads(lines[-1][len("SUMMARY "):])
print(f"{verdict} {family} (template {s['template']}): accepted {s['accepted']}/{s['written']} records; "
      f"fed size == clinkd resized for {s['images_compared'] - s['size_mismatches']}/{s['images_compared']} images")
for p in s["problems"][:5]:
    print("   ", p)
EOF
done <<'EOF'
qwen2_vl   Qwen2-VL-2B-Instruct   qwen2_vl         3136  12845056
qwen2_5_vl Qwen2.5-VL-3B-Instruct qwen2_vl         3136  12845056
qwen3_vl   Qwen3-VL-2B-Instruct   qwen3_vl_nothink 65536 16777216
EOF
echo "logs: $LF_WORK/*.log"
exit $status
