#!/usr/bin/env bash
# One GPU check of the scoring paths, in under 10 minutes on one H100/H200-class GPU:
#   1. judge_throughput.py (per-item generate() vs fixed batches vs judgekit's packed prefill; tokens/s, MFU)
#      for a Llama-3.1-8B-shaped and a Llama-3.2-1B-shaped replica in bf16;
#   2. vllm_parity.py: transformers vs vLLM backend on inspect-judge's six pairs (skipped without vLLM);
#   3. fluency.py: the fluency detector's scoring on the GPU.
# Everything goes to one results file (default benchmarks/results/gpu_check-<host>-<UTC time>.txt).
#
#   bash benchmarks/gpu_check.sh [--out FILE]
#   bash benchmarks/gpu_check.sh --cpu-dry-run [--out FILE]   # same steps, tiny shapes, CPU, < 1 minute
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
mode=gpu
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu-dry-run) mode=cpu ;;
    --out) out="$2"; shift ;;
    *) echo "gpu_check.sh: unknown argument $1 (use --cpu-dry-run, --out FILE)" >&2; exit 2 ;;
  esac
  shift
done
out=${out:-benchmarks/results/gpu_check-$(hostname)-$(date -u +%Y%m%dT%H%M%SZ)${mode/gpu/}.txt}
mkdir -p "$(dirname "$out")"
export HF_HUB_DISABLE_PROGRESS_BARS=1 TRANSFORMERS_VERBOSITY=error
if [ "$mode" = cpu ]; then
  export CUDA_VISIBLE_DEVICES=""  # the same steps on the CPU
  big=(--shape small --n 4 --longest-response 100) small=(--shape tiny --n 4 --longest-response 100) parity=(--shape tiny)
  fluency=(--n-tiny 16 --models tiny --repeats 1)
else
  big=(--shape llama-3.1-8b --n 500) small=(--shape llama-3.2-1b --n 500) parity=(--shape llama-3.2-1b)
  fluency=(--n-tiny 2048 --n-small 256 --repeats 3)
fi
step() {  # step NAME COMMAND...: run one step, its output and wall time into the results file
  local name=$1; shift
  echo "== $name: $*" | tee -a "$out"
  local started=$SECONDS
  set +e
  "$@" 2>&1 | tee -a "$out"
  local status=${PIPESTATUS[0]}
  set -e
  echo "== $name: exit $status, $((SECONDS - started)) s" | tee -a "$out"
}
{
  echo "# judgekit gpu_check ($mode) $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  $PYTHON -c "import torch; print('torch', torch.__version__, '| cuda', torch.cuda.is_available() and torch.cuda.get_device_name())"
} | tee "$out"
step "judge throughput, 8B-shaped" $PYTHON benchmarks/judge_throughput.py "${big[@]}"
step "judge throughput, 1B-shaped" $PYTHON benchmarks/judge_throughput.py "${small[@]}"
step "vLLM parity" $PYTHON benchmarks/vllm_parity.py "${parity[@]}"
step "fluency model" $PYTHON benchmarks/fluency.py "${fluency[@]}"
echo "results: $out"
