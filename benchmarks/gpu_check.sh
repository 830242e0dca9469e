#!/usr/bin/env bash
# The one script for a lent GPU (issue 21, Fig. 1d): the CUDA tests, the estimate of the paper
# preset's ResNet-32 dense job on that device, then the job itself for MINUTES minutes, and the
# epochs it ran set beside the estimate. Everything lands in benchmarks/results/gpu_check/
# (git-ignored); bring that folder back. Run from the repository root with the project installed:
#
#     benchmarks/gpu_check.sh DATA_MIRROR [MINUTES]      # MINUTES: default 3 (of the device's 15 in all: room for one rerun)
#
# DEVICE=cpu runs the same steps on the CPU (to check the script, not to time anything).
set -uo pipefail  # not -e: a failing step is recorded and the next one still runs
mirror=${1:?the data mirror folder, CIFAR-10 in the torchvision layout}
minutes=${2:-3}
device=${DEVICE:-cuda}
out=benchmarks/results/gpu_check
metrics=results/resnet32_cifar10/dense/s0/metrics.json
mkdir -p "$out"
step() { echo "$(date -u +%T) $*" | tee -a "$out/steps.log"; }

step "machine"
{ git rev-parse HEAD; nvidia-smi 2>&1; python -c "import torch; print(torch.__version__, torch.cuda.is_available(),
torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')"; } > "$out/machine.txt" 2>&1

step "the CUDA tests"
timeout 240 python -m pytest -q -m cuda tests/test_cuda.py -rs > "$out/cuda_tests.log" 2>&1
step "  exit $?: $(tail -1 "$out/cuda_tests.log")"

step "the estimate of ResNet-32's dense job on $device"
timeout 150 python -m sharpminima.estimate --configfile presets/paper.yaml --config "data_mirror=$mirror" \
  --device "$device" --panels resnet32_cifar10 --targets "$metrics" ${EST_ARGS:-} \
  --json "$out/estimate.json" > "$out/estimate.txt" 2> "$out/estimate.log"
step "  exit $?"

step "the job for $minutes min"
timeout "${minutes}m" snakemake "$metrics" --cores all --configfile presets/paper.yaml \
  --config "data_mirror=$mirror" "device=$device" > "$out/dense_snakemake.log" 2>&1
step "  exit $? (124: stopped by the timeout, as planned)"
cp logs/resnet32_cifar10/dense/s0.log "$out/dense.log" 2>/dev/null

step "the epochs beside the estimate"
python - "$out" <<'EOF' | tee "$out/summary.json"
import json, re, statistics, sys
from pathlib import Path
out = Path(sys.argv[1])
# the job's epochs from its log (the checkpoint may not survive the timeout's stop; the log does)
log = (out / "dense.log").read_text() if (out / "dense.log").exists() else ""
eps = [dict(re.findall(r"(\w+)=([-+.\de]+)", line)) for line in log.splitlines() if " epoch=" in line]
times = [float(e["epoch_time_s"]) for e in eps if "epoch_time_s" in e]
est = json.loads((out / "estimate.json").read_text()) if (out / "estimate.json").exists() else {}
job = next((j for j in est.get("jobs", []) if j["job"] == "train_dense"), None)
epochs = 200  # presets/paper.yaml: resnet32_cifar10.dense.epochs
per_epoch = job["seconds"] / epochs if job else None
run = statistics.median(times[1:] or times) if times else None  # the first epoch pays the warm-up
print(json.dumps({"epochs_run": len(times), "epoch_s_median": run, "estimate_epoch_s": per_epoch,
                  "run_over_estimate": run / per_epoch if run and per_epoch else None,
                  "hours_for_the_job_at_this_pace": run * epochs / 3600 if run else None,
                  "val_error_last": float(eps[-1]["val_error"]) if eps and "val_error" in eps[-1] else None},
                 indent=2))
EOF
step "done"
