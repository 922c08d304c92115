#!/usr/bin/env bash
# One session on a lent GPU machine (the workplace's `device` tool), run in the repository root there with $OUT set;
# packed beforehand by scripts/gpu_pack.sh (.gpupack carried). In one call, on the machine's 16 cores and one GPU:
#   1. the CUDA and bfloat16 paths: benchmarks/bench_gpu.py (training steps of every trainer's network in float32
#      and bf16 autocast, and the phantom predictions on --device cpu against --device cuda) -> gpu_paths.json;
#   2. the lesion network's recipe on CUDA (bf16): the bundled model's last stage again from the bundled weights, on
#      144 new real-map phantoms (seeds 20432-20575, training brains and maps only), stepping for LESION_MIN minutes;
#   3. the MRI orbit model's TED stage on CUDA (bf16) from the bundled model, for ORBIT_MIN minutes of epochs.
# Every part has its own deadline, so whatever ran comes back: bundles (or their checkpoints) as tar files and logs.
# The bundles are judged back on the CPU machine (docs/gpu.md).
set -u
START=$(date +%s)
PACK=${PACK:-.gpupack}
LESION_MIN=${LESION_MIN:-3.5}
ORBIT_MIN=${ORBIT_MIN:-2.5}
DEADLINE=${DEADLINE:-480}          # seconds after the start by which every job has ended
DEVICE=${DEVICE:-cuda}             # cpu: a dry run of this script on a machine without a GPU
REAL_SEEDS=${REAL_SEEDS:-20432:20576}
ORBIT_N=${ORBIT_N:-36}
PARTS=${PARTS:-bench,lesion,orbit}  # which of the three parts run
BENCH_PARTS=${BENCH_PARTS:-steps,parity}
SPEED=${SPEED:-bf16}               # the trainings' --speed
LESION_EXTRA=${LESION_EXTRA:-}     # more train-lesions options (a later one of the same name wins)
W=/tmp/orbitai-gpu
OUT=${OUT:?set OUT to the folder whose files come back}
mkdir -p "$W" /tmp/site
say() { echo "[$(( $(date +%s) - START )) s] $*"; }
left() { echo $(( DEADLINE - ($(date +%s) - START) )); }

say "unpacking"
tar -xJf "$PACK/simpleitk.tar.xz" -C /tmp/site
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "$PACK"/*.whl
export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
if [ ! -f orbitai/data/synthseg_label_maps/training_seg_01.nii.gz ]; then    # the tree travelled without them
    mkdir -p /tmp/synthseg && tar -xJf "$PACK/synthseg.tar.xz" -C /tmp/synthseg
    ls /tmp/synthseg/*.nii | xargs -P 16 -n 1 gzip -1
    mv /tmp/synthseg/*.nii.gz orbitai/data/synthseg_label_maps/
fi
python3 -c "import SimpleITK, monai, skops, torch; print('torch', torch.__version__, torch.cuda.is_available())" || exit 3
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
say "ready"

MODELS=orbitai/resources/models
has() { case ",$PARTS," in *",$1,"*) return 0;; esac; return 1; }
LESION=""; ORBIT=""
has lesion && { timeout "$(left)" python3 -m orbitai neuro train-lesions --out "$W/neuro_lesion_unet_gpu" --work "$W/lesion_work" \
    --init "$MODELS/neuro_lesion_unet_demo" --ms-seeds "" --nmosd-seeds "" --real-seeds "$REAL_SEEDS" \
    --iterations 6000 --batch 16 --lr 0.0003 --seed 116 --lesion-sampling mixed --contrast-min 0.35 \
    --device "$DEVICE" --speed "$SPEED" --time-limit "$LESION_MIN" $LESION_EXTRA > "$OUT/lesion.log" 2>&1 &
LESION=$!; }
has orbit && { ( python3 -m orbitai phantom orbit-mri --n "$ORBIT_N" --seed 2100 --ted 0.5 --out "$W/mri_ted_train" --montage-cases 0 \
  && timeout "$(left)" python3 -m orbitai seg train --manifest "$W/mri_ted_train/manifest.csv" \
      --config svnet-demo-mri-ted-cases-long --init "$MODELS/orbit_svnet_mri_demo" --seed 2 --speed "$SPEED" \
      --device "$DEVICE" --time-limit "$ORBIT_MIN" --out "$W/orbit_svnet_mri_gpu" ) > "$OUT/orbit.log" 2>&1 &
ORBIT=$!; }
contended=$([ -n "$LESION$ORBIT" ] && echo 1 || echo 0)
has bench && { ORBITAI_GPU_PARTS=$BENCH_PARTS ORBITAI_GPU_CONTENDED=$contended timeout "$(left)" python3 -m benchmarks gpu \
    > "$OUT/bench.log" 2>&1; say "bench_gpu ended ($?)"; }
[ -n "$LESION" ] && { wait $LESION; say "lesion training ended ($?)"; }
[ -n "$ORBIT" ] && { wait $ORBIT; say "orbit training ended ($?)"; }

# what came of the trainings: the bundle, else the work folder's checkpoint (a rerun goes on from it)
for job in neuro_lesion_unet_gpu:lesion_work orbit_svnet_mri_gpu:.orbit_svnet_mri_gpu-training; do
    b=${job%%:*}; w=${job##*:}
    if [ -f "$W/$b/metadata.json" ]; then
        tar -C "$W" -cf "$OUT/$b.tar" "$b" $(cd "$W" && ls "$b"-metrics.csv 2>/dev/null)
    elif [ -f "$W/$w/checkpoint.pt" ]; then
        tar -C "$W" -cf "$OUT/$b.checkpoint.tar" "$w/checkpoint.pt" $(cd "$W" && ls "$w"/*.sha256 "$b"-metrics.csv 2>/dev/null)
    fi
done
nvidia-smi --query-gpu=memory.used --format=csv,noheader
ls -la "$OUT"
say "done"
