"""Every error a user can cause, in one place; launch.py and the command lines print any of them as one line.

Each class also derives from the builtin error it stood for before (ValueError, RuntimeError), so code that
catches those still does.
"""

from __future__ import annotations


class SeqmodelsError(Exception):
  """An error whose message names the problem and the fix: shown as one line, never a traceback."""


class ConfigError(SeqmodelsError, ValueError):
  """A config that cannot work; the message names the field and the fix."""


class DataError(SeqmodelsError, ValueError):
  """A dataset that cannot be prepared or read here; the message names it and the fix."""


class WorkdirError(SeqmodelsError, ValueError):
  """The workdir holds a run that this config cannot resume."""


class WorkdirBusyError(WorkdirError):
  """Another process holds the workdir (seqmodels/train/lock.py): one writer at a time."""


class CheckpointError(SeqmodelsError, RuntimeError):
  """No readable checkpoint where one was expected."""


class NonFiniteLossError(SeqmodelsError, RuntimeError):
  """The training loss became NaN or infinite."""


class OutOfMemoryError(SeqmodelsError, RuntimeError):
  """The devices (or the host) could not hold the model, its optimizer state and a step's activations."""


class PeerFailedError(SeqmodelsError, RuntimeError):
  """Another process of a multi-process run failed (or never arrived): the reason is in the message."""


OOM_MARKERS = ('RESOURCE_EXHAUSTED', 'Out of memory', 'out of memory', 'MemoryError')


def is_out_of_memory(text: str) -> bool:
  """Whether an error's text (XLA's on any platform, or Python's MemoryError) says memory ran out."""
  return any(m in text for m in OOM_MARKERS)


def one_line(e: BaseException) -> str:
  """`Type: first line of the message`, as failed.json and a sweep's table record an error."""
  text = str(e).strip()
  return f'{type(e).__name__}: {text.splitlines()[0]}' if text else type(e).__name__
