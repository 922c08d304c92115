"""What a scan is: the one place that says so, for every model, command and panel.

:func:`scan_facts` answers CT or MR, the MR weighting (T1, T2, FLAIR, PD) and fat suppression, the slice thickness
and whether the orbits and the brain are in view, each with its confidence and where it came from: what the user
stated (``--modality``, the panel's Scan choice) first, then DICOM tags, then the image classifier
(:mod:`orbitai.scan.classifier`, trained on renderings of 20 real heads), with the file name as a weak hint when the
image leaves a question open. Modules route their models on it (:meth:`ScanFacts.require_modality`) and say caveats
from it (:meth:`ScanFacts.caveats` against the model's :class:`Expects`); it is written to ``result.json`` as
``scan``. The image's values (Hounsfield units, CT stored as 8-bit or with +1024, values wrapped by an overflow) are
measured once with the facts (:attr:`ScanFacts.values`, :mod:`orbitai.scan.evidence`) and judged against them by
:mod:`orbitai.scan.values` (which model family reads the scan, what is refused, the caveats): no module outside
``orbitai/scan`` judges an image (issue 63).

Slicer-free and light: NumPy, SciPy and SimpleITK only.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from orbitai.io.orient import mm_text
from orbitai.io.volume import Volume, VolumeError
from orbitai.modality import MODALITY_CHOICES, parse_stated
from orbitai.scan.classifier import load as load_classifier
from orbitai.scan.evidence import ValueEvidence, value_evidence
from orbitai.scan.features import coarse_values, why_not_a_scan
from orbitai.scan.tags import TAGS, from_file_name, from_tags, number

__all__ = ["Fact", "ScanFacts", "Expects", "scan_facts", "MODALITY_CHOICES", "parse_stated"]

#: Below these probabilities an answer is unsure, unless the classifier's training chose others (its ``sure``,
#: chosen on heads its fit did not see: benchmarks/results/scan_classifier.json).
DEFAULT_SURE = {"modality": 0.9, "weighting": 0.8, "fat_suppressed": 0.8, "orbits_in_view": 0.8,
                "brain_in_view": 0.8}


@dataclass(frozen=True)
class Fact:
    """One answer: its value (None: not known), confidence 0-1 and source."""

    value: Any
    confidence: float
    source: str

    @property
    def known(self) -> bool:
        return self.value is not None

    def to_json(self) -> dict:
        return {"value": self.value, "confidence": round(self.confidence, 3), "source": self.source}


UNKNOWN = Fact(None, 0.0, "not known")


@dataclass(frozen=True)
class Expects:
    """What a model was made for, checked against the facts (None: anything)."""

    modality: Optional[str] = None
    weightings: Optional[tuple[str, ...]] = None
    fat_suppressed: Optional[bool] = None
    max_slice_mm: Optional[float] = None
    orbits: bool = False
    brain: bool = False
    name: str = "this model"


@dataclass
class ScanFacts:
    """What the scan is (see the module docstring)."""

    modality: Fact = UNKNOWN
    weighting: Fact = UNKNOWN
    fat_suppressed: Fact = UNKNOWN
    slice_mm: Fact = UNKNOWN
    orbits_in_view: Fact = UNKNOWN
    brain_in_view: Fact = UNKNOWN
    notes: list[str] = field(default_factory=list)
    thresholds: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_SURE))
    #: What the image's values say (:mod:`orbitai.scan.evidence`), measured once with the facts; the value rules of
    #: :mod:`orbitai.scan.values` read it (None: facts made without the image, measured from it where asked).
    values: Optional[ValueEvidence] = None

    QUESTIONS = ("modality", "weighting", "fat_suppressed", "slice_mm", "orbits_in_view", "brain_in_view")

    def sure(self, question: str) -> bool:
        fact: Fact = getattr(self, question)
        return fact.known and fact.confidence >= self.thresholds.get(question, 0.0)

    def to_json(self) -> dict:
        out: dict[str, Any] = {q: getattr(self, q).to_json() for q in self.QUESTIONS}
        out["summary"] = self.summary()
        out["notes"] = list(self.notes)
        return out

    def summary(self) -> str:
        """One line: "MR T2, fat not suppressed, 3.3 mm slices, orbits and brain in view"."""
        if not self.sure("modality"):
            guess = f" (likely {self.modality.value}, {self.modality.confidence:.2f})" if self.modality.known else ""
            return f"CT or MRI not certain{guess}"
        parts = [str(self.modality.value)]
        if self.modality.value == "MR":
            parts[0] += " " + (str(self.weighting.value) if self.sure("weighting") else "weighting uncertain")
            if self.sure("fat_suppressed"):
                parts.append("fat suppressed" if self.fat_suppressed.value else "fat not suppressed")
        if self.slice_mm.known:
            parts.append(f"{self.slice_mm.value:.3g} mm slices")
        seen = [w for w, q in (("orbits", "orbits_in_view"), ("brain", "brain_in_view"))
                if self.sure(q) and getattr(self, q).value]
        if seen:
            parts.append(" and ".join(seen) + " in view")
        return ", ".join(parts)

    def require_modality(self, what: str = "the image") -> str:
        """"CT" or "MR"; raises :class:`VolumeError` asking for ``--modality`` when the scan does not say."""
        if self.sure("modality"):
            return str(self.modality.value)
        said = (f"the image looks like {self.modality.value} with only {self.modality.confidence:.0%} confidence"
                if self.modality.known else (self.notes[-1].rstrip(".") if self.notes else "nothing says which"))
        raise VolumeError(f"Cannot tell whether {what} is CT or MRI ({said}): run again with --modality CT or "
                          "--modality MR (in Slicer or the browser: choose it under Scan).")

    def _likely(self, question: str) -> str:
        """"the image suggests X (0.54)" or "nothing says" for an unsure answer."""
        fact: Fact = getattr(self, question)
        if not fact.known:
            return "nothing in the scan says"
        value = {True: "fat suppressed", False: "not fat suppressed"}.get(fact.value, fact.value) \
            if question == "fat_suppressed" else fact.value
        return f"the {fact.source} suggests {value}, {fact.confidence:.2f}"

    def caveats(self, expects: Expects) -> list[str]:
        """What about the scan breaks what ``expects`` says the model was made for, one sentence each: a sure answer
        that differs, and an unsure one whose likeliest value differs (said as not confirmed)."""
        return [sentence for sentence, _, _ in self._checks(expects)]

    def breaks(self, expects: Expects) -> list[str]:
        """Short reasons (e.g. "4 mm slices, made for up to 3.3 mm") of every caveat: a call on such a scan is
        outside what the model was made for. An unsure answer whose likeliest value breaks ``expects`` counts (said
        as unconfirmed): the user clears it by stating what the scan is (``--modality``)."""
        return [reason for _, reason, _ in self._checks(expects)]

    def _checks(self, expects: Expects) -> list[tuple[str, str, bool]]:
        """(sentence, short reason, sure) of each way the scan breaks ``expects``."""
        out = []
        name = expects.name
        if expects.modality and self.sure("modality") and self.modality.value != expects.modality:
            out.append((f"{name} was made for {expects.modality}, but this scan is {self.modality.value} "
                        f"({self.modality.source}): the result is unreliable.",
                        f"a {self.modality.value}, made for {expects.modality}", True))
        is_mr = self.modality.value == "MR" and self.sure("modality")
        if is_mr and expects.weightings:
            want = "/".join(expects.weightings)
            if self.sure("weighting") and self.weighting.value not in expects.weightings:
                out.append((f"{name} was made for {want}-weighted MRI, but this scan is {self.weighting.value}-weighted "
                            f"({self.weighting.source}): the result is unreliable.",
                            f"{self.weighting.value}-weighted, made for {want}", True))
            elif self.weighting.known and self.weighting.value not in expects.weightings:    # unsure, likely other
                out.append((f"{name} was made for {want}-weighted MRI; this scan's weighting could not be confirmed "
                            f"({self._likely('weighting')}): check it (or state it with --modality).",
                            f"{want}-weighting unconfirmed, likely {self.weighting.value}", False))
        if is_mr and expects.fat_suppressed is not None:
            want = "with fat suppression" if expects.fat_suppressed else "without fat suppression"
            if self.sure("fat_suppressed") and bool(self.fat_suppressed.value) != expects.fat_suppressed:
                got = "has" if self.fat_suppressed.value else "has no"
                out.append((f"{name} was made for MRI {want}, but this scan {got} fat suppression "
                            f"({self.fat_suppressed.source}): fat and oedema look different, the result is "
                            "unreliable.", f"{got} fat suppression, made for MRI {want}", True))
            elif self.fat_suppressed.known and bool(self.fat_suppressed.value) != expects.fat_suppressed:
                out.append((f"{name} was made for MRI {want}; whether this scan is fat suppressed could not be "
                            f"confirmed ({self._likely('fat_suppressed')}): check it (or state it with --modality).",
                            "fat suppression unconfirmed, likely " + ("present" if self.fat_suppressed.value else "none"),
                            False))
        if expects.max_slice_mm and self.slice_mm.known and self.slice_mm.value > expects.max_slice_mm + 1e-6:
            # never rounded down to the limit it exceeds (3.304 mm is not "3.3 mm slices, made for up to 3.3 mm")
            thick = mm_text(float(self.slice_mm.value), expects.max_slice_mm, 2).rstrip("0").rstrip(".")
            out.append((f"{name} was made for slices up to {expects.max_slice_mm:g} mm, but this scan's are "
                        f"{thick} mm: small structures are blurred, the result is unreliable.",
                        f"{thick} mm slices, made for up to {expects.max_slice_mm:g} mm", True))
        for wanted, q, what in ((expects.orbits, "orbits_in_view", "the orbits"),
                                (expects.brain, "brain_in_view", "the brain")):
            fact: Fact = getattr(self, q)
            if wanted and self.sure(q) and not fact.value:
                out.append((f"{name} needs {what} in view, but they do not seem to be in this scan "
                            f"({fact.source}, {fact.confidence:.2f}).", f"{what} not in view", True))
        return out


def _slice_mm(vol: Volume, tags: dict[str, str]) -> Fact:
    thickness = number(tags.get(TAGS["SliceThickness"]))
    spacing = max(vol.spacing)
    if thickness and thickness > 0:
        return Fact(round(max(thickness, spacing), 3), 1.0, "DICOM SliceThickness and slice spacing")
    return Fact(round(spacing, 3), 1.0, "voxel spacing")


def scan_facts(vol: Volume, tags: Optional[dict[str, str]] = None, path: str | os.PathLike | None = None,
               stated: Optional[str] = None, image: bool = True, values: Optional[ValueEvidence] = None) -> ScanFacts:
    """What ``vol`` is (see the module docstring). ``tags``: its DICOM tags (``Acquisition.tags``); ``path``: its
    file (the name is a hint); ``stated``: the ``--modality`` value; ``image``: ask the image classifier (without
    it, the facts hold what is stated, tagged and named, and the values' evidence); ``values``: ``vol``'s value
    evidence when the caller measured it already (:func:`orbitai.scan.evidence.value_evidence`, else measured here)."""
    tags = dict(tags or {})
    if "Modality" in vol.metadata and "0008|0060" not in tags:
        tags["0008|0060"] = vol.metadata["Modality"]
    facts = ScanFacts(slice_mm=_slice_mm(vol, tags), values=values if values is not None else value_evidence(vol))
    sure = facts.thresholds
    given = {q: Fact(v, 1.0, "stated (--modality)") for q, v in parse_stated(stated).items()}
    from_dicom = {q: Fact(v, 0.99, src) for q, (v, src) in from_tags(tags).items()}
    hints = from_file_name(Path(path).name) if path is not None and not Path(path).is_dir() else {}
    seen: dict[str, Fact] = {}
    if image:
        classifier = load_classifier()
        sure.update(classifier.meta.get("sure") or {})
        coarse = coarse_values(vol)                       # resampled once for both
        why = why_not_a_scan(vol, coarse)
        if why:
            facts.notes.append(f"The image classifier cannot tell what this scan is: {why}.")
        else:
            for q, (value, p) in classifier.answer(vol, coarse).items():
                seen[q] = Fact(value, p, "image")
    for q in ScanFacts.QUESTIONS:
        if q == "slice_mm":
            continue
        choice = given.get(q) or from_dicom.get(q)
        looked = seen.get(q)
        if choice is None and looked is not None:
            choice = looked
            hint = hints.get(q)
            if hint is not None and looked.confidence < sure.get(q, 0.0) and hint[0] != looked.value:
                choice = Fact(hint[0], 0.6, f"{hint[1]} (the image is unsure)")
            elif hint is not None and hint[0] == looked.value and looked.confidence < sure.get(q, 0.0):
                choice = Fact(looked.value, max(looked.confidence, sure.get(q, 0.0)), f"image and {hint[1]}")
        elif choice is None and q in hints:
            choice = Fact(hints[q][0], 0.6, hints[q][1])
        if choice is None:
            continue
        if looked is not None and choice.source != "image" and looked.value != choice.value \
                and looked.confidence >= 0.98 and q == "modality":
            facts.notes.append(f"The {choice.source} says {choice.value} but the image looks like {looked.value} "
                               f"({looked.confidence:.2f}); {choice.source} is followed.")
        setattr(facts, q, choice)
    named = hints.get("weighting")
    if named is not None and "modality" not in seen and not facts.sure("modality") and facts.modality.value == "MR":
        # a weighting the file names (PD as T1, T2, FLAIR) is an MR's, and the image, which cannot tell, says nothing
        # against it (a statement or the DICOM tags are sure already)
        facts.modality = Fact("MR", sure.get("modality", DEFAULT_SURE["modality"]), f"file name ({named[0]}: an MR "
                              "weighting)")
    if facts.modality.value == "CT" and facts.sure("modality"):
        facts.weighting = facts.fat_suppressed = UNKNOWN
    return facts
