"""A task's models as the panel and the command line name them: :class:`TaskModels`, declared once per
task in its own folder (``orbitai/orbit/models.py``, ``orbitai/tao/models.py``, ``orbitai/ivgc/models.py``,
``orbitai/neuro/models.py``), with the task's loader beside it. Nothing here names a task's models.

A model is given as a panel label ("Network B (ResNet-like)"), a short alias ("B", "svm", "CT"), a
bundle name or a bundle folder; :meth:`TaskModels.find` turns any of them into the bundle, refused
with one clear line unless it is installed and a model of the task."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping, Optional

from orbitai.bundle.core import Bundle, iter_bundles
from orbitai.bundle.install import find_model
from orbitai.errors import BundleError

if TYPE_CHECKING:  # pragma: no cover
    import torch


def check_task(bundle: Bundle, task: str, what: str) -> Bundle:
    """``bundle``, refused with a clear error unless it is a ``task`` model (``what``: "a segmentation model")."""
    if bundle.metadata.get("task") != task:
        raise BundleError(f"Bundle '{bundle.name}' is a {bundle.metadata.get('task')} model, not {what}.")
    return bundle


def find_task_bundle(name: str, task: str, what: str) -> Bundle:
    """The bundle ``name`` (name or folder), refused with a clear error unless it is a ``task`` model."""
    return check_task(find_model(name), task, what)


@dataclass(frozen=True)
class TaskModels:
    """The bundled models of one task, their panel labels, default and short aliases.

    ``bundled``: bundle name -> panel label, in the paper's order (labels are saved in scenes: keep
    them); ``default``: the bundle used when none is given (None: the task picks one itself, e.g. by
    modality); ``aliases``: short names -> bundle name, matched without regard to case."""

    task: str                       # the bundles' metadata "task"
    what: str                       # for messages: "a TAO activity classifier"
    bundled: Mapping[str, str]
    default: Optional[str] = None
    aliases: Mapping[str, str] = field(default_factory=dict)

    @property
    def default_label(self) -> str:
        """The default's panel label ("" without a default)."""
        return self.bundled.get(self.default, self.default) if self.default else ""

    def resolve(self, model: Optional[str]) -> str:
        """The bundle name (or folder) ``model`` means: a panel label, an alias, a bundle name or folder;
        empty: the default."""
        key = (model or "").strip()
        if not key:
            if self.default is None:
                raise BundleError(f"No model given; choose {self.what}.")
            return self.default
        name = next((n for n, label in self.bundled.items() if label == key), None)
        if name is not None:
            return name
        return next((n for alias, n in self.aliases.items() if alias.casefold() == key.casefold()), key)

    def label(self, model: Optional[str]) -> str:
        """The panel label of ``model`` (see :meth:`resolve`); a bundle not declared here goes by its name."""
        name = self.resolve(model)
        return self.bundled.get(name, name)

    def find(self, model: Optional[str]) -> Bundle:
        """The installed bundle ``model`` means (see :meth:`resolve`), checked to be a model of the task.
        A bundled model asked by label or alias and not installed is named in the error."""
        name = self.resolve(model)
        try:
            bundle = find_model(name)   # a registry model not installed: its install named (size, address)
        except BundleError as exc:
            label = self.bundled.get(name, name)
            if label != name and name != (model or "").strip():
                raise BundleError(f"{label} is not installed (no bundle '{name}'). {exc}") from None
            raise
        return check_task(bundle, self.task, self.what)

    def load(self, model: Optional[str] = None, device: "torch.device | str" = "cpu"
             ) -> "tuple[Bundle, torch.nn.Module]":
        """(bundle, network in eval mode on ``device``) of ``model`` (see :meth:`find`; empty: the default)."""
        bundle = self.find(model)
        return bundle, bundle.load_model(device).eval()

    def choices(self) -> dict[str, str]:
        """Panel label -> bundle name of every installed bundle of the task: the declared ones first, in
        their order, then the others by name."""
        names = {b.name for b in iter_bundles() if b.metadata.get("task") == self.task}
        known = {label: name for name, label in self.bundled.items() if name in names}
        return known | {name: name for name in sorted(names - set(self.bundled))}

    def labels(self) -> list[str]:
        """The panel labels of :meth:`choices`; the default's label when none is installed (never empty
        when there is a default)."""
        return list(self.choices()) or ([self.default_label] if self.default else [])
