#!/usr/bin/env bash
# One style's own network on the CPU (docs/training.md, session 28): the shipped gallery fine-tuned on one
# style alone, the whole network, the gallery's recipe. Session 28's Starry Night run (35 + 75 minutes,
# 1,812 steps of 4 crops of 256 px) met the benchmark's style goal at its stroke scale 0.9.
#
#   bash docs/training/specialist_cpu.sh vangogh_starry_night 110        # style file stem, minutes
#   nohup bash docs/training/specialist_cpu.sh klimt_the_kiss 110 > runs/kiss.log 2>&1 &
#
# Writes runs/specialist_<style>/ (checkpoints every 5 minutes; rerun the same line with RESUME=1 to
# continue after an interruption: the learning-rate schedule counts the checkpoint's minutes too; BUDGET=M
# caps this process's own minutes, default MINUTES, e.g. RESUME=1 BUDGET=100 ... STYLE 130 after 30 minutes),
# then picks the stroke scale on six training photos and benchmarks it on the held-out ones.
set -euo pipefail
STYLE=${1:?style file stem, e.g. vangogh_starry_night}; MIN=${2:-110}
PY=${PY:-.venv/bin/python}; DATA=${DATA:-../shared/data}; OUT=runs/specialist_$STYLE
IMG=$DATA/style/$STYLE.jpg
[ -f "$IMG" ] || { echo "no style image $IMG" >&2; exit 2; }
$PY -m stylekit train-fast --style "$IMG" --data "$DATA/content" --out "$OUT" \
  --init stylekit/models/fast_gallery.safetensors ${RESUME:+--resume} --norm down-only --leaky 0.05 --alive-weight 100 \
  --style-layers relu1_1,relu2_1,relu3_1,relu4_1,relu5_1 --style-loss gram+meanstd --style-tiles 3 --style-weight 25 \
  --content-weight 1 --tv-weight 10 --range-weight 50 --steps 100000 --batch-size 4 --crop 256 --load-size 360 \
  --style-size 512 --lr 1e-4 --lr-final 0.1 --decay-start 0.5 --threads 2 --bf16 auto --log-every 10 \
  --preview-every 100 --checkpoint-every 5 --time-budget "${BUDGET:-$MIN}" --schedule-minutes "$MIN" --seed 28
$PY -m stylekit bench fast --weights-file "$OUT/checkpoint.safetensors" --select-stroke-scale 0.8,0.9,1 --photos 6 \
  --threads 2 --data "$DATA" --json "$OUT/stroke_scale.json"
SS=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['stroke_scales'][sys.argv[2]])" "$OUT/stroke_scale.json" "$STYLE")
$PY -m stylekit bench fast --weights-file "$OUT/checkpoint.safetensors" --styles "$STYLE" --photos 2 --gatys-photos 1 \
  --threads 2 --data "$DATA" --by-layer --stroke-scale "$SS" --sheet "$OUT/sheet.png" --json "$OUT/bench.json"
