"""Every error a user can cause, in one place; launch.py and the command lines print any of them as
one line.

Each class also derives from the builtin error it stood for before (ValueError, RuntimeError), so
code that catches those still does.
"""

from __future__ import annotations

import errno


class SeqmodelsError(Exception):
  """An error whose message names the problem and the fix: shown as one line, never a traceback."""


class ConfigError(SeqmodelsError, ValueError):
  """A config that cannot work; the message names the field and the fix."""


def check(ok: bool, message: str) -> None:
  """Raises ConfigError(message) unless `ok`: the one line naming the field and the fix."""
  if not ok:
    raise ConfigError(message)


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
  """The devices (or the host) could not hold the model, its optimizer state and a step's
  activations."""


class StorageError(SeqmodelsError, OSError):
  """A write the run (or an analysis) needs failed: a full disk, read-only storage, no permission,
  I/O errors."""


class PeerFailedError(SeqmodelsError, RuntimeError):
  """Another process of a multi-process run failed (or never arrived): the reason is in the
  message."""


class SchedulerError(SeqmodelsError, RuntimeError):
  """SLURM failed a request of the sweep launcher (squeue, sbatch) that a config change does not
  fix: the cluster's own message, and what to try."""


OOM_MARKERS = ('RESOURCE_EXHAUSTED', 'Out of memory', 'out of memory', 'MemoryError')


def is_out_of_memory(text: str) -> bool:
  """Whether an error's text (XLA's on any platform, or Python's MemoryError) says memory ran
  out."""
  return any(m in text for m in OOM_MARKERS)


def one_line(e: BaseException) -> str:
  """`Type: first line of the message`: what a failing process of a multi-process run tells the
  others (sharding.announce_failure)."""
  text = str(e).strip()
  return f'{type(e).__name__}: {text.splitlines()[0]}' if text else type(e).__name__


# What a failed write says, by errno and in the text of libraries that wrap it (orbax, tensorstore):
# the reason in words and what to do about it.
STORAGE_FAULTS = {
    errno.ENOSPC: ('No space left on device', 'free space there'),
    errno.EDQUOT: ('Disk quota exceeded', 'free space there'),
    errno.EROFS: ('Read-only file system', 'make the storage writable'),
    errno.EACCES: ('Permission denied', 'make it writable for this user'),
    errno.EPERM: ('Operation not permitted', 'make it writable for this user'),
    errno.EIO: ('Input/output error', 'check the disk'),
}


def storage_fault(e: BaseException) -> tuple[str, str] | None:
  """(reason, fix) where `e` (or an error it wraps) is a failed write to storage, else None."""
  seen = set()
  while e is not None and id(e) not in seen:
    seen.add(id(e))
    if isinstance(e, OSError) and e.errno in STORAGE_FAULTS:
      return STORAGE_FAULTS[e.errno]
    text = str(e)
    for reason, fix in STORAGE_FAULTS.values():
      if reason in text:
        return reason, fix
    e = e.__cause__ or e.__context__
  return None
