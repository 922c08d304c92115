"""One error hierarchy for the whole core.

Every error that ``orbitai`` raises on purpose derives from `OrbitAIError`; its message is one
line saying what was wrong and what to do. The command line prints it as
``orbitai <command>: error: <message>`` and exits with the class's ``exit_code``: 2 when the
user's input or choice was wrong, 1 for any other failure. Slicer panels show the same message
in a dialog.

    OrbitAIError
      InputError (also ValueError)   bad input: image, manifest, option, configuration   exit 2
        UserError                     a command-line option or argument                   exit 2
        ConfigError                   unknown training configuration, bad schedule        exit 2
      DeviceError (also RuntimeError) the requested compute device is not available      exit 2
      BundleError (also RuntimeError) model bundle missing, corrupt, tampered, mismatched exit 2
      ResultError (also RuntimeError) a result folder that breaks its task's contract     exit 1
      JobError (also RuntimeError)    a child ``orbitai`` process failed or was cancelled exit 1

Task modules add their own subclasses (``VolumeError`` in `orbitai.io`, ``TaoResultError`` in
`orbitai.tao.result`, ``AnnotationError`` in `orbitai.annotate`), all subclasses of these.
"""
from __future__ import annotations


class OrbitAIError(Exception):
    """Base of every deliberate ``orbitai`` error; the message is one actionable line."""

    #: Exit status of the command line when this error ends a command.
    exit_code: int = 1


class InputError(OrbitAIError, ValueError):
    """The user's input (image, manifest, option, parameter) cannot be used."""

    exit_code = 2


class UserError(InputError):
    """A command-line option or argument is wrong."""


class ConfigError(InputError):
    """An unknown or inconsistent configuration (training configuration, epochs, folds)."""


class DeviceError(OrbitAIError, RuntimeError):
    """The requested compute device is not available."""

    exit_code = 2


class BundleError(OrbitAIError, RuntimeError):
    """A model bundle is missing, corrupt, tampered with or does not fit its architecture."""

    exit_code = 2


class ResultError(OrbitAIError, RuntimeError):
    """A prediction's output folder is missing files or does not follow its task's contract."""


class TrainingError(OrbitAIError, RuntimeError):
    """A training run cannot go on (its steps stopped giving finite numbers); the last good checkpoint is kept."""


class JobError(OrbitAIError, RuntimeError):
    """A child ``orbitai`` command failed or was cancelled; the message carries its error line."""


class AnnotationError(InputError):
    """Bad input to an annotation tool; the message says what is wrong and what to do."""


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` as one line (its lines joined; the type name if it has none)."""
    text = str(exc.args[0]) if isinstance(exc, KeyError) and len(exc.args) == 1 else str(exc)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return " ".join(lines) if lines else type(exc).__name__
