"""One writer per workdir: a lock held for the life of a run, or of a sweep over its root directory.

The lock is an exclusive `flock` on `<workdir>/.lock`, which the kernel releases whatever way its
holder ends (even `kill -9`), plus a record in that file: host, pid, command and a heartbeat
refreshed every HEARTBEAT_S. `flock` does not reach across hosts on every shared filesystem (NFS),
so a record whose host is another one and whose heartbeat is fresh also holds the workdir; one older
than STALE_S is a holder that is gone. The file is never removed (a process that opened it could
lock a deleted copy); a released lock leaves it empty. Readers (the analyses, the report) never take
it.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import threading
import time
from typing import Any

from seqmodels.errors import WorkdirBusyError

LOCK_FILE = '.lock'
HEARTBEAT_S = 10.0
STALE_S = 60.0


def holder(workdir: str) -> dict[str, Any] | None:
  """The record of the process that holds `workdir`, else None (free, or held by nobody alive)."""
  path = os.path.join(workdir, LOCK_FILE)
  try:
    fd = os.open(path, os.O_RDONLY)
  except OSError:
    return None
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:  # held on this host (or through a filesystem whose flock spans hosts)
      return _read(fd) or {'host': '?', 'pid': '?'}
    fcntl.flock(fd, fcntl.LOCK_UN)
    record = _read(fd)
    return record if record and _held_elsewhere(record) else None
  finally:
    os.close(fd)


def describe(record: dict[str, Any]) -> str:
  """'pid 123 on host h (python launch.py ..., heartbeat 3 s ago)'."""
  beat = record.get('heartbeat')
  ago = f', heartbeat {time.time() - beat:.0f} s ago' if isinstance(beat, (int, float)) else ''
  command = f'{record["command"]}' if record.get('command') else 'a process'
  return f'pid {record.get("pid", "?")} on host {record.get("host", "?")} ({command}{ago})'


class WorkdirLock:
  """`with WorkdirLock(workdir):` holds `workdir` for this process, or raises WorkdirBusyError
  naming its holder; released on any exit (an exception, a signal, the process's end)."""

  def __init__(self, workdir: str, what: str = 'run'):
    self.workdir, self.what = workdir, what
    self._fd: int | None = None
    self._started = 0.0
    self._stop = threading.Event()
    self._beat: threading.Thread | None = None

  def __enter__(self) -> WorkdirLock:
    self.acquire()
    return self

  def __exit__(self, *exc) -> None:
    self.release()

  def acquire(self) -> None:
    path = os.path.join(self.workdir, LOCK_FILE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      record = _read(fd) or {}
      os.close(fd)
      raise WorkdirBusyError(self._busy(record)) from None
    record = _read(fd)
    if record and _held_elsewhere(record):
      os.close(fd)  # closing drops the flock too
      raise WorkdirBusyError(self._busy(record))
    self._fd = fd
    self._write(started=time.time())
    self._beat = threading.Thread(target=self._heartbeat, name='workdir-lock-heartbeat',
                                  daemon=True)
    self._beat.start()

  def release(self) -> None:
    if self._fd is None:
      return
    self._stop.set()
    if self._beat is not None:
      self._beat.join(timeout=5)
    try:
      os.ftruncate(self._fd, 0)
    except OSError:
      # read-only or full storage: the flock's release below is what frees the workdir
      pass
    os.close(self._fd)
    self._fd = None

  def _busy(self, record: dict[str, Any]) -> str:
    return (f'{self.workdir} is in use by {describe(record)}: one process writes a workdir at a '
            'time. Wait for it to finish (or stop it) and rerun, or use another --workdir')

  def _write(self, started: float | None = None) -> None:
    self._started = started if started is not None else self._started
    record = {
        'what': self.what, 'host': socket.gethostname(), 'pid': os.getpid(),
        'command': ' '.join([os.path.basename(sys.argv[0])] + sys.argv[1:]) if sys.argv else '',
        'started': self._started, 'heartbeat': time.time()}
    data = json.dumps(record).encode()
    os.ftruncate(self._fd, 0)
    os.pwrite(self._fd, data, 0)

  def _heartbeat(self) -> None:
    while not self._stop.wait(HEARTBEAT_S):
      try:
        self._write()
      except OSError:  # a full disk: the flock still holds the workdir on this host
        pass


def _read(fd: int) -> dict[str, Any] | None:
  try:
    data = os.pread(fd, 65536, 0)
    record = json.loads(data) if data.strip() else None
  except (OSError, ValueError):
    return None
  return record if isinstance(record, dict) else None


def _held_elsewhere(record: dict[str, Any]) -> bool:
  """A record left by a holder on another host whose heartbeat is fresh: the workdir is in use
  there. On this host, the flock alone says whether its holder is alive."""
  beat = record.get('heartbeat')
  return (record.get('host') != socket.gethostname() and isinstance(beat, (int, float))
          and time.time() - beat < STALE_S)
