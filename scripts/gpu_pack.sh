#!/usr/bin/env bash
# Packs what a lent GPU machine (the workplace's `device` tool) lacks into .gpupack/ (ignored by git), for
# scripts/gpu_session.sh there: the Python packages its image does not hold, as wheels for its Python 3.12 (the
# versions of this project's own environment), SimpleITK's library as an xz archive and the SynthSeg label maps as
# one xz archive (the machine takes a working tree of at most 64 MiB, and these two halve in xz). Run from the
# repository root; needs the project's .venv (make venv).
set -euo pipefail
PACK=.gpupack
mkdir -p "$PACK"
ex=$(git rev-parse --git-path info/exclude); mkdir -p "$(dirname "$ex")"; grep -qsx '/.gpupack/' "$ex" || echo '/.gpupack/' >> "$ex"
PY=.venv/bin/python
# pure-Python wheels and rpds-py's compiled one, each at the version this project runs
pkgs=()
for name in monai skops prettytable wcwidth pydicom jsonschema jsonschema-specifications referencing rpds-py captum; do
    pkgs+=("$name==$($PY -c "import importlib.metadata as m; print(m.version('$name'))")")
done
rm -f "$PACK"/*.whl
$PY -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$PACK" "${pkgs[@]}"
# SimpleITK's abi3 build (the one this environment holds runs on 3.12): 264 MB unpacked, 28 MB as xz
if [ ! -s "$PACK/simpleitk.tar.xz" ]; then
    site=$($PY -c "import SimpleITK, os; print(os.path.dirname(os.path.dirname(SimpleITK.__file__)))")
    tar -C "$site" -cf - SimpleITK | xz -6 -T0 > "$PACK/simpleitk.tar.xz"
fi
# the SynthSeg label maps, uncompressed then xz'd together: 31.5 MB as .nii.gz, 10.7 MB this way
if [ ! -s "$PACK/synthseg.tar.xz" ]; then
    tmp=$(mktemp -d)
    for f in orbitai/data/synthseg_label_maps/*.nii.gz; do gunzip -c "$f" > "$tmp/$(basename "$f" .gz)"; done
    tar -C "$tmp" -cf - . | xz -9 -T0 > "$PACK/synthseg.tar.xz"
    rm -rf "$tmp"
fi
du -ch "$PACK"/* | tail -1
