"""Orbax checkpoints of the TrainState and run metadata: periodic, on preemption, atomic, corruption-tolerant."""

from __future__ import annotations

import logging
import os
import shutil
from typing import Any

import jax
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils
from etils import epath


class CheckpointError(RuntimeError):
  """No readable checkpoint where one was expected."""


class Checkpointer:
  """Keeps the last `keep` checkpoints under workdir/checkpoints; saves every `every` steps.

  Orbax writes each checkpoint to a temporary directory and renames it when complete, so an interrupted save
  never looks like a checkpoint. A checkpoint that exists but cannot be read is moved to
  workdir/corrupt_checkpoints/ and the previous one is used.
  """

  def __init__(self, workdir: str, every: int, keep: int):
    workdir = os.path.abspath(workdir)  # tensorstore needs absolute paths
    self._dir = epath.Path(workdir) / 'checkpoints'
    self._corrupt_dir = epath.Path(workdir) / 'corrupt_checkpoints'
    self._every = every
    self._options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
    self._manager = self._open()

  def _open(self) -> ocp.CheckpointManager:
    return ocp.CheckpointManager(self._dir, options=self._options, item_names=('state', 'meta'))

  def should_save(self, step: int) -> bool:
    """Whether `step` is a periodic checkpoint step."""
    return step % self._every == 0

  def save(self, step: int, state, meta: dict[str, Any]) -> None:
    """Starts an asynchronous save of `state` and `meta` at `step`; the loop decides when."""
    args = ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
    self._manager.save(step, args=args, force=True)

  def restore_latest(self, abstract_state) -> tuple[Any, dict[str, Any]] | None:
    """(state, meta) of the newest readable checkpoint, placed with the shardings of `abstract_state`.

    `abstract_state` is a pytree of jax.ShapeDtypeStruct with `sharding` set: a checkpoint written on 8 devices
    restores onto 1 and the other way round. Returns None when there is no checkpoint at all.
    """
    steps = sorted(self._manager.all_steps(), reverse=True)
    for step in steps:
      try:
        restored = self._manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()))
        return restored.state, restored.meta
      except Exception as e:  # orbax raises many types for truncated or garbled files
        logging.warning('checkpoint at step %d in %s is unreadable (%s: %s); falling back to the previous one',
                        step, self._dir, type(e).__name__, str(e).splitlines()[0] if str(e) else '')
        self._quarantine(step)
    if steps:
      raise CheckpointError(f'no readable checkpoint in {self._dir} (unreadable ones were moved to '
                            f'{self._corrupt_dir}); start over with a new --workdir')
    return None

  def _quarantine(self, step: int) -> None:
    """Moves an unreadable checkpoint aside (kept for inspection) so its step can be saved again."""
    if jax.process_index() == 0:
      self._corrupt_dir.mkdir(parents=True, exist_ok=True)
      src = self._dir / str(step)
      dst = self._corrupt_dir / f'{step}'
      if dst.exists():
        shutil.rmtree(os.fspath(dst))
      shutil.move(os.fspath(src), os.fspath(dst))
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices(f'quarantined checkpoint {step}')
    self._manager.close()
    self._manager = self._open()

  def wait(self) -> None:
    """Blocks until pending asynchronous saves are on disk."""
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()
