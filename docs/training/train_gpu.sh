#!/bin/bash
# One device call: 2 feed-forward variants + 2 AdaIN decoders trained side by side on one GPU.
# Usage: bash gpu/train.sh MINUTES OUTDIR
set -u
M=${1:-6.5}; OUT=${2:-$OUT}
export PYTHONPATH=$PWD/gpu/site:$PWD PYTHONUNBUFFERED=1
PY=${PY:-python3}
S=gpu/data/style; D=gpu/data/content
STYLES="$S/vangogh_starry_night.jpg $S/munch_the_scream.jpg $S/klimt_the_kiss.jpg $S/hokusai_great_wave_off_kanagawa.jpg $S/kandinsky_composition_viii.jpg $S/pattern_openclipart_diamond_tiles.jpg $S/cartoon_openclipart_landscape.jpg"
mkdir -p runs logs
nvidia-smi --query-gpu=name,memory.total --format=csv 2>&1 | tee logs/gpu.txt
$PY -c "import torch;print(torch.__version__, torch.cuda.is_available())" 2>&1 | tee -a logs/gpu.txt
FFCOMMON="--data $D --steps ${FF_STEPS:-100000} --batch-size 8 --crop 384 --style-size 512 --style-layers relu1_1,relu2_1,relu3_1,relu4_1,relu5_1 --content-weight 1 --lr 1e-3 --lr-final 0.05 --decay-start 0.3 --schedule-minutes $M --time-budget $M --threads 3 --checkpoint-every 2 --preview-every 500 --log-every 100 --device ${DEV:-auto}"
$PY -m stylekit train-fast --style $STYLES --out runs/ff_a $FFCOMMON --style-weight 10 --tv-weight 10 > logs/ff_a.log 2>&1 &
$PY -m stylekit train-fast --style $STYLES --out runs/ff_b $FFCOMMON --style-weight 25 --tv-weight 10 --style-loss gram+meanstd > logs/ff_b.log 2>&1 &
ADCOMMON="--content $D --style $S --steps ${AD_STEPS:-100000} --batch-size 16 --crop 256 --lr 5e-4 --schedule-minutes $M --time-budget $M --threads 3 --checkpoint-every 2 --preview-every 500 --device ${DEV:-auto}"
$PY -m stylekit train-adain $ADCOMMON --width 0.5 --out runs/ad_w05 --export runs/adain_w05.safetensors > logs/ad_w05.log 2>&1 &
$PY -m stylekit train-adain $ADCOMMON --width 1.0 --out runs/ad_w10 --export runs/adain_w10.safetensors > logs/ad_w10.log 2>&1 &
wait
nvidia-smi 2>&1 | head -20 >> logs/gpu.txt
for r in ff_a ff_b; do $PY -c "import sys; from stylekit.weights import package_fast_checkpoint as p; p(sys.argv[1], sys.argv[2], register=False)" runs/$r/checkpoint.safetensors $OUT/$r.safetensors 2>&1 | tail -n 3; done
cp runs/adain_w05.safetensors runs/adain_w10.safetensors $OUT/
for r in ff_a ff_b ad_w05 ad_w10; do cp runs/$r/preview_latest.png logs/$r.preview.png 2>/dev/null; cp runs/$r/result.json logs/$r.result.json 2>/dev/null; done
tar czf $OUT/logs.tgz logs
ls -la $OUT
for f in logs/*.log; do echo "== $f"; tail -n 3 $f; done
