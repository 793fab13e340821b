"""Preemption: SIGTERM or Ctrl-C asks the loop to save a checkpoint after the step it is in, then
stop."""

from __future__ import annotations

import logging
import os
import signal
import sys

import jax
from jax.experimental import multihost_utils


class Preemption:
  """SIGTERM / Ctrl-C set a flag; the loop saves a checkpoint at the next step and stops.

  With several processes, JAX's coordination service catches SIGTERM instead, and all processes
  agree on the step through `reached_preemption_sync_point`, so they save the same checkpoint (a
  local flag could differ between processes and deadlock the save).
  """

  def __init__(self):
    self.requested = False
    self._multi = jax.process_count() > 1
    self._previous = {}
    for sig in [] if self._multi else [signal.SIGTERM, signal.SIGINT]:
      try:
        self._previous[sig] = signal.signal(sig, self._handle)
      except ValueError:  # not the main thread: leave signals alone
        pass

  def _handle(self, signum, frame):
    logging.warning('%s received: saving a checkpoint after this step, then stopping '
                    '(Ctrl-C again aborts)', signal.Signals(signum).name)
    self.requested = True
    for sig in self._previous:
      signal.signal(sig, _abort)

  def reached(self, step: int) -> bool:
    return multihost_utils.reached_preemption_sync_point(step) if self._multi else self.requested

  def restore(self):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)


def _abort(signum, frame):
  """A second signal: ends the process at once. A save in flight is left unfinished, which orbax
  never takes for a checkpoint (it is written under a temporary name), so the last complete one is
  what a rerun resumes. Waiting for the save's threads instead could hang (issue 29: 2 of 10 double
  Ctrl-Cs did)."""
  del frame
  print(f'error: {signal.Signals(signum).name} again: stopped at once, without finishing the '
        'checkpoint being saved; the last complete one is kept: rerun the same '
        'command to resume from it', file=sys.stderr, flush=True)
  os._exit(128 + signum)
