"""``tao predict --figure``: an eye whose call is marked "do not use" is titled "not assessed: <reason>", without its
call and P(active) (issue 61 item 5); the other calls keep theirs."""
from __future__ import annotations

import matplotlib.axes

from orbitai.phantoms.orbit import CONTRASTS, Rendering, orbit_case
from orbitai.tao.figure import save_tao_figure
from orbitai.tao.predict import predict_tao

SEED = 3990123      # the brain-protocol T2 of test_tao_trust.py
NO_FAT_SUPPRESSION = "has no fat suppression, made for MRI with fat suppression"


def _titles(monkeypatch, pred, labels, path) -> list[str]:
    seen: list[str] = []
    original = matplotlib.axes.Axes.set_title

    def record(self, label, *args, **kwargs):
        seen.append(str(label))
        return original(self, label, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "set_title", record)
    save_tao_figure(pred, path, labels, title="t")
    assert path.stat().st_size > 10_000
    return [t for t in seen if "- input" in t]


def test_a_call_marked_do_not_use_is_titled_not_assessed_without_its_probability(monkeypatch, tmp_path):
    case = orbit_case(SEED, "t2", tao="active", orientation="axial", spacing=(0.6, 0.6, 3.3),
                      rendering=Rendering(contrast=CONTRASTS["t2_no_fat_suppression"]))
    pred = predict_tao(case.image, case.labels, "B", "cpu", maps=False)
    before = _titles(monkeypatch, pred, case.labels, tmp_path / "before.png")
    assert len(before) == 2
    for e, title in zip(pred.eyes, before):      # as the model's own check flags it (or not)
        assert ("not assessed" in title) == e.flagged and ("P(active)" in title) != e.flagged, title
    pred.out_of_scope([NO_FAT_SUPPRESSION])       # what `tao predict` adds when the scan's tags say so
    titles = _titles(monkeypatch, pred, case.labels, tmp_path / "after.png")
    assert len(titles) == 2
    for title in titles:
        flat = " ".join(title.split())
        assert "P(active)" not in flat and "(active)" not in flat and "(inactive)" not in flat, title
        assert f"not assessed: outside what this model was made for ({NO_FAT_SUPPRESSION})" in flat, title
