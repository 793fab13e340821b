"""A run's records in its workdir, and the checks that decide whether a rerun may resume it.

  config.json      the config the run trains with (paths absolute, epochs said in steps)
  data_files.json  {file: sha256} of the local files it trains on
  summary.json     written once the run is done; a rerun of a finished run does nothing
  failed.json      the error of a run that failed, for the report; cleared when a rerun begins

The gradient loop (loop.py) and the counting run (count.py) both write them through this module.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import time
from typing import Any

import jax

from seqmodels.data import core

from seqmodels.data import registry as datasets
from seqmodels.errors import WorkdirError
from seqmodels.models import registry, size
from seqmodels.train import checkpoint
from seqmodels.train.metrics import strict_json

DATA_FILES = 'data_files.json'


def write_json(path: str, obj: Any) -> None:
  """Writes whole or not at all: other processes (or a report) may read the file while it is
  written."""
  tmp = f'{path}.{os.getpid()}.tmp'
  try:
    with open(tmp, 'w') as f:
      json.dump(strict_json(obj), f, indent=2, allow_nan=False, default=str)
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(OSError):  # a full disk: no half-written temporary file is left behind
      os.remove(tmp)
    raise


def write_config(workdir: str, config, digests: dict[str, str]) -> None:
  """config.json, and data_files.json where the run reads local files (process 0 writes them)."""
  if jax.process_index() != 0:
    return
  write_json(os.path.join(workdir, 'config.json'), json.loads(config.to_json_best_effort()))
  if digests:
    write_json(os.path.join(workdir, DATA_FILES), digests)


def code_version() -> str:
  """The git commit of the code that ran (with '+dirty' when it had uncommitted changes)."""
  here = os.path.dirname(os.path.abspath(__file__))
  try:
    commit = subprocess.run(['git', 'rev-parse', '--short=12', 'HEAD'], cwd=here,
                            capture_output=True, text=True, timeout=10).stdout.strip()
    dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'], cwd=here,
                           capture_output=True, text=True, timeout=10).stdout.strip()
    return (commit + ('+dirty' if dirty else '')) if commit else 'unknown'
  except (OSError, subprocess.SubprocessError):
    return 'unknown'


def session(from_step: int, platform: str | None = None) -> dict[str, Any]:
  """One entry of summary.json's `sessions`: where this process's session of a run ran, from which
  step."""
  return {'from_step': from_step, 'devices': jax.device_count(), 'processes': jax.process_count(),
          'platform': platform or jax.devices()[0].platform}


def summary(config, status: str, **fields) -> dict[str, Any]:
  """summary.json's record: what every run reports (its model and data, where it ran, the commit)
  and `fields`, the run's own (step, metrics, timings, ...)."""
  return {'status': status, 'model': config.model.name, 'data': config.data.name, **fields,
          'devices': jax.device_count(), 'processes': jax.process_count(), 'commit': code_version()}


def write_summary(workdir: str, record: dict[str, Any]) -> None:
  """summary.json, written by process 0 once the run is done."""
  if jax.process_index() == 0:
    write_json(os.path.join(workdir, 'summary.json'), record)


def finished_summary(workdir: str) -> dict[str, Any] | None:
  """The summary.json of a run that finished in `workdir`, else None (none, or one that cannot be
  read)."""
  try:
    with open(os.path.join(workdir, 'summary.json')) as f:
      record = json.load(f)
  except (OSError, ValueError):
    return None
  return record if isinstance(record, dict) and record.get('status') == 'done' else None


def is_finished(workdir: str) -> bool:
  return os.path.exists(os.path.join(workdir, 'summary.json'))


def record_failure(workdir: str, error: BaseException | str, detail: str = '') -> str:
  """Writes failed.json: the error's last line (`Type: message` for an exception), and the traceback
  or log tail that led to it; returns that line."""
  if isinstance(error, BaseException):
    error = f'{type(error).__name__}: {error}'
  lines = [line for line in error.strip().splitlines() if line.strip()]
  line = lines[-1] if lines else 'unknown error'
  try:  # every process of a multi-process sweep writes its own, whole
    os.makedirs(workdir, exist_ok=True)
    write_json(os.path.join(workdir, 'failed.json'),
               {'error': line, 'detail': detail, 'time': time.time()})
  except OSError as e:
    # the storage that failed the run: the error is said on the terminal all the same
    logging.warning('failed.json could not be written in %s (%s)', workdir, e.strerror or e)
  return line


def clear_failure(workdir: str) -> None:
  # FileNotFoundError: another process of the run removed it first; other errors: read-only storage
  # (a finished run archived there), where a stale failed.json stays
  with contextlib.suppress(OSError):
    os.remove(os.path.join(workdir, 'failed.json'))


def absolute_paths(config):
  """`config` with the files and folders it names (data.path, src_path, tgt_path, data_dir;
  train.init_from) absolute, so that config.json names them wherever it is read from; `config`
  itself when they already are."""
  data = core.with_absolute_paths(config.data.to_dict())
  init_from = (
      os.path.abspath(os.path.expanduser(config.train.init_from)) if config.train.init_from else '')
  if data == config.data.to_dict() and init_from == config.train.init_from:
    return config
  config = config.copy_and_resolve_references()
  for k in core.PATH_FIELDS:
    if k in config.data:
      config.data[k] = data[k]
  config.train.init_from = init_from
  return config


def data_change(workdir: str, digests: dict[str, str]) -> str:
  """'' unless the DATA_FILES of `workdir` records other files than `digests`
  (datasets.file_digests): then what differs, in words. None recorded (a new run, one of an older
  version, generated data) is no change."""
  try:
    with open(os.path.join(workdir, DATA_FILES)) as f:
      recorded = json.load(f)
  except (OSError, ValueError):
    return ''
  return core.changed_files(recorded, digests)


def check_same_data(workdir: str, digests: dict[str, str]) -> None:
  """Refuses to resume a run (a workdir with a checkpoint) whose local data files are not the ones
  it began on: a changed file would train its parameters on other text, or with another tokenizer's
  ids."""
  why = data_change(workdir, digests) if checkpoint.saved_steps(workdir) else ''
  if why:
    raise WorkdirError(f'workdir {workdir} holds a run trained on other data: {why}: restore its '
                       'data, or use a new --workdir to train on this')


# Config fields a run is resumed with as they were: its model, data, optimizer and schedule.
_FIXED = ['seed', 'model', 'data', 'optim', ('train', 'batch_size'), ('train', 'dtype'),
          ('train', 'carry_state'), ('train', 'num_epochs')]
# What a config.json from before a field was added ran.
_DEFAULTS = {('train', 'carry_state'): False, ('train', 'num_epochs'): 0}
# The same function either way: a run may resume on another platform.
_SPEED_ONLY = {'model': ('unroll', 'min_scan', 'recurrence')}


def check_resumable(workdir: str, config) -> None:
  """Refuses to resume a workdir that holds a run with a different model, data, optimizer or
  schedule.

  A run that saved nothing to resume from (no checkpoint, no summary: it failed or stopped before
  its first checkpoint) holds nothing a new config could mix with: the workdir is free for it, and
  its run starts over.
  """
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    return
  if not (os.path.exists(os.path.join(workdir, 'summary.json')) or
          checkpoint.saved_steps(workdir) or checkpoint.saved_steps(workdir, 'best')):
    return
  try:
    with open(path) as f:
      old = json.load(f)
  except (OSError, ValueError) as e:
    raise WorkdirError(f'workdir {workdir} has an unreadable config.json ({type(e).__name__}: '
                       f'{e}): use a new --workdir, or delete that file to '
                       'resume with this config') from e
  problem = _not_a_config(old)
  if problem:  # before, an AttributeError from old.get
    raise WorkdirError(f'workdir {workdir} has an unreadable config.json ({problem}): use a new '
                       '--workdir, or delete that file to resume with this config')
  new = json.loads(config.to_json_best_effort())
  fixed = list(_FIXED)
  # else num_steps follows from num_epochs and the data (`in_steps`)
  if not config.train.get('num_epochs', 0):
    fixed.append(('train', 'num_steps'))
  for key in fixed:
    if isinstance(key, str):
      a, b = old.get(key), new.get(key)
    else:
      a, b = (d.get(key[0], {}).get(key[1], _DEFAULTS.get(key)) for d in (old, new))
    if key == ('train', 'dtype') and {a, b} <= {*registry.DTYPES, 'auto'}:
      # 'auto' here is what it computes in (float32 on CPU)
      a, b = registry.compute_dtype(a).name, registry.compute_dtype(b).name
    # 'auto', relative paths: older files
    if key == 'data' and isinstance(a, dict) and isinstance(b, dict):
      a, b = ({**core.with_absolute_paths(d), 'tokenizer': datasets.tokenizer_name(d)}
              for d in (a, b))
    if isinstance(a, dict) and isinstance(b, dict):
      # Fields added (or removed) by a newer code version are not a change of this run's config, nor
      # speed knobs.
      # a width solved for model.params / flops_per_token: the target is what the run asked
      solved = ('width',) if key == 'model' and size.target(config.model) else ()
      a, b = ({k: v for k, v in d.items()
               if k in a and k in b and k not in _SPEED_ONLY.get(key, ()) + solved}
              for d in (a, b))
    if a != b:
      name = key if isinstance(key, str) else '.'.join(key)
      # name the fields that differ, not the whole section
      if isinstance(a, dict) and isinstance(b, dict):
        changed = '; '.join(f'config.{name}.{k}: {a.get(k)!r} there, {b.get(k)!r} now'
                            for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k))
      else:
        changed = f'config.{name}: {a!r} there, {b!r} now'
      raise WorkdirError(f'workdir {workdir} holds a run with a different config ({changed}): use '
                         'a new --workdir, or the same config to resume')
  # The rows an evaluation reads: the best checkpoint is chosen by comparing evaluations across
  # sessions.
  a, b = (_evaluated_rows(d.get('train', {})) for d in (old, new))
  if a != b:
    raise WorkdirError(
        f'workdir {workdir} holds a run evaluated on other rows (config.train.eval_batches, '
        f'eval_batch_size: {a[0]!r}, {a[1]!r} there, {b[0]!r}, {b[1]!r} now), whose evaluations '
        "would not compare with this one's: use a new --workdir, or the same settings to resume")


def _not_a_config(old: Any) -> str:
  """'' for a config.json's JSON object whose sections are objects too; else what it holds."""
  if not isinstance(old, dict):
    return f'it holds {_json_type(old)}, not a JSON object'
  for k in ('model', 'data', 'optim', 'train'):
    if k in old and not isinstance(old[k], dict):
      return f'its {k!r} is {_json_type(old[k])}, not a JSON object'
  return ''


def _json_type(value: Any) -> str:
  names = {list: 'a list', str: 'a string', bool: 'a boolean', int: 'a number', float: 'a number'}
  return 'null' if value is None else names.get(type(value), type(value).__name__)


def _evaluated_rows(train: dict[str, Any]) -> tuple[int, int | None]:
  """(eval_batches, eval_batch_size) of a config.json's train section as far as they choose the rows
  an evaluation reads: the batch size (0: train.batch_size) only under a limit on batches or with
  carried state (the streams)."""
  batches, size = (train.get('eval_batches', 0),
                   train.get('eval_batch_size', 0) or train.get('batch_size'))
  return (batches, size if batches or train.get('carry_state', False) else None)
