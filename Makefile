# OrbitAI — set-up, demo, tests, benchmarks. Each target creates .venv on its own.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.orbitai-installed

.PHONY: demo lint test web test-all bench models scan-classifier trust tao-trust ivgc-trust neuro-trust ct-ted-stage mri-ted-stage mri-ted-stage-cpu mri-ted-falloff-cpu mri-ted-falloff-dim-cpu mri-model orbit-heads-edge tao-models ivgc-models neuro-models neuro-lesion-model neuro-lesion-hour neuro-lesion-hour-regional neuro-second-look half-precision venv clean

venv: $(STAMP) test-tools

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	# torch first, pinned: the CPU build that lies on these machines (a bare 'torch' pulls CUDA).
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[all]'
	touch $(STAMP)

# Test tools, installed when missing as root (CI: a fresh Debian machine), otherwise said (the tests then skip):
# dciodvfy (dicom3tools) checks every SEG/SR written; Orthanc with its DICOMweb plugin is the PACS of the
# round-trip tests (started and stopped by the test fixture on 127.0.0.1; its service is not started); Chromium
# and its WebDriver drive the web app's tests (Testing/web/), whose views render off-screen through EGL on
# Mesa's software renderer.
TEST_TOOLS := dicom3tools orthanc orthanc-dicomweb chromium chromium-driver libegl1 libegl-mesa0 libgl1-mesa-dri
.PHONY: test-tools
test-tools:
	@missing="$$(for p in $(TEST_TOOLS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done)"; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing \
	  && { service orthanc stop >/dev/null 2>&1 || true; }; \
	else echo "note: missing $$missing; install them (sudo apt-get install $$missing) for the DICOM and web tests"; fi

demo: $(STAMP)
	$(PY) -m orbitai demo --out demo_output

# Everything 3D Slicer imports or runs (module folders, the whole orbitai package) must run on the oldest
# supported Slicer's Python: 3.9 (Slicer 5.8; orbitai/slicer_versions.py, Testing/test_min_python.py).
# vermin: standard library and syntax newer than that ('long' is torch's Tensor.long, not Python 2's).
SLICER_SIDE := orbitai OrbitSegmentation TAOActivity IVGCResponse NeuroDifferential
MIN_PYTHON  := 3.9

# ruff (pyflakes, bugbear, blind excepts, unused noqa) on the tree, mypy on the orbitai core; config in pyproject.toml
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(VENV)/bin/vermin -q --no-tips --violations -t=$(MIN_PYTHON)- --eval-annotations --feature fstring-pep701 --exclude long $(SLICER_SIDE)

# The docs site (mkdocs.yml; results pages generated from benchmarks/results/*.json), warnings as errors; a few seconds.
# DOCS_OUT: where the site goes (default build/site).
DOCS_OUT ?= build/site
.PHONY: docs
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet -d $(DOCS_OUT)

# Coverage-guided fuzzing (issue 80) of the readers a user, a page or a registry feeds (fuzz/fuzz_<reader>.py; docs/
# reliability.md "Fuzzing"): each target runs FUZZ_SECONDS from its seeds (fuzz/corpus/<reader>/; what it finds new
# goes to build/fuzz/corpus/<reader>/). A crash stops that target: its input is build/fuzz/artifacts/<reader>-crash-*,
# its log build/fuzz/<reader>.log; the target ends in failure naming the readers with findings. Atheris (the
# 'fuzz' extra, not in the default install) is installed here when missing. FUZZ_TARGETS: some readers only.
FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?= $(patsubst fuzz/fuzz_%.py,%,$(wildcard fuzz/fuzz_*.py))
.PHONY: fuzz
fuzz: $(STAMP)
	@$(PY) -c "import atheris" 2>/dev/null || $(PY) -m pip install --quiet 'atheris>=2.3,<4'
	@mkdir -p build/fuzz/artifacts; failed=""; \
	for t in $(FUZZ_TARGETS); do \
	  mkdir -p build/fuzz/corpus/$$t; echo "== fuzz $$t: $(FUZZ_SECONDS) s (log build/fuzz/$$t.log)"; \
	  $(PY) fuzz/fuzz_$$t.py build/fuzz/corpus/$$t fuzz/corpus/$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	    -rss_limit_mb=2048 -artifact_prefix=build/fuzz/artifacts/$$t- >build/fuzz/$$t.log 2>&1 || failed="$$failed $$t"; \
	  grep -aE '^(Done [0-9]+ runs|==[0-9]+== ERROR|=== Uncaught)' build/fuzz/$$t.log | tail -n 2; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: findings in$$failed (inputs: build/fuzz/artifacts/)"; exit 1; fi

# --durations: the slowest default tests are printed with every run (the suite's budget is 20 minutes on 2 cores).
# TEST_WORKERS pytest-xdist processes, a test file each at a time (module fixtures built once); each gets its share
# of the cores for its numerical libraries (Testing/conftest.py). TEST_WORKERS=0 runs in this process.
TEST_WORKERS ?= 2
XDIST = $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)
test: lint docs test-tools
	$(PY) -m pytest -q --durations=25 $(XDIST)

test-all: $(STAMP) test-tools
	$(PY) -m pytest -q -m '' $(XDIST)

bench: $(STAMP)
	$(PY) -m benchmarks

# Re-train the bundled demo models from phantoms (deterministic; ~45 min per SV-net on 2 CPU cores). No command writes
# into orbitai/resources/models otherwise (the bundled models are read-only): these targets alone say they may.
# After any of them, `make half-precision` stores the new weights in float16 and rewrites the registry (issue 64).
models ct-ted-stage mri-model tao-models ivgc-models neuro-models neuro-lesion-model neuro-second-look trust tao-trust ivgc-trust neuro-trust half-precision: \
    export ORBITAI_WRITE_BUNDLED_MODELS = 1
COHORTS := build/cohorts
# The demo bundles ship inside the package (package data), so a wheel carries them.
MODELS  := orbitai/resources/models
models: $(STAMP)
	$(PY) -m orbitai phantom orbit-ct --n 24 --seed 1000 --out $(COHORTS)/ct_train --montage-cases 0
	$(PY) -m orbitai phantom orbit-synth --n 24 --seed 2000 --out $(COHORTS)/synth_train --montage-cases 0
	$(PY) -m orbitai seg train --manifest $(COHORTS)/ct_train/manifest.csv --config svnet-demo-ct --out build/models/orbit_svnet_ct_stage1
	$(MAKE) ct-ted-stage
	$(PY) -m orbitai seg train --manifest $(COHORTS)/synth_train/manifest.csv --config svnet-demo-dr --out $(MODELS)/orbit_svnet_dr_demo
	$(MAKE) mri-model
	$(PY) -m orbitai seg train --manifest $(COHORTS)/ct_train/manifest.csv --config sunet-demo-ct --out $(MODELS)/orbit_sunet_ct_demo
	$(PY) -m orbitai seg train --manifest $(COHORTS)/ct_train/manifest.csv --config sequnet-demo-ct --out $(MODELS)/orbit_sequnet_ct_demo
	$(MAKE) tao-models

# The CT model's second stage (issue #66: enlarged recti read 0.57x their volume): 36 CT phantoms of the first stage's
# seed, each with its recti enlarged 1.5-3.5x with probability 0.33, 30 epochs at a third of the learning rate from the
# first stage (~18 min on 2 CPU cores). CT_STAGE1 names the first stage's bundle.
CT_STAGE1 ?= build/models/orbit_svnet_ct_stage1
ct-ted-stage: $(STAMP)
	$(PY) -m orbitai phantom orbit-ct --n 36 --seed 1000 --ted 0.33 --out $(COHORTS)/ct_ted_train --montage-cases 0
	$(PY) -m orbitai seg train --manifest $(COHORTS)/ct_ted_train/manifest.csv --config svnet-demo-ct-ted --init $(CT_STAGE1) --seed 1 --out $(MODELS)/orbit_svnet_ct_demo --overwrite

# The bundled weights in half precision (scripts/store_half_precision.py; outputs compared by benchmarks/bench_half_precision.py).
half-precision: $(STAMP)
	$(PY) scripts/store_half_precision.py
	$(PY) scripts/write_registry.py

# The default MRI model (issue 17): patches rendered on the fly from 96 deformed atlas heads plus a quarter
# from 24 T1/T2 MRI phantoms (seed 2100; benchmarks hold out 9100+), started from orbit_svnet_dr_demo's
# weights; 90 epochs (~45-50 min on 2 CPU cores), then 40 at a lower learning rate with a fifth of the
# synthetic patches cut by the field of view (~25 min). The same commands use a GPU with --device cuda.
# The default MRI model, three stages on 2 CPU cores (~2.3 h in all; README: Orbit segmentation on MRI): two on
# deformed atlas heads (svnet-demo-mri, then its field-of-view stage), then issue #46's stage on synthetic heads of 17
# anatomies (the atlas and the 16 SynthSeg training heads with the atlas's muscles and nerves carried in; heads 17-20
# held out for choices). Each stage resumes from its checkpoint when interrupted (run it again). A further
# field-of-view stage on the heads (orbit-heads-edge) was tried and not kept (benchmarks/results/orbit_mri_variants.json).
mri-model: $(STAMP)
	test -f $(COHORTS)/mri_train/manifest.csv || $(PY) -m orbitai phantom orbit-mri --n 24 --seed 2100 --out $(COHORTS)/mri_train --montage-cases 0
	$(PY) -m orbitai seg train --manifest $(COHORTS)/mri_train/manifest.csv --config svnet-demo-mri --init $(MODELS)/orbit_svnet_dr_demo --out build/models/orbit_svnet_mri_stage1
	$(PY) -m orbitai seg train --manifest $(COHORTS)/mri_train/manifest.csv --config svnet-demo-mri-edge --init build/models/orbit_svnet_mri_stage1 --out build/models/orbit_svnet_mri_atlas
	$(PY) -m orbitai seg train --manifest $(COHORTS)/mri_train/manifest.csv --config svnet-demo-mri-heads --init build/models/orbit_svnet_mri_atlas --out $(MODELS)/orbit_svnet_mri_demo --overwrite

# Issue 78 (TED recti on MRI): a sixth MRI stage from the bundled model, a third of its patches from 36 T1/T2 MRI phantoms
# of which half have every rectus enlarged (the other cases are mri_train's, byte for byte), bfloat16 steps where the CPU
# has them (docs/cli.md, Training speed). The synthetic heads come from ~/.orbitai/cache when an earlier stage built them.
# the TED stages' 36 MRI phantoms (half with enlarged recti), made once
$(COHORTS)/mri_ted_train/manifest.csv: | $(STAMP)
	$(PY) -m orbitai phantom orbit-mri --n 36 --seed 2100 --ted 0.5 --out $(COHORTS)/mri_ted_train --montage-cases 0

mri-ted-stage: $(COHORTS)/mri_ted_train/manifest.csv
	$(PY) -m orbitai seg train --manifest $(COHORTS)/mri_ted_train/manifest.csv --config svnet-demo-mri-ted-cases --init $(MODELS)/orbit_svnet_mri_demo --seed 1 --speed bf16 --out build/models/orbit_svnet_mri_ted_cases
	$(PY) -m orbitai seg train --manifest $(COHORTS)/mri_ted_train/manifest.csv --config svnet-demo-mri-ted-cases-long --init build/models/orbit_svnet_mri_ted_cases --seed 1 --speed bf16 --out build/models/orbit_svnet_mri_ted_long
	# an eighth stage: the seventh's recipe again from the model it made (seed 2); 115.5 s on a lent H200
	# (scripts/gpu_session.sh, --device cuda), about 70 min on 2 CPU cores
	$(PY) -m orbitai seg train --manifest $(COHORTS)/mri_ted_train/manifest.csv --config svnet-demo-mri-ted-cases-long --init build/models/orbit_svnet_mri_ted_long --seed 2 --speed bf16 --out build/models/orbit_svnet_mri_gpu

# Issue 78, a ninth stage on 2 CPU cores: the eighth's recipe again from the bundled model (seed 3). Resumable: the same
# command continues from its last finished epoch (another day, another machine with the same build/ folder); about
# 70 min on 2 quiet cores. Adopted only where no benchmark of the MRI model gets worse.
mri-ted-stage-cpu: $(COHORTS)/mri_ted_train/manifest.csv
	$(PY) -m orbitai seg train --manifest $(COHORTS)/mri_ted_train/manifest.csv --config svnet-demo-mri-ted-cases-long --init $(MODELS)/orbit_svnet_mri_demo --seed 3 --speed bf16 --out build/models/orbit_svnet_mri_stage9

# Issue 78's tenth MRI stage (the seventh's recipe with a head coil's falloff towards the face), resumable likewise.
mri-ted-falloff-cpu: $(COHORTS)/mri_ted_train/manifest.csv
	$(PY) -m orbitai seg train --manifest $(COHORTS)/mri_ted_train/manifest.csv --config svnet-demo-mri-ted-falloff --init $(MODELS)/orbit_svnet_mri_demo --seed 3 --speed bf16 --out build/models/orbit_svnet_mri_falloff

mri-ted-falloff-dim-cpu: $(COHORTS)/mri_ted_train/manifest.csv
	$(PY) -m orbitai seg train --manifest $(COHORTS)/mri_ted_train/manifest.csv --config svnet-demo-mri-ted-falloff-dim --init build/models/orbit_svnet_mri_falloff --seed 4 --speed bf16 --out build/models/orbit_svnet_mri_falloff_dim

orbit-heads-edge: $(STAMP)
	$(PY) -m orbitai seg train --manifest $(COHORTS)/mri_train/manifest.csv --config svnet-demo-mri-heads-edge --init $(MODELS)/orbit_svnet_mri_demo --out build/models/orbit_svnet_mri_heads_edge

# TAO activity demo networks (paper 000): 800 phantom cases (1600 eyes), reduced width, the paper's
# schedules compressed; ~25 min per network on 2 CPU cores after ~8 min of preprocessing.
tao-models: $(STAMP)
	$(PY) -m orbitai phantom tao --n 800 --seed 3000 --out $(COHORTS)/tao_train --montage-cases 0
	$(PY) -m orbitai tao train --manifest $(COHORTS)/tao_train/manifest.csv --network B --holdout 0 --device cpu --out $(MODELS)/tao_network_b_demo
	$(PY) -m orbitai tao train --manifest $(COHORTS)/tao_train/manifest.csv --network A --holdout 0 --device cpu --out $(MODELS)/tao_network_a_demo
	$(MAKE) tao-trust

# IVGC response demo bundles (paper 001): 150 phantoms (seeds 6000+; benchmarks hold out seed 7000),
# radiomics of all six ROI strategies, ICC/t-test/LASSO selection, then the radiomics SVM on MR+LR
# (seconds) and the three deep models (demo configs, one torch thread; ~15-25 min each on 2 CPU cores).
IVGC := $(COHORTS)/ivgc_train
ivgc-models: $(STAMP)
	$(PY) -m orbitai phantom ivgc --n 150 --seed 6000 --out $(IVGC) --montage-cases 0
	$(PY) -m orbitai ivgc features --manifest $(IVGC)/manifest.csv --out $(IVGC)/features.csv --workers 0
	$(PY) -m orbitai ivgc select --manifest $(IVGC)/manifest.csv --features $(IVGC)/features.csv --out $(IVGC)/selection.json --workers 0
	$(PY) -m orbitai ivgc train --manifest $(IVGC)/manifest.csv --features $(IVGC)/features.csv --selection $(IVGC)/selection.json --model svm --strategy mrlr --out $(MODELS)/ivgc_svm_demo
	OMP_NUM_THREADS=1 $(PY) -m orbitai ivgc train --manifest $(IVGC)/manifest.csv --model resnet50 --strategy mrlr --config demo --device cpu --out $(MODELS)/ivgc_resnet50_demo
	OMP_NUM_THREADS=1 $(PY) -m orbitai ivgc train --manifest $(IVGC)/manifest.csv --features $(IVGC)/features.csv --selection $(IVGC)/selection.json --model rdinet --strategy mrlr --config demo --device cpu --out $(MODELS)/ivgc_rdinet_demo
	OMP_NUM_THREADS=1 $(PY) -m orbitai ivgc train --manifest $(IVGC)/manifest.csv --features $(IVGC)/features.csv --selection $(IVGC)/selection.json --model rdinet_clinical --strategy mrlr --config demo --device cpu --out $(MODELS)/ivgc_rdinet_clinical_demo
	$(MAKE) ivgc-trust

# NeuroDifferential demo classifiers (paper 003): 160 brain-FLAIR phantoms (seed 16000; benchmarks hold out
# seed 17000), the truth lesion masks as the lesion input, the four demo configurations (SGD lr 0.01 x 0.9
# every ten epochs, 15 epochs, one torch thread; ~10-25 min each on 2 CPU cores after ~10 min of phantoms).
NEURO := $(COHORTS)/neuro_train
neuro-models: $(STAMP)
	$(PY) -m orbitai phantom brain-flair --n 160 --seed 16000 --out $(NEURO) --montage-cases 0
	OMP_NUM_THREADS=1 $(PY) -m orbitai neuro train --manifest $(NEURO)/manifest.csv --config twoview18-demo --holdout 0 --device cpu --out $(MODELS)/neuro_twoview18_demo
	OMP_NUM_THREADS=1 $(PY) -m orbitai neuro train --manifest $(NEURO)/manifest.csv --config twoview34-demo --holdout 0 --device cpu --out $(MODELS)/neuro_twoview34_demo
	OMP_NUM_THREADS=1 $(PY) -m orbitai neuro train --manifest $(NEURO)/manifest.csv --config resnet3d18-demo --holdout 0 --device cpu --out $(MODELS)/neuro_resnet3d18_demo
	OMP_NUM_THREADS=1 $(PY) -m orbitai neuro train --manifest $(NEURO)/manifest.csv --config resnet3d34-demo --holdout 0 --device cpu --out $(MODELS)/neuro_resnet3d34_demo
	$(MAKE) neuro-trust

# White-matter lesion segmentation demo (2.5D MONAI U-Net) on 48 brain phantoms (MS 16000-16023, NMOSD
# 16100-16123), three stages each fine-tuning the previous one (--init): 1300 steps voxel-balanced, then
# 1500 steps lesion-balanced with fainter lesion contrast, then 1500 steps with confluent periventricular
# lesions in half the MS phantoms; ~75 min on 2 CPU cores.
LESION := build/neuro_lesion
neuro-lesion-model: $(STAMP)
	$(PY) -m orbitai neuro train-lesions --out $(LESION)_stage1 --work $(LESION)_train1 --ms-seeds 16000:16024 --nmosd-seeds 16100:16124 --iterations 1300 --batch 16 --lr 0.002 --seed 16 --lesion-sampling voxel --contrast-min 0.5 --threads 1
	$(PY) -m orbitai neuro train-lesions --out $(LESION)_stage2 --work $(LESION)_train2 --init $(LESION)_stage1 --ms-seeds 16000:16024 --nmosd-seeds 16100:16124 --iterations 1500 --batch 16 --lr 0.001 --seed 26 --lesion-sampling lesion --contrast-min 0.35 --threads 2
	$(PY) -m orbitai neuro train-lesions --out $(LESION)_stage3 --work $(LESION)_train3 --init $(LESION)_stage2 --ms-seeds 16000:16024 --nmosd-seeds 16100:16124 --iterations 1500 --batch 16 --lr 0.001 --seed 36 --lesion-sampling lesion --contrast-min 0.35 --confluent 0.5 --threads 2
	# stage 4 (#30): heavy confluent loads (12-70 mL) in 35 % of the MS phantoms, 36 MS + 24 NMOSD, mixed sampling
	$(PY) -m orbitai neuro train-lesions --out $(LESION)_stage4 --work $(LESION)_train4 --init $(LESION)_stage3 --ms-seeds 16000:16036 --nmosd-seeds 16100:16124 --iterations 2000 --batch 16 --lr 0.001 --seed 46 --lesion-sampling mixed --contrast-min 0.35 --confluent 0.5 --heavy 0.35 --threads 2
	# stage 5: half the MS phantoms heavy, lower learning rate (kept over stage 4 by the validation objective)
	$(PY) -m orbitai neuro train-lesions --out $(LESION)_stage5 --work $(LESION)_train5 --init $(LESION)_stage4 --ms-seeds 16000:16036 --nmosd-seeds 16100:16124 --iterations 1200 --batch 16 --lr 0.0005 --seed 56 --lesion-sampling mixed --contrast-min 0.35 --confluent 0.5 --heavy 0.5 --threads 2
	# stage 6 (#47): real lesion maps on real brains only (orbitai.phantoms.lesion_maps, 144 training cases)
	$(PY) -m orbitai neuro train-lesions --out $(LESION)_real_only --work $(LESION)_train_real_only --init $(LESION)_stage5 --ms-seeds "" --nmosd-seeds "" --real-seeds 20000:20144 --iterations 3000 --batch 16 --lr 0.001 --seed 76 --lesion-sampling mixed --contrast-min 0.35 --threads 2
	# stage 7: 288 real-map cases, 6000 more steps at half the learning rate
	$(PY) -m orbitai neuro train-lesions --out $(LESION)_real_long --work $(LESION)_train_real_long --init $(LESION)_real_only --ms-seeds "" --nmosd-seeds "" --real-seeds 20000:20288 --iterations 6000 --batch 16 --lr 0.0005 --seed 96 --lesion-sampling mixed --contrast-min 0.35 --threads 2
	# stage 8: 432 real-map cases, 6000 more steps at 3e-4 (one thread: 55 min beside another job)
	$(PY) -m orbitai neuro train-lesions --out $(LESION)_real8 --work $(LESION)_train_real8 --init $(LESION)_real_long --ms-seeds "" --nmosd-seeds "" --real-seeds 20000:20432 --iterations 6000 --batch 16 --lr 0.0003 --seed 106 --lesion-sampling mixed --contrast-min 0.35 --threads 1
	# stage 9 (issue 79, model 0.3.0): recall first, blob loss's lesion-wise term and 20 % hard-negative patches, bf16 steps
	# (31 min on 2 shared cores; 0.3.0 was started from stage 8 as stored in half precision, 0.2.0's weights)
	$(PY) -m orbitai neuro train-lesions --out $(MODELS)/neuro_lesion_unet_demo --work $(LESION)_blob --init $(LESION)_real8 --ms-seeds "" --nmosd-seeds "" --real-seeds 20000:20144 --iterations 4000 --batch 16 --lr 0.0003 --seed 126 --lesion-sampling mixed --contrast-min 0.35 --blob 1.0 --hard-negative 0.2 --threads 2 --speed bf16 --overwrite
	$(MAKE) half-precision
	# threshold and smallest lesion chosen on the held-out real-map validation phantoms (never the real case)
	$(PY) -m orbitai neuro tune-lesions --bundle $(MODELS)/neuro_lesion_unet_demo --threads 2
	$(MAKE) neuro-second-look

# Issue 77's one-hour lesion recipe: the bundled model's chain (nine stages, 26,500 steps over many sessions) as one run
# from a random start on the 432 real-map training phantoms, the last stage's loss and sampling (blob term, hard
# negatives), bfloat16 steps compiled. 16,500 steps are 57 min at this recipe's own rate on 2 quiet cores (0.21 s a
# step: the blob term and the hard negatives cost more than the benchmark's plain recipe, 0.12 s); --time-limit ends it
# at one hour of stepping whatever the machine's load. The phantoms are made first (once, cached in the work folder).
# Resumable: the same command goes on.
# Judged against the bundled model by `orbitai neuro tune-lesions` on the same validation phantoms; not bundled here.
neuro-lesion-hour: $(STAMP)
	$(PY) -m orbitai neuro train-lesions --out build/models/neuro_lesion_hour --work $(LESION)_hour --ms-seeds "" --nmosd-seeds "" --real-seeds 20000:20432 --iterations 16500 --batch 16 --lr 0.001 --seed 136 --lesion-sampling mixed --contrast-min 0.35 --blob 1.0 --hard-negative 0.2 --threads 2 --speed compiled --time-limit 60

# The same hour with a normal FLAIR's regional brightness in the training brains (--regional: brighter grey matter in
# places, hippocampus, amygdala and hypothalamus brighter than their tissue), against the real FLAIR's false lesions.
neuro-lesion-hour-regional: $(STAMP)
	$(PY) -m orbitai neuro train-lesions --out build/models/neuro_lesion_hour_regional --work $(LESION)_hour_regional --ms-seeds "" --nmosd-seeds "" --real-seeds 20000:20432 --iterations 16500 --batch 16 --lr 0.001 --seed 136 --lesion-sampling mixed --contrast-min 0.35 --blob 1.0 --hard-negative 0.2 --regional --threads 2 --speed compiled --time-limit 60

# Issue 79: the lesion bundle's learned second look at each candidate, fitted on the validation split's 52 phantoms
# (their probabilities cached in ~/.orbitai/cache/lesion-probs; ~15 min on 2 CPU cores the first time, then ~3 min).
neuro-second-look: $(STAMP)
	$(PY) -m orbitai neuro second-look --bundle $(MODELS)/neuro_lesion_unet_demo

# How far to trust a call (issue 51): each classifier's out-of-distribution statistics (its features on phantoms
# drawn like its training cohort), threshold and calibration (on validation phantoms), written into its
# metadata.json; test phantoms (benchmarks' seeds, never fitted on) give the report. ~50 min on 2 CPU cores.
TRUST := build/trust
trust: tao-trust ivgc-trust neuro-trust

tao-trust: $(STAMP)
	$(PY) -m orbitai phantom tao --n 120 --seed 3000 --out $(TRUST)/tao/train --montage-cases 0
	$(PY) -m orbitai phantom tao --n 200 --seed 3500 --out $(TRUST)/tao/validation --montage-cases 0
	$(PY) -m orbitai phantom tao --n 200 --seed 3700 --out $(TRUST)/tao/test --montage-cases 0
	for m in B A; do $(PY) -m orbitai tao trust --model $$m --manifest $(TRUST)/tao/train/manifest.csv --validation $(TRUST)/tao/validation/manifest.csv --test $(TRUST)/tao/test/manifest.csv --cache $(TRUST)/tao/cache --report $(TRUST)/report_tao_$$m.json || exit 1; done

ivgc-trust: $(STAMP)
	$(PY) -m orbitai phantom ivgc --n 150 --seed 6000 --out $(TRUST)/ivgc/train --montage-cases 0
	$(PY) -m orbitai phantom ivgc --n 200 --seed 6500 --out $(TRUST)/ivgc/validation --montage-cases 0
	$(PY) -m orbitai phantom ivgc --n 200 --seed 7000 --out $(TRUST)/ivgc/test --montage-cases 0
	for m in svm resnet50 rdinet rdinet_clinical; do $(PY) -m orbitai ivgc trust --model $$m --manifest $(TRUST)/ivgc/train/manifest.csv --validation $(TRUST)/ivgc/validation/manifest.csv --test $(TRUST)/ivgc/test/manifest.csv --cache $(TRUST)/ivgc/cache --report $(TRUST)/report_ivgc_$$m.json || exit 1; done

neuro-trust: $(STAMP)
	$(PY) -m orbitai phantom brain-flair --n 160 --seed 16000 --out $(TRUST)/neuro/train --montage-cases 0
	$(PY) -m orbitai phantom brain-flair --n 160 --seed 16500 --out $(TRUST)/neuro/validation --montage-cases 0
	$(PY) -m orbitai phantom brain-flair --n 160 --seed 17000 --out $(TRUST)/neuro/test --montage-cases 0
	for m in neuro_twoview18_demo neuro_resnet3d18_demo; do $(PY) -m orbitai neuro trust --model $$m --manifest $(TRUST)/neuro/train/manifest.csv --validation $(TRUST)/neuro/validation/manifest.csv --test $(TRUST)/neuro/test/manifest.csv --cache $(TRUST)/neuro/cache --report $(TRUST)/report_neuro_$$m.json || exit 1; done

# What a scan is (issue 50): the image classifier (CT or MR, weighting, fat suppression, orbits or brain in view)
# from renderings of the 16 training SynthSeg heads and the atlas/brain phantoms; its sure-from probabilities chosen
# out of fold; tested on the 4 held-out heads. Deterministic; ~20 min on 2 CPU cores.
scan-classifier: $(STAMP)
	$(PY) -m orbitai scan train --out orbitai/resources/scan --results benchmarks/results/scan_classifier.json

# The extension's release repository (scripts/make_release.py; docs/slicer.md "Entering the Extensions Index"): OUT gets
# a one-commit repository of the committed tree without download-only weights and data, OUT-assets the release
# assets, OUT-index the Extensions Index's description file; every address is made from REPOSITORY.
.PHONY: release index-check-env
release: $(STAMP)
	@test -n "$(OUT)" || { echo "make release OUT=DIR [REPOSITORY=https://github.com/<owner>/SlicerOrbitAI]"; exit 2; }
	$(PY) scripts/make_release.py --out "$(OUT)" $(if $(REPOSITORY),--repository "$(REPOSITORY)")

# The Python the Extensions Index runs its check with (3.12, its scripts/requirements.txt), for Testing/test_release.py.
INDEX_PYTHON ?= $(shell for p in python3.12 "$$(pyenv prefix 3.12 2>/dev/null)/bin/python3.12"; do "$$p" -c '' 2>/dev/null && { command -v "$$p"; break; }; done)
index-check-env:
	@test -n "$(INDEX_PYTHON)" || { echo "no Python 3.12 found; give INDEX_PYTHON=/path/to/python3.12"; exit 2; }
	test -x $(VENV)/index-check/bin/python || $(INDEX_PYTHON) -m venv $(VENV)/index-check
	$(VENV)/index-check/bin/python -m pip install --quiet 'jsonschema>=4.0.0' 'requests>=2.25.0'

clean:
	rm -rf $(VENV) demo_output
