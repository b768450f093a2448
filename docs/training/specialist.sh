#!/usr/bin/env bash
# One style's own network (docs/training.md, sessions 28-29): the shipped gallery fine-tuned on one style
# alone, the whole network, the gallery's recipe. Session 28's Starry Night run (35 + 75 minutes on two
# CPU threads, 1,812 steps of 4 crops of 256 px) met the benchmark's style goal at its stroke scale 0.9 and
# ships as stylekit/models/fast_vangogh_starry_night.safetensors.
#
#   bash docs/training/specialist.sh vangogh_starry_night 110        # style file stem, minutes
#   nohup bash docs/training/specialist.sh klimt_the_kiss 110 > runs/kiss.log 2>&1 &
#   python docs/training/ship_specialist.py runs/specialist_klimt_the_kiss     # then: ship it
#
# Writes runs/specialist_<style>/ (checkpoints every 5 minutes; rerun the same line with RESUME=1 to
# continue after an interruption: the learning-rate schedule counts the checkpoint's minutes too; BUDGET=M
# caps this process's own minutes, default MINUTES, e.g. RESUME=1 BUDGET=100 ... STYLE 130 after 30 minutes),
# then picks the stroke scale on six training photos and benchmarks it on the held-out ones.
# Environment: PY (python), RUNS (where runs/specialist_<style> goes, default runs), DATA (the image pack, default ../shared/data), DEV (train-fast --device, default
# auto), THREADS (default 2), TRAIN_ONLY=1 (no stroke-scale choice and no benchmark: next_gpu_session.sh
# trains on the GPU and measures on the CPU afterwards), MEASURE_ONLY=1 (the choice and the benchmark only,
# of the checkpoint already in the run's folder, e.g. a GPU-trained file), INIT (the network it starts from,
# default the shipped gallery; a style's shipped own network continues that one), EXTRA (more train-fast options,
# after the recipe's, so they override it: e.g. EXTRA="--content-weight 0.5", session 34).
set -euo pipefail
STYLE=${1:?style file stem, e.g. vangogh_starry_night}; MIN=${2:-110}
PY=${PY:-.venv/bin/python}; DATA=${DATA:-../shared/data}; OUT=${RUNS:-runs}/specialist_$STYLE; THREADS=${THREADS:-2}
IMG=$DATA/style/$STYLE.jpg
[ -f "$IMG" ] || { echo "no style image $IMG" >&2; exit 2; }
[ -n "${MEASURE_ONLY:-}" ] || $PY -m stylekit train-fast --style "$IMG" --data "$DATA/content" --out "$OUT" --device "${DEV:-auto}" \
  --init "${INIT:-stylekit/models/fast_gallery.safetensors}" ${RESUME:+--resume} --norm down-only --leaky 0.05 --alive-weight 100 \
  --style-layers relu1_1,relu2_1,relu3_1,relu4_1,relu5_1 --style-loss gram+meanstd --style-tiles 3 --style-weight 25 \
  --content-weight 1 --tv-weight 10 --range-weight 50 --steps 100000 --batch-size 4 --crop 256 --load-size 360 \
  --style-size 512 --lr 1e-4 --lr-final 0.1 --decay-start 0.5 --threads "$THREADS" --bf16 auto --log-every 10 \
  --preview-every 100 --checkpoint-every 5 --time-budget "${BUDGET:-$MIN}" --schedule-minutes "$MIN" --seed 28 ${EXTRA:-}
[ -n "${TRAIN_ONLY:-}" ] && exit 0
$PY -m stylekit bench fast --weights-file "$OUT/checkpoint.safetensors" --select-stroke-scale 0.8,0.9,1 --photos 6 \
  --threads "$THREADS" --data "$DATA" --json "$OUT/stroke_scale.json"
SS=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['stroke_scales'][sys.argv[2]])" "$OUT/stroke_scale.json" "$STYLE")
$PY -m stylekit bench fast --weights-file "$OUT/checkpoint.safetensors" --styles "$STYLE" --photos 2 --gatys-photos 1 \
  --threads "$THREADS" --data "$DATA" --by-layer --stroke-scale "$SS" --sheet "$OUT/sheet.png" --json "$OUT/bench.json"
