#!/usr/bin/env bash
# One prepared check for a lent GPU machine (H100/H200; nothing can be downloaded there).
# Runs each system's GPU check with its own time limit and collects the JSON results:
#   bench/gpu_check_tatar.py  a Qwen2.5-VL-3B-architecture model (random weights, bf16): a few SFT
#                             and GRPO steps with the real settings -> step time, rollout tokens/s,
#                             peak memory (bench/results/gpu_check_tatar.json)
#   bench/gpu_check_yoho.py   run too when the file exists (bench/results/gpu_check_yoho.json)
# Usage (from anywhere): bash bench/gpu_check.sh
# Limits: TATAR_TIMEOUT (default 420 s), YOHO_TIMEOUT (default 240 s; the `paper` training stops
# at 60 % of it so that the comparison profile and the JSON still fit). Exit status: the first
# failing check's (124 = timed out), else 0.
# On the lent machine (no network), carry the missing packages as wheels and the Kvasir sample:
#   pip install --no-index --no-deps --target /tmp/site .whl/*.whl; export PYTHONPATH=/tmp/site
#   SHARED_DATA=$PWD/.gpudata bash bench/gpu_check.sh     (.gpudata/seg/kvasir_seg_sample)
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY="$(command -v python3)"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
status=0

echo "== environment"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
"$PY" -c "import torch, transformers, trl; print('torch', torch.__version__, 'cuda', torch.version.cuda, '| transformers', transformers.__version__, '| trl', trl.__version__)"

run_check() {  # name, timeout seconds, script, its arguments
    local name="$1" limit="$2" script="$3" rc
    shift 3
    echo "== $name (limit ${limit} s)"
    timeout --signal=TERM --kill-after=20 "$limit" "$PY" "$script" "$@"
    rc=$?
    [ "$rc" -eq 124 ] && echo "$name: timed out after ${limit} s"
    echo "== $name: exit $rc"
    if [ "$rc" -ne 0 ] && [ "$status" -eq 0 ]; then status=$rc; fi
}

run_check tatar "${TATAR_TIMEOUT:-420}" bench/gpu_check_tatar.py
if [ -f bench/gpu_check_yoho.py ]; then
    yoho_limit="${YOHO_TIMEOUT:-240}"
    run_check yoho "$yoho_limit" bench/gpu_check_yoho.py --max-seconds $((yoho_limit * 6 / 10))
fi
echo "== results"
ls -l bench/results/gpu_check_*.json 2>/dev/null
exit "$status"
