"""Named segmentation configurations: architecture, model grid, recipe.

``*-paper`` configurations reproduce the papers (sizes, heads, optimiser); ``*-demo``
configurations shrink width and window so that they train on 2 CPU cores within the
documented time and give the bundled demo models.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Optional

from orbitai.errors import ConfigError
from orbitai.engine.inference import SegSpec

#: Paper 002's five targets in its channel order (background first, implied).
SVNET_PAPER_STRUCTURES = ("superior_rectus_muscle", "lateral_rectus_muscle", "medial_rectus_muscle",
                          "inferior_rectus_muscle", "optic_nerve")
#: OrbitAI's own models: eyeball, optic nerve and the four recti (the orbit label scheme).
ORBIT_STRUCTURES = ("eyeball", "optic_nerve", "superior_rectus_muscle", "inferior_rectus_muscle",
                    "medial_rectus_muscle", "lateral_rectus_muscle")


@dataclass(frozen=True)
class SegConfig:
    name: str
    arch: str
    arch_args: dict[str, Any]
    spec: SegSpec
    description: str = ""
    lr: float = 1e-4
    lr_decay_epoch: int = 0           # from this epoch on (1-based) lr *= lr_decay_factor; 0 = never
    lr_decay_factor: float = 0.1
    batch_size: int = 4
    epochs: int = 125
    iters_per_epoch: int = 50
    loss: str = "bce"
    rotate_deg: float = 10.0
    flip_lr: bool = True
    noise_std: float = 0.03
    fg_prob: float = 0.8
    val_every: int = 5
    extra: dict[str, Any] = field(default_factory=dict)
    seed: int = 0                     # the case split, the initial weights and every patch drawn
    #: How the steps use the CPU (`orbitai.training.speed`: auto, bf16, compiled, plain; None: $ORBITAI_TRAIN_SPEED, else auto).
    speed: Optional[str] = None


def _spec(structures, spacing, patch, intensity, modality="any") -> SegSpec:
    return SegSpec(tuple(spacing), tuple(patch), tuple(structures), dict(intensity), modality)


CT_WINDOW = {"mode": "ct_window", "level": 48, "width": 400}
PERCENTILE = {"mode": "percentile", "low": 0.5, "high": 99.5}

CONFIGS: dict[str, SegConfig] = {}


def _add(cfg: SegConfig) -> None:
    CONFIGS[cfg.name] = cfg


# Paper-exact SV-net: 256 x 256 x 32 window, six channels, sigmoid CE, Adam 1e-4, batch 4, 125 epochs.
_add(SegConfig("svnet-paper", "svnet", {"in_channels": 1, "out_channels": 6},
               _spec(SVNET_PAPER_STRUCTURES, (0.34, 0.34, 0.5), (32, 256, 256), CT_WINDOW, "CT"),
               "SV-net as published (paper 002): 8.6 M weights, CT, 6 channels."))
_add(SegConfig("sunet-paper", "sunet_volume", {"in_channels": 1, "out_channels": 6},
               _spec(SVNET_PAPER_STRUCTURES, (0.34, 0.34, 0.5), (32, 256, 256), CT_WINDOW, "CT"),
               "SU-net, the 2D baseline of paper 002."))
_add(SegConfig("sequnet-paper", "sequnet_volume", {"out_channels": 4},
               _spec(("eyeball", "extraocular_muscles", "optic_nerve"), (0.75, 0.75, 1.0), (3, 64, 64),
                     CT_WINDOW, "CT"),
               "SEQ-UNET as published (paper 004): 3 sequential 64x64 slices, labels eyeball/EOM/ON.",
               batch_size=32, epochs=500))

# Demo configurations: orbit label scheme, width-reduced, trainable on 2 CPU cores.
# Demo recipe: Adam 1e-3 and softmax CE + Dice instead of the paper's sigmoid CE at 1e-4, so
# the small networks learn thin muscles within a CPU budget (the paper configs keep the paper's).
_DEMO: dict[str, Any] = dict(lr=1e-3, lr_decay_epoch=61, batch_size=2, epochs=60, iters_per_epoch=30, loss="ce_dice", val_every=10)
_add(SegConfig("svnet-demo-ct", "svnet", {"in_channels": 1, "out_channels": 7, "base_channels": 6},
               _spec(ORBIT_STRUCTURES, (0.8, 0.8, 0.8), (32, 96, 96), CT_WINDOW, "CT"),
               "Width-reduced SV-net trained on orbital CT phantoms (demo, not for clinical use).",
               **{**_DEMO, "epochs": 90}))
# Issue #66 (TED recti on CT read 0.56x their volume): a second stage from the first on 36 CT phantoms of the same seed,
# each with its recti enlarged 1.5-3.5x with probability 0.33 (`orbitai phantom orbit-ct --ted 0.33`: 18 of the 36 drawn);
# a third of the learning rate. The bundled CT model since 0.2.0 (benchmarks/results/orbit_ct_ted.json).
_add(SegConfig("svnet-demo-ct-ted", "svnet", {"in_channels": 1, "out_channels": 7, "base_channels": 6},
               _spec(ORBIT_STRUCTURES, (0.8, 0.8, 0.8), (32, 96, 96), CT_WINDOW, "CT"),
               "Second stage of svnet-demo-ct: CT phantoms, a share with thyroid-eye-disease-enlarged recti (demo, not "
               "for clinical use).",
               **{**_DEMO, "lr": 3e-4, "lr_decay_epoch": 21, "epochs": 30}))
_add(SegConfig("svnet-demo-dr", "svnet", {"in_channels": 1, "out_channels": 7, "base_channels": 6},
               _spec(ORBIT_STRUCTURES, (0.8, 0.8, 0.8), (32, 96, 96), PERCENTILE, "any"),
               "Width-reduced SV-net trained on domain-randomised phantoms (CT and MRI; demo).",
               **{**_DEMO, "lr_decay_epoch": 31, "epochs": 45}))
# MRI of any contrast and slice thickness: SynthSeg-style patches rendered on the fly from 96 deformed atlas
# heads (orbitai.orbit.synth; every tissue its own random contrast, 1.5-6 mm slices along a random axis,
# heads tilted up to 20 degrees, a share with TAO muscles), centred on a structure chosen uniformly among
# the six (the thin ones as often as the eyeball), with a quarter of the patches from supervised T1/T2
# MRI phantoms ('make models' starts it from orbit_svnet_dr_demo's weights).
_add(SegConfig("svnet-demo-mri", "svnet", {"in_channels": 1, "out_channels": 7, "base_channels": 6},
               _spec(ORBIT_STRUCTURES, (0.8, 0.8, 0.8), (32, 96, 96), PERCENTILE, "any"),
               "Width-reduced SV-net for MRI of any contrast and slice thickness: on-the-fly domain-randomised "
               "atlas heads plus T1/T2 MRI phantoms (demo, not for clinical use).",
               **{**_DEMO, "lr_decay_epoch": 66, "epochs": 90, "fg_prob": 0.9},
               extra={"synth": {"anatomies": 96, "seed": 2000}, "manifest_share": 0.25}))
# Its second stage (the bundled default): the same recipe at a third of the learning rate for 40 more epochs,
# a fifth of the synthetic patches cut by a field-of-view edge through the orbit (a clinical brain scan
# whose front or foot ends inside a globe, dim where the head coil ends).
_add(SegConfig("svnet-demo-mri-edge", "svnet", {"in_channels": 1, "out_channels": 7, "base_channels": 6},
               _spec(ORBIT_STRUCTURES, (0.8, 0.8, 0.8), (32, 96, 96), PERCENTILE, "any"),
               "Second stage of svnet-demo-mri: lower learning rate, a fifth of the synthetic patches cut by the "
               "scan's field of view (demo, not for clinical use).",
               **{**_DEMO, "lr": 3e-4, "lr_decay_epoch": 31, "epochs": 40, "fg_prob": 0.9},
               extra={"synth": {"anatomies": 96, "seed": 2000, "fov_edge": 0.2}, "manifest_share": 0.25}))
# A third stage tried for issue 31 (the T2 superior rectus): half the patches from the supervised T1/T2 phantoms,
# a low learning rate, 20 epochs from the bundled second stage. Not adopted: better phantoms, worse real scans
# (benchmarks/results/orbit_mri_variants.json).
_add(SegConfig("svnet-demo-mri-t2", "svnet", {"in_channels": 1, "out_channels": 7, "base_channels": 6},
               _spec(ORBIT_STRUCTURES, (0.8, 0.8, 0.8), (32, 96, 96), PERCENTILE, "any"),
               "Third stage of svnet-demo-mri: half the patches from T1/T2 MRI phantoms, low learning rate (demo, "
               "not for clinical use).",
               **{**_DEMO, "lr": 2e-4, "lr_decay_epoch": 16, "epochs": 20, "fg_prob": 0.9},
               extra={"synth": {"anatomies": 96, "seed": 2000, "fov_edge": 0.2}, "manifest_share": 0.5}))
# Its counterpart: no phantom patches at all, synthetic heads only (does the phantom share cost the real scans?).
_add(SegConfig("svnet-demo-mri-synth", "svnet", {"in_channels": 1, "out_channels": 7, "base_channels": 6},
               _spec(ORBIT_STRUCTURES, (0.8, 0.8, 0.8), (32, 96, 96), PERCENTILE, "any"),
               "Third stage of svnet-demo-mri: synthetic heads only, low learning rate (demo, not for clinical use).",
               **{**_DEMO, "lr": 2e-4, "lr_decay_epoch": 16, "epochs": 20, "fg_prob": 0.9},
               extra={"synth": {"anatomies": 96, "seed": 2000, "fov_edge": 0.2}, "manifest_share": 0.0}))
# Issue #46: the synthetic heads drawn from 17 anatomies instead of one: the atlas and the 16 SynthSeg training heads
# with the atlas's muscles and nerves carried into their orbits (orbitai.phantoms.head_orbits; heads 17-20 held out
# for choices), six deformed heads each; fine-tuned from the bundled MRI model, then the field-of-view stage.
_HEADS = {"anatomies": 102, "seed": 4600, "templates": [0, *range(1, 17)]}
_add(SegConfig("svnet-demo-mri-heads", "svnet", {"in_channels": 1, "out_channels": 7, "base_channels": 6},
               _spec(ORBIT_STRUCTURES, (0.8, 0.8, 0.8), (32, 96, 96), PERCENTILE, "any"),
               "Width-reduced SV-net for MRI of any contrast and slice thickness: on-the-fly domain-randomised heads "
               "of 17 anatomies (the SPL/NAC atlas and 16 SynthSeg heads) plus T1/T2 MRI phantoms (demo, not for "
               "clinical use).",
               **{**_DEMO, "lr": 5e-4, "lr_decay_epoch": 61, "epochs": 90, "fg_prob": 0.9},
               extra={"synth": {**_HEADS, "fov_edge": 0.2}, "manifest_share": 0.25}))
_add(SegConfig("svnet-demo-mri-heads-edge", "svnet", {"in_channels": 1, "out_channels": 7, "base_channels": 6},
               _spec(ORBIT_STRUCTURES, (0.8, 0.8, 0.8), (32, 96, 96), PERCENTILE, "any"),
               "Second stage of svnet-demo-mri-heads: lower learning rate, the heads' patches as before (demo, not for "
               "clinical use).",
               **{**_DEMO, "lr": 2e-4, "lr_decay_epoch": 31, "epochs": 40, "fg_prob": 0.9},
               extra={"synth": {**_HEADS, "fov_edge": 0.2}, "manifest_share": 0.25}))
# Issue #66: recti on clinical thick slices and in thyroid eye disease. A fourth stage from the bundled model: a third of
# the synthetic patches rendered as clinical 2D protocols (3-5 mm axial or coronal slices, fine in-plane sampling) and
# a third of the heads with every rectus enlarged 1.5-3.5x (orbitai.orbit.synth.TED_SCALE); lower learning rate.
_add(SegConfig("svnet-demo-mri-ted-thick", "svnet", {"in_channels": 1, "out_channels": 7, "base_channels": 6},
               _spec(ORBIT_STRUCTURES, (0.8, 0.8, 0.8), (32, 96, 96), PERCENTILE, "any"),
               "Fourth stage of svnet-demo-mri-heads: a third of the patches from clinical 3-5 mm 2D protocols, a "
               "third of the heads with TED-enlarged recti (demo, not for clinical use).",
               **{**_DEMO, "lr": 2e-4, "lr_decay_epoch": 31, "epochs": 40, "fg_prob": 0.9},
               extra={"synth": {**_HEADS, "fov_edge": 0.2, "ted_share": 0.33, "clinical_thick": 0.33},
                      "manifest_share": 0.25}))
# Issue #66 (globes 1.2x on 1 mm T1): a fifth stage from the fourth, with the sclera drawn plain (like the vitreous or
# darker) in a share of the synthetic patches (orbitai.orbit.synth.PLAIN_SCLERA_LIKE_VITREOUS).
_add(SegConfig("svnet-demo-mri-ted-thick-globe", "svnet", {"in_channels": 1, "out_channels": 7, "base_channels": 6},
               _spec(ORBIT_STRUCTURES, (0.8, 0.8, 0.8), (32, 96, 96), PERCENTILE, "any"),
               "Fifth stage of svnet-demo-mri-heads: the fourth's clinical thick slices and TED-enlarged recti, and the "
               "sclera drawn plain in 40 % of the synthetic patches (demo, not for clinical use).",
               **{**_DEMO, "lr": 2e-4, "lr_decay_epoch": 31, "epochs": 40, "fg_prob": 0.9},
               extra={"synth": {**_HEADS, "fov_edge": 0.2, "ted_share": 0.33, "clinical_thick": 0.33,
                                "plain_sclera": 0.4},
                      "manifest_share": 0.25}))
# Issue 78 (TED recti on MRI read 0.41x their volume; the synthetic-head TED stages reached 0.59): the CT stage's recipe on
# MRI. A sixth stage from the bundled model with a third of its patches from supervised T1/T2 MRI phantoms of which
# half have every rectus enlarged (`orbitai phantom orbit-mri --n 36 --seed 2100 --ted 0.5`), the rest synthetic heads
# as the fifth stage draws them (clinical thick slices, TED heads, plain sclera) but two per anatomy (34 heads, the first
# 34 of the 102: building a head takes ~20 s of a core, cached after); lower learning rate.
_add(SegConfig("svnet-demo-mri-ted-cases", "svnet", {"in_channels": 1, "out_channels": 7, "base_channels": 6},
               _spec(ORBIT_STRUCTURES, (0.8, 0.8, 0.8), (32, 96, 96), PERCENTILE, "any"),
               "Sixth stage of svnet-demo-mri-heads: a third of the patches from T1/T2 MRI phantoms, half of them with "
               "thyroid-eye-disease-enlarged recti; synthetic heads as the fifth stage (demo, not for clinical use).",
               **{**_DEMO, "lr": 2e-4, "lr_decay_epoch": 41, "epochs": 50, "fg_prob": 0.9},
               extra={"synth": {**_HEADS, "anatomies": 34, "fov_edge": 0.2, "ted_share": 0.33, "clinical_thick": 0.33,
                                "plain_sclera": 0.4},
                      "manifest_share": 0.33}))
# Issue 78, a seventh stage from the sixth (which read 0.77 of an enlarged rectus after 50 epochs, still rising): the
# same patches with half the synthetic heads TED-enlarged, 120 epochs (~35 min on 2 cores with bf16 steps), resumable.
_SIXTH = CONFIGS["svnet-demo-mri-ted-cases"]
_add(replace(_SIXTH, name="svnet-demo-mri-ted-cases-long",
             description="Seventh stage of svnet-demo-mri-heads: the sixth's patches, half of the synthetic heads with "
                         "thyroid-eye-disease-enlarged recti, longer (demo, not for clinical use).",
             lr_decay_epoch=91, epochs=120,
             extra={**_SIXTH.extra, "synth": {**_SIXTH.extra["synth"], "ted_share": 0.5}}))
# Issue 78, a ninth stage from the bundled eighth (0.3.0): the seventh's recipe with the sclera drawn plain in 70 % of the
# synthetic patches instead of 40 % (benchmarks/results/globe_sclera.json: a rim unlike the vitreous taught the network
# that a globe ends one layer past its vitreous-like inside; at 40 % the 1 mm T1 head globes went 1.21x -> 1.15x).
# Trained (120 epochs, seed 3, bf16) and not kept: head T1 globes 1.15x -> 1.12x and TED recti 0.862 -> 0.887 of their
# volume, but the real MRI heads' structure-sides in range 50 -> 46 of 84 and eyeballs 5.5-9.5 cm3 4 -> 1 of 10 (smaller
# globes on real scans), held-out heads' IR and optic nerve Dice lower (benchmarks/results/*_orbit_svnet_mri_sclera.json).
_SEVENTH = CONFIGS["svnet-demo-mri-ted-cases-long"]
_add(replace(_SEVENTH, name="svnet-demo-mri-ted-sclera",
             description="Ninth stage of svnet-demo-mri-heads: the seventh's recipe with the sclera drawn plain in 70 % "
                         "of the synthetic patches (demo, not for clinical use).",
             extra={**_SEVENTH.extra, "synth": {**_SEVENTH.extra["synth"], "plain_sclera": 0.7}}))
# Issue 78 (real brain FLAIR and T2 of ../shared/data: globes read at 3.4-4.9 cm3 where the head coil's sensitivity falls
# towards the face: the front of each globe dim, the network stopping where the vitreous darkens): a tenth stage, the
# seventh's recipe with a third of the patches that have no field-of-view edge dimmed towards the face, the scan going on
# (orbitai.orbit.synth._coil_falloff). Trained (120 epochs from 0.3.0, seed 3, bf16; 27 s an epoch) and not kept: real
# MRIs 50 of 60 structure-sides in range (bundled 50), eyeballs 5.5-9.5 cm3 3 of 10 (4), the 4 mm FLAIR globes smaller
# (benchmarks/results/orbit_real_mri.json); TED recti 0.865 of their volume, enlarged read 0.714 (0.762).
_add(replace(_SEVENTH, name="svnet-demo-mri-ted-falloff",
             description="Tenth stage of svnet-demo-mri-heads: the seventh's recipe with a third of the synthetic patches "
                         "dimmed towards the face as a head coil's sensitivity falls (demo, not for clinical use).",
             extra={**_SEVENTH.extra, "synth": {**_SEVENTH.extra["synth"], "coil_falloff": 0.33}}))
# The tenth stage left the real 4 mm FLAIR globes as small (2.3-2.9 cm3 where the bundled model reads 3.4-3.5): from it,
# half the patches without an edge dimmed, to 0.02-0.3 in front (the real T2's front vitreous nears the air's darkness).
# Trained (40 epochs, seed 4) and not kept: real MRIs 47 of 60 in range, eyeballs 3 of 10, one 4 mm FLAIR globe 1.3 cm3.
# Dimming the face does not bring back the dark front of a real globe: its cause is not the coil's falloff alone.
_TENTH = CONFIGS["svnet-demo-mri-ted-falloff"]
_add(replace(_TENTH, name="svnet-demo-mri-ted-falloff-dim",
             description="Eleventh stage of svnet-demo-mri-heads: the tenth's recipe with half the synthetic patches "
                         "dimmed towards the face, more deeply (demo, not for clinical use).",
             lr_decay_epoch=31, epochs=40,
             extra={**_TENTH.extra, "synth": {**_TENTH.extra["synth"], "coil_falloff": 0.5, "coil_floor": [0.02, 0.3]}}))
_add(SegConfig("sunet-demo-ct", "sunet_volume", {"in_channels": 1, "out_channels": 7, "base_channels": 6},
               _spec(ORBIT_STRUCTURES, (0.8, 0.8, 0.8), (32, 96, 96), CT_WINDOW, "CT"),
               "Width-reduced SU-net (2D baseline) on orbital CT phantoms (demo).", **{**_DEMO, "lr_decay_epoch": 16, "epochs": 20}))
_add(SegConfig("sequnet-demo-ct", "sequnet_volume", {"out_channels": 7, "base_channels": 8},
               _spec(ORBIT_STRUCTURES, (0.8, 0.8, 0.8), (8, 96, 96), CT_WINDOW, "CT"),
               "Width-reduced SEQ-UNET on orbital CT phantoms (demo).", **{**_DEMO, "lr_decay_epoch": 16, "epochs": 20}))


def get_config(name: str, **overrides) -> SegConfig:
    if name not in CONFIGS:
        raise ConfigError(f"Unknown segmentation configuration {name!r}; choose one of: {', '.join(CONFIGS)} "
                          "(see 'orbitai seg configs').")
    return replace(CONFIGS[name], **overrides) if overrides else CONFIGS[name]
