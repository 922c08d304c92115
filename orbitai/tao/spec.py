"""The input block of a TAO activity bundle (``metadata.json['input']``): what the network was
trained on, read back at prediction so that a bundle and its preprocessing cannot drift apart."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from orbitai.errors import BundleError
from orbitai.scan import Expects
from orbitai.tao import preprocess as pp

#: What the networks were made for: the paper's axial fat-suppressed (SPIR) T2 of the orbits at 3 mm slices (Lin et
#: al. 2021); the bundled networks were trained on phantoms with 2.0-3.3 mm slices, hence up to 3.3 mm.
EXPECTS = Expects(modality="MR", weightings=("T2",), fat_suppressed=True, max_slice_mm=3.3, orbits=True,
                  name="TAO's network (paper 000: axial T2 SPIR of the orbits, 3 mm slices)")
#: What the TAO networks assume, shown with each result (issue 51).
SCOPE = ("For a patient with thyroid eye disease: an axial fat-suppressed T2-weighted MRI of the orbits, 3 mm slices "
         "(paper 000); it does not tell whether the patient has the disease. Trained on phantoms only; not for "
         "clinical use.")


@dataclass(frozen=True)
class TaoInputSpec:
    """Crop geometry and intensity handling of the network's input (defaults: the paper's)."""

    slices: int = pp.N_SLICES               # axial slices per eye, centred on the optic-nerve plane
    crop_pixels: int = pp.CROP_PIXELS       # in-plane size of the orbit crop
    net_pixels: int = pp.NET_PIXELS         # centre crop the network sees at prediction
    crop_side_mm: float = pp.CROP_SIDE_MM   # field of view of the crop
    bias_field: str = "n4"                  # "n4" (N4 correction of the orbit region) or "none"
    normalisation: str = "zscore"           # per-crop z-score

    @classmethod
    def from_metadata(cls, meta: dict[str, Any]) -> "TaoInputSpec":
        """The bundle's input block; keys it does not state keep the paper's values."""
        inp = dict(meta.get("input") or {})
        known = set(cls.__dataclass_fields__)
        spec = cls(**{k: v for k, v in inp.items() if k in known})
        spec.check_supported(str(meta.get("name", "?")))
        return spec

    def to_metadata(self) -> dict[str, Any]:
        return asdict(self)

    def check_supported(self, bundle: str) -> None:
        """Raise `BundleError` if the preprocessing cannot produce the input the bundle expects."""
        problems = []
        if self.normalisation != "zscore":
            problems.append(f"normalisation {self.normalisation!r} (supported: 'zscore')")
        if self.bias_field not in ("n4", "none"):
            problems.append(f"bias_field {self.bias_field!r} (supported: 'n4', 'none')")
        if not (isinstance(self.slices, int) and self.slices >= 1):
            problems.append(f"slices {self.slices!r} (a positive integer)")
        if not (isinstance(self.net_pixels, int) and isinstance(self.crop_pixels, int)
                and 8 <= self.net_pixels <= self.crop_pixels):
            problems.append(f"net_pixels {self.net_pixels!r} and crop_pixels {self.crop_pixels!r} "
                            "(integers, 8 <= net_pixels <= crop_pixels)")
        if not (isinstance(self.crop_side_mm, (int, float)) and self.crop_side_mm > 0):
            problems.append(f"crop_side_mm {self.crop_side_mm!r} (a positive number)")
        if problems:
            raise BundleError(f"Bundle '{bundle}' expects an input this version cannot prepare: {'; '.join(problems)}.")
