#!/usr/bin/env bash
# Every GPU figure the speed work needs, in one run of at most eight minutes (each step bounded) on one
# H100/H200-class GPU.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]        # writes OUT_DIR/*.txt (default /tmp/gpu_check) and prints them
#
# 1. where the time goes: torch.profiler over the platform's loop and every host-device sync in it
#    (digits at batch 64, the 64 x 64 DCGAN at batch 128);
# 2. platform / hand-written loop throughput, alternating pairs, both sizes (goal >= 1.0 on the GPU),
#    and SNGAN's 32 x 32 ResNets (+experiment=sngan32: 5 D steps a step, one pair);
# 3. the same with trainer.compile=true (mode reduce-overhead), and with trainer.channels_last=true;
# 4. images/s and peak GPU memory of the 64 x 64 DCGAN in precision no, bf16 and fp16;
# 5. that a gradient penalty under trainer.compile is refused in one sentence;
# 6. images/s and peak GPU memory of one R3GAN G+D iteration (R1 + R2) at the paper's CIFAR-10
#    widths, batch 64, bf16 then fp32 (r3gan_step.py: time-boxed inside its bound, bf16 first);
# 7. images/s and peak GPU memory of whole iterations of the StyleGAN2 and BigGAN CIFAR-10 presets at
#    batch 64, as the platform trains them, on a packed stand-in for CIFAR-10 (preset_step.py), and of
#    R3GAN's GAN step whole and in 2 and 4 rounds at the paper's widths (micro_batch.py).
# Each step has its own time bound, so one slow step cannot eat the others' time; the bounds add up
# to 480 s.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-/tmp/gpu_check}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 WANDB_SILENT=true
step() {  # step NAME SECONDS COMMAND...
  local name=$1 limit=$2; shift 2
  echo "== $name ($*)"
  timeout "$limit" "$@" >"$out/$name.txt" 2>&1
  echo "   exit $? after ${SECONDS}s in all" | tee -a "$out/$name.txt"
  tail -n 30 "$out/$name.txt"
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$out/gpu.txt" 2>&1; cat "$out/gpu.txt"
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
step profile_digits 35 python benchmarks/profile_step.py +experiment=nsgan --iterations 50 --trace "$out/trace_digits.json"
step profile_dcgan64 35 python benchmarks/profile_step.py +experiment=dcgan64 --batch-size 128 --iterations 30
step throughput 100 python benchmarks/throughput.py --workloads digits,dcgan64 --pairs 2
step throughput_sngan32 25 python benchmarks/throughput.py --workloads sngan32 --pairs 1
step throughput_compiled 85 python benchmarks/throughput.py --workloads dcgan64 --pairs 1 \
  --platform-override=trainer.compile=true --platform-override=trainer.compile_mode=reduce-overhead
step throughput_channels_last 40 python benchmarks/throughput.py --workloads dcgan64 --pairs 1 \
  --platform-override=trainer.channels_last=true
step precisions 55 python benchmarks/precisions.py +experiment=dcgan64 --steps 100
step compile_gp_refused 15 python -m gan_platform +experiment=wgan_gp trainer.compile=true trainer.steps=2
step r3gan_cifar10 10 python benchmarks/r3gan_step.py --warmup 1 --seconds 1 --deadline 8
step stylegan2_cifar10 25 python benchmarks/preset_step.py +experiment=stylegan2_cifar10 --batch-size 64 --seconds 8
step biggan_cifar10 25 python benchmarks/preset_step.py +experiment=biggan_cifar10 --batch-size 64 --seconds 8
step micro_batch 30 python benchmarks/micro_batch.py --width 768 --cardinality 96 --blocks 2 --batch 64 --rounds 1,2,4 --seconds 2
echo "done in ${SECONDS}s; files in $out"
