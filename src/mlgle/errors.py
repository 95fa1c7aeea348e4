"""The errors a user can cause. ``mlgle.cli.main`` catches :class:`MlgleError` and prints its
message as one line (exit code 2); anything else is a bug and keeps its traceback.

Every message names the file (or option), the field and what was expected.
"""

from __future__ import annotations


class MlgleError(Exception):
    """Base of every error caused by input, params or stored outputs rather than by a bug."""


class ConfigError(MlgleError, ValueError):
    """A params file or option is malformed; the message names the file and the key."""


class StoreError(MlgleError, ValueError):
    """A store or stage output is missing, malformed or not of the expected kind."""


class ReaderError(StoreError):
    """An external trajectory file is malformed; the message names the file, frame and field."""


class SweepError(MlgleError, ValueError):
    """A study's data or storage is unusable; the message names the key, file or URL."""


class CheckpointError(MlgleError, ValueError):
    """A training checkpoint cannot be resumed; the message names the file and the setting."""


class MDError(MlgleError, RuntimeError):
    """LAMMPS failed or left inconsistent files; the message names the log and its ERROR line."""


class GenerationError(MlgleError, RuntimeError):
    """Generated trajectories diverged; the message names the model, the mode and the frame."""
