"""Orbax checkpoints of the TrainState and run metadata: periodic, on preemption, atomic,
corruption-tolerant."""

from __future__ import annotations

import json
import logging
import os
import shutil
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath
from flax import traverse_util
from jax.experimental import multihost_utils

from seqmodels.train import sharding
from seqmodels.errors import CheckpointError


def _not_item_step_metadata(record: logging.LogRecord) -> bool:
  """Reading one item ('state') of a step alone, orbax looks for the step's metadata in the item's
  directory and warns that it is not there: it is one level up, where CheckpointManager writes it.
  That warning is dropped."""
  message = record.getMessage()
  return not (message.startswith('Metadata file does not exist')
              and message.endswith(os.path.join('state', '_CHECKPOINT_METADATA')))


logging.getLogger('absl').addFilter(_not_item_step_metadata)


# Where a run's checkpoints live: the periodic ones (the latest resumes the run) and, with
# train.keep_best, the one of the best evaluation so far (its parameters only), which analyses can
# read instead.
CHECKPOINT_DIRS = {'latest': 'checkpoints', 'best': 'best_checkpoint'}


def saved_steps(workdir: str, which: str = 'latest') -> list[int]:
  """The steps `workdir` holds a checkpoint directory for, latest first ([] when it has none)."""
  directory = epath.Path(os.path.abspath(workdir)) / CHECKPOINT_DIRS[which]
  return sorted((int(p.name) for p in directory.iterdir() if p.name.isdigit()), reverse=True) \
      if directory.is_dir() else []


def restore_saved(workdir: str, step: int | None = None, sharding=None,
                  which: str = 'latest') -> tuple[int, Any]:
  """(step, state) of the checkpoint of `workdir` at `step` (default: the latest), without a model
  or config. `which='best'` reads the best evaluation's checkpoint (train.keep_best), whose state
  holds the params only.

  Shapes and dtypes come from the array metadata orbax keeps; every array is placed with `sharding`
  (default: replicated over all devices), so a state saved on 8 devices reads on 1 and the other way
  round.
  """
  directory = epath.Path(os.path.abspath(workdir)) / CHECKPOINT_DIRS[which]
  steps = saved_steps(workdir, which)
  if step is None and not steps or step is not None and step not in steps:
    if which == 'best':
      try:
        with open(os.path.join(workdir, 'config.json')) as f:
          train = json.load(f).get('train', {})
      except (OSError, ValueError, AttributeError):
        train = {}
      if train.get('keep_best'):
        raise CheckpointError('no best checkpoint yet: the run keeps one but has not evaluated '
                              f'(every {train.get("eval_every")} steps): read the latest '
                              'checkpoint, or wait')
      raise CheckpointError('no best checkpoint (the run kept none: train.keep_best was off): '
                            'train with --config.train.keep_best=True, or read '
                            'the latest checkpoint')
    raise CheckpointError(f'{workdir} has no '
                          f'checkpoint{"" if step is None else f" at step {step}"}: point it at '
                          'the workdir of a run that saved one')
  step = steps[0] if step is None else step
  path = directory / str(step) / 'state'
  tree = ocp.StandardCheckpointer().metadata(path).item_metadata.tree
  sharding = sharding or jax.sharding.NamedSharding(jax.sharding.Mesh(jax.devices(), ('data',)),
                                                    jax.sharding.PartitionSpec())
  abstract = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=sharding), tree)
  return step, ocp.StandardCheckpointer().restore(path, abstract)


def restore_step(workdir: str, step: int, abstract_state, flag: str) -> tuple[Any, dict[str, Any]]:
  """(state, meta) of `workdir`'s checkpoint at `step`, placed as `abstract_state` says (shapes,
  dtypes and shardings): the whole state, optimizer and step included (train.branch_from). A
  missing step or another model's checkpoint is a CheckpointError naming `flag`."""
  path = epath.Path(os.path.abspath(workdir)) / CHECKPOINT_DIRS['latest'] / str(step)
  if step not in saved_steps(workdir):
    have = ', '.join(map(str, sorted(saved_steps(workdir)))) or 'none'
    raise CheckpointError(f'{flag}={workdir!r} holds no checkpoint at step {step}, where this '
                          f'run\'s decay begins (it holds {have}): train that run with checkpoints '
                          'kept there (train.checkpoint_every dividing it, keep_checkpoints high '
                          'enough), or choose a budget whose decay starts at a saved step')
  difference = _params_difference(path / 'state', abstract_state.params)
  if difference:
    raise CheckpointError(f'{flag}={workdir!r}: its checkpoint at step {step} holds other '
                          f'parameters than this model ({difference}): branch from a run of the '
                          'same model')
  restored = ocp.CheckpointManager(path.parent, item_names=('state', 'meta')).restore(
      step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state),
                                    meta=ocp.args.JsonRestore()))
  meta = dict(restored.meta)
  meta.pop('checksum', None)
  return restored.state, meta


def load_matching_params(workdir: str, params, shardings, flag: str = 'config.train.init_from',
                         which: str = 'latest', frozen: tuple[str, ...] = ()):
  """`params` with every array whose path also appears in the latest checkpoint of `workdir`
  replaced (`which='best'`: its best evaluation's checkpoint).

  For fine-tuning from a pre-trained run: shared parts (e.g. the encoder) come from the checkpoint,
  new parts (e.g. a classification head) keep their fresh initialisation. Returns (params, loaded
  paths, fresh paths). `flag` is the setting that named `workdir`, for the errors. A CheckpointError
  when nothing loads, when an array of the checkpoint has another shape than the model's of its name
  (another width, seq_len, ...), or when a parameter under one of the '/'-path prefixes `frozen`
  (optim.frozen_prefixes) is fresh: it would never train.
  """
  try:
    _, saved = restore_saved(workdir, which=which)
  except CheckpointError:
    if which == 'best':
      raise
    raise CheckpointError(
        f'{flag}={workdir} has no checkpoint: point it at the workdir of a finished run') from None
  source = traverse_util.flatten_dict(saved['params'], sep='/')
  target = traverse_util.flatten_dict(params, sep='/')
  flat_shardings = traverse_util.flatten_dict(shardings, sep='/')
  loaded = [k for k, v in target.items()
            if k in source and tuple(source[k].shape) == tuple(v.shape)]
  _check_matching(workdir, flag, source, target, loaded, frozen)
  for k in loaded:
    target[k] = jax.device_put(source[k].astype(target[k].dtype), flat_shardings[k])
  fresh = sorted(set(target) - set(loaded))
  return traverse_util.unflatten_dict(target, sep='/'), loaded, fresh


def _some(names: list[str], count: int = 3) -> str:
  """The first `count` of `names`, and how many more."""
  return (
      '; '.join(names[:count]) + (f'; and {len(names) - count} more' if len(names) > count else ''))


def _saved_sizes(workdir: str) -> str:
  """The fields that size a model in the config.json of the run in `workdir` ('' where it has
  none)."""
  try:
    with open(os.path.join(workdir, 'config.json')) as f:
      saved = json.load(f)
    model, data = saved['model'], saved['data']
    return (f' (its config.json: model.width={model["width"]}, heads={model["heads"]}, '
            f'ffn={model["ffn"]}, embed={model["embed"]}, layers={model["layers"]}; '
            f'data.seq_len={data["seq_len"]})')
  except (OSError, ValueError, KeyError, TypeError):
    return ''


# Parameters of a task's own output layer: one of another shape (another number of classes) is a new
# task's head, initialised fresh, not a mismatch with the pre-trained run.
TASK_HEADS = {'classifier'}


def _check_matching(workdir: str, flag: str, source: dict, target: dict, loaded: list[str],
                    frozen: tuple[str, ...]) -> None:
  """The errors of `load_matching_params`: nothing loads; a pre-trained array cannot load (another
  shape); frozen parameters would stay at their random initialisation (not in the checkpoint)."""
  other = [f'{k}: {tuple(source[k].shape)} there, {tuple(v.shape)} here'
           for k, v in sorted(target.items()) if k in source and
           tuple(source[k].shape) != tuple(v.shape) and not set(k.split('/')) & TASK_HEADS]
  if not loaded:
    raise CheckpointError(
        f'{flag}={workdir}: no parameter of this model (same name and shape) is in its latest '
        'checkpoint: config.model must match that of '
        'the run that saved it' + (f' ({_some(other)})' if other else '') + _saved_sizes(workdir))
  if other:
    raise CheckpointError(
        f'{flag}={workdir}: {len(other)} parameter array{"s" * (len(other) > 1)} of its checkpoint '
        f'{"have other shapes" if len(other) > 1 else "has another shape"} than in this model '
        f'({_some(other)}): the fields that size them (config.model.width, heads, ffn, embed; '
        'config.data.seq_len for position tables; the vocabulary) must be those of '
        'the run that saved it' + _saved_sizes(workdir))
  if error := unsaved_frozen_error(workdir, flag, set(target) - set(loaded), frozen):
    raise CheckpointError(error)


def unsaved_frozen_error(workdir: str, flag: str, unsaved, frozen: tuple[str, ...]) -> str:
  """'' unless parameters under the `frozen` prefixes are among `unsaved` (names the checkpoint of
  `workdir` lacks); else the one-line error: they would stay at their random initialisation."""
  from seqmodels.train.optim import is_frozen
  unsaved = sorted(k for k in unsaved if is_frozen((k,), frozen))
  if not unsaved:
    return ''
  return (f'{flag}={workdir}: config.optim.freeze={",".join(frozen)!r} freezes {len(unsaved)} '
          f'parameter array{"s" * (len(unsaved) > 1)} its checkpoint does not have '
          f'({_some(unsaved)}), which would stay at their random initialisation: '
          'config.model.layers (and the other config.model fields) must be those of the run that '
          'saved it' + _saved_sizes(workdir) + ', or leave them out of config.optim.freeze')


def saved_param_names(workdir: str) -> set[str]:
  """The '/'-joined parameter names in the latest checkpoint of `workdir`, from its metadata (no
  array is read)."""
  steps = saved_steps(workdir)
  if not steps:
    raise CheckpointError(
        f'{workdir} has no checkpoint: point it at the workdir of a run that saved one')
  path = epath.Path(os.path.abspath(workdir)) / CHECKPOINT_DIRS['latest'] / str(steps[0]) / 'state'
  return set(traverse_util.flatten_dict(
      ocp.StandardCheckpointer().metadata(path).item_metadata.tree['params'], sep='/'))


def _params_difference(path: epath.Path, abstract_params) -> str:
  """How the parameters saved at `path` (names, shapes) differ from the model's, at most three ways;
  '' if they do not, or if the checkpoint's metadata is unreadable (a corrupt checkpoint, which
  restoring then reports)."""
  try:
    saved = ocp.StandardCheckpointer().metadata(path).item_metadata.tree['params']
  except Exception:  # orbax raises many types for truncated or garbled files
    return ''
  shapes = lambda tree: {k: tuple(v.shape)
                         for k, v in traverse_util.flatten_dict(tree, sep='/').items()}
  there, here = shapes(saved), shapes(abstract_params)
  diffs = ([f'{k} is not in the model' for k in sorted(set(there) - set(here))] +
           [f'{k} is not in the checkpoint' for k in sorted(set(here) - set(there))] +
           [f'{k} has shape {there[k]} there, {here[k]} here'
            for k in sorted(set(here) & set(there)) if there[k] != here[k]])
  return '; '.join(diffs[:3]) + (f'; {len(diffs) - 3} more' if len(diffs) > 3 else '')


_WORD = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}
_AXIS_WEIGHTS = (
    2654435761, 2246822519, 3266489917, 668265263, 374761393, 3144134277, 1013904223, 1664525)


def _block_sum(block: np.ndarray, start: tuple[int, ...]) -> int:
  """sum over the elements of `block` (the part of an array that begins at index `start`) of
  word(x) * (1 + sum_d a_d * i_d), mod 2^32, with i the element's index in the whole array: the same
  total however the array is cut into blocks (uint32 arithmetic wraps exactly, in any order)."""
  block = np.ascontiguousarray(block)
  if block.dtype == np.bool_:
    words = block.astype(np.uint32)
  else:
    words = block.view(_WORD[block.dtype.itemsize])
    words = ((words ^ (words >> 32)).astype(np.uint32) if block.dtype.itemsize == 8
             else words.astype(np.uint32))
  total = int(words.sum(dtype=np.uint32))
  for d, first in enumerate(start):
    shape = [1] * words.ndim
    shape[d] = -1
    index = (np.arange(words.shape[d], dtype=np.uint32) + np.uint32(first)).reshape(shape)
    total += _AXIS_WEIGHTS[d % len(_AXIS_WEIGHTS)] * int((words * index).sum(dtype=np.uint32))
  return total % 2**32


def checksum(tree) -> int:
  """A 32-bit checksum of every bit of `tree`'s arrays, each element weighted by its index and each
  leaf by its order. Summed on the host shard by shard (each block once: replica 0), then over
  processes: the same number for a state on 1 device, replicated on 8 or sharded over them (no
  program to compile)."""
  partial = []
  for leaf in jax.tree.leaves(tree):
    if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
      leaf = jax.random.key_data(leaf)
    if isinstance(leaf, jax.Array):
      blocks = [(np.asarray(sh.data), tuple(sl.start or 0 for sl in sh.index))
                for sh in leaf.addressable_shards if sh.replica_id == 0]
    else:
      leaf = np.asarray(leaf)
      blocks = [(leaf, (0,) * leaf.ndim)]
    partial.append(sum(_block_sum(block, start) for block, start in blocks) % 2**32)
  if jax.process_count() > 1:
    partial = multihost_utils.process_allgather(
        np.asarray(partial, np.uint32)).astype(np.uint64).sum(0).tolist()
  return sum(int(p) * (2 * i + 3) for i, p in enumerate(partial)) % 2**32


class Checkpointer:
  """Keeps the last `keep` checkpoints under workdir/checkpoints; saves every `every` steps.

  Orbax writes each checkpoint to a temporary directory and renames it when complete, so an
  interrupted save never looks like a checkpoint. A checkpoint that exists but cannot be read is
  moved to workdir/corrupt_checkpoints/ and the previous one is used.
  """

  def __init__(self, workdir: str, every: int, keep: int, keep_best: bool = False):
    workdir = os.path.abspath(workdir)  # tensorstore needs absolute paths
    self._dir = epath.Path(workdir) / CHECKPOINT_DIRS['latest']
    self._corrupt_dir = epath.Path(workdir) / 'corrupt_checkpoints'
    self._every = every
    # cleanup_tmp_directories: an earlier session's unfinished save (a kill, a full disk) is removed
    # when the run opens its checkpoints again; the workdir lock (lock.py) makes sure no other
    # process is writing it.
    self._options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                                 cleanup_tmp_directories=True)
    self._manager = self._open()
    # The best evaluation's parameters, one checkpoint at a time (orbax removes the older after the
    # newer is whole).
    self._best = ocp.CheckpointManager(
        epath.Path(workdir) / CHECKPOINT_DIRS['best'], item_names=('state', 'meta'),
        options=ocp.CheckpointManagerOptions(max_to_keep=1, create=True,
                                             cleanup_tmp_directories=True)) if keep_best else None

  def _open(self) -> ocp.CheckpointManager:
    return ocp.CheckpointManager(self._dir, options=self._options, item_names=('state', 'meta'))

  def should_save(self, step: int) -> bool:
    """Whether `step` is a periodic checkpoint step."""
    return step % self._every == 0

  def save(self, step: int, state, meta: dict[str, Any]) -> None:
    """Starts an asynchronous save of `state` and `meta` at `step`; the loop decides when. The meta
    holds the state's checksum, which restoring checks: orbax reads garbled bytes without an
    error."""
    meta = {**meta, 'checksum': checksum(state)}
    args = ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
    self._manager.save(step, args=args, force=True)

  def save_best(self, step: int, params, eval_metrics: dict[str, float]) -> None:
    """With keep_best: saves `params` as the best evaluation's checkpoint (replacing the previous
    best).

    The save runs alone, after any periodic save in flight and finished before the next: two
    managers saving at once (the same step, in their background threads) deadlocked two processes in
    orbax's barriers.
    """
    if self._best is not None:
      self._manager.wait_until_finished()
      args = ocp.args.Composite(state=ocp.args.StandardSave({'params': params}),
                                meta=ocp.args.JsonSave({'step': step, 'eval': eval_metrics}))
      self._best.save(step, args=args, force=True)
      self._best.wait_until_finished()

  def restore_latest(self, abstract_state) -> tuple[Any, dict[str, Any]] | None:
    """(state, meta) of the newest readable checkpoint, placed with the shardings of
    `abstract_state`.

    `abstract_state` is a pytree of jax.ShapeDtypeStruct with `sharding` set: a checkpoint written
    on 8 devices restores onto 1 and the other way round. Returns None when there is no checkpoint
    at all.
    """
    steps = sorted(self._manager.all_steps(), reverse=True)
    for step in steps:
      difference = _params_difference(self._dir / str(step) / 'state', abstract_state.params)
      if difference:  # a readable checkpoint of another model: not corrupt, so not moved aside
        raise CheckpointError(f'the checkpoint at step {step} in {self._dir} holds other '
                              f'parameters than this model ({difference}): it was saved by another '
                              'model or seqmodels version; resume with that one, or start over '
                              'with a new --workdir')
      try:
        restored = self._manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()))
        meta = dict(restored.meta)
        saved = meta.pop('checksum', None)  # None: saved by a version before the checksum
        if saved is not None and checksum(restored.state) != saved:
          raise ValueError(f'its arrays do not give the checksum saved with them ({saved})')
        return restored.state, meta
      except Exception as e:  # orbax raises many types for truncated or garbled files
        logging.warning('checkpoint at step %d in %s is unreadable (%s: %s); falling back '
                        'to the previous one',
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
    sharding.wait_for_all_processes(f'moving aside checkpoint {step}')
    self._manager.close()
    self._manager = self._open()

  def wait(self) -> None:
    """Blocks until pending asynchronous saves are on disk."""
    for manager in (self._manager, self._best):
      if manager is not None:
        manager.wait_until_finished()

  def close(self) -> None:
    for manager in (self._manager, self._best):
      if manager is not None:
        manager.wait_until_finished()
        manager.close()


def save_params(workdir: str, step: int, params) -> None:
  """Parameters alone as the checkpoint of `step` (what `restore_saved` and `load_matching_params`
  read): a run imported from elsewhere (seqmodels.hf), which has no optimizer state of its own."""
  path = epath.Path(os.path.abspath(workdir)) / CHECKPOINT_DIRS['latest'] / str(step) / 'state'
  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(path, {'params': params}, force=True)
  checkpointer.wait_until_finished()
