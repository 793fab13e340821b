"""The training loop: data -> jitted step -> metrics -> eval -> checkpoint; exact resume; preemption."""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import subprocess
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils

from seqmodels import errors
from seqmodels.data import core
from seqmodels.data import registry as datasets
from seqmodels.errors import DataError
from seqmodels.models import registry
from seqmodels.train import optim, sharding, steps
from seqmodels.train import state as state_lib
from seqmodels.train import checkpoint, count, host_memory
from seqmodels.train.checkpoint import Checkpointer
from seqmodels.train.metrics import MetricWriter, PeakMemory, Progress
from seqmodels.errors import NonFiniteLossError, OutOfMemoryError, WorkdirError

DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}

# Training steps dispatched but not yet finished, at most. Unbounded, the host queues hundreds of steps (each
# holding its batch in device memory), and XLA:CPU (jax 0.10.2) with several devices per process (the tests' 8,
# or one per core) deadlocks in an all-reduce, likely as executions of later steps take every worker thread while
# waiting for devices whose earlier steps cannot run. On 2 cores, 600-step runs of tests/train/loop_test.py's tiny
# models on 8 devices aborted at the 40 s rendezvous timeout 4 times in 4, and 0 in 4 with this bound; GPT steps
# on 2 and 8 devices ran 9,000 steps without one. Two keep the devices busy while the host prepares the next step.
MAX_STEPS_IN_FLIGHT = 2


def compute_dtype(name: str) -> jnp.dtype:
  """config.train.dtype as a dtype; 'auto' is bfloat16 on GPU/TPU (DESIGN.md) and float32 on CPU, where it is slower
  (the 4 x 128 GPT step: 44.8 ms in bfloat16, 32.1 ms in float32; bench/gpt.py --recipe=step, 2-core Xeon)."""
  if name == 'auto':
    name = 'float32' if jax.default_backend() == 'cpu' else 'bfloat16'
  return jnp.dtype(DTYPES[name])


def bound_in_flight(dispatched: list) -> None:
  """Waits until at most MAX_STEPS_IN_FLIGHT of the steps whose outputs are in `dispatched` (oldest first) are
  unfinished: the host stays ahead of the devices, by a bounded number of steps."""
  if len(dispatched) > MAX_STEPS_IN_FLIGHT:
    jax.block_until_ready(dispatched[-MAX_STEPS_IN_FLIGHT - 1])


def _one_line(e: BaseException) -> BaseException:
  """XLA's out-of-memory error as an OutOfMemoryError naming the fixes; any other error as it is."""
  if isinstance(e, jax.errors.JaxRuntimeError) and errors.is_out_of_memory(str(e)):
    return OutOfMemoryError(
        f'the {jax.default_backend()} devices ran out of memory ({str(e).splitlines()[0][:200]}): lower '
        'config.train.batch_size or the model (config.model.width, config.model.layers), or shard parameters and '
        'optimizer state with config.train.fsdp=True')
  return e


class _Preemption:
  """SIGTERM / Ctrl-C set a flag; the loop saves a checkpoint at the next step and stops.

  With several processes, JAX's coordination service catches SIGTERM instead, and all processes agree on the
  step through `reached_preemption_sync_point`, so they save the same checkpoint (a local flag could differ
  between processes and deadlock the save).
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
    logging.warning('%s received: saving a checkpoint after this step, then stopping (Ctrl-C again aborts)',
                    signal.Signals(signum).name)
    self.requested = True
    signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))

  def reached(self, step: int) -> bool:
    return multihost_utils.reached_preemption_sync_point(step) if self._multi else self.requested

  def restore(self):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)


def code_version() -> str:
  """The git commit of the code that ran (with '+dirty' when it had uncommitted changes)."""
  here = os.path.dirname(os.path.abspath(__file__))
  try:
    commit = subprocess.run(['git', 'rev-parse', '--short=12', 'HEAD'], cwd=here, capture_output=True,
                            text=True, timeout=10).stdout.strip()
    dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'], cwd=here,
                           capture_output=True, text=True, timeout=10).stdout.strip()
    return (commit + ('+dirty' if dirty else '')) if commit else 'unknown'
  except (OSError, subprocess.SubprocessError):
    return 'unknown'


def count_params(params) -> int:
  return int(sum(np.prod(p.shape) for p in jax.tree.leaves(params)))


def evaluate(eval_step, objective, params, data, batch_size_local: int, batch_sharding, max_batches: int | None,
             split: str = 'validation', carry=None) -> dict[str, float]:
  """The objective's metrics over the split (or its first `max_batches` batches), summed over batches.

  With `carry` (the zero state, under train.carry_state) the split is read as streams (`Data.stream_batches`), each
  window starting from the state its stream's last one ended in: eval_step is (params, carry, batch) -> (sums, carry).
  """
  totals: dict[str, Any] = {}
  read = data.eval_batches if carry is None else data.stream_batches
  for batch in read(batch_size=batch_size_local, split=split, process_index=jax.process_index(),
                    process_count=jax.process_count(), max_batches=max_batches):
    batch = sharding.global_batch(batch, batch_sharding)
    if carry is None:
      sums = eval_step(params, batch)
    else:
      sums, carry = eval_step(params, carry, batch)
    totals = sums if not totals else jax.tree.map(jnp.add, totals, sums)
  return core.with_bits_per_char(objective.finalize(jax.device_get(totals)), data, split)


def _check_test_split(data: core.Data, name: str) -> None:
  """train.test_eval needs a test split of its own (lm1b's validation split is its test split; a local text file
  has train and validation only), checked before any training."""
  test = data.splits.get('test')
  if test is None or test is data.splits.get('validation'):
    why = data.meta.get('no_test', 'none') if test is None else 'its validation split is its test split'
    raise DataError(f'config.train.test_eval=True, but config.data.name={name} has no test split of its own '
                    f'({why}): leave test_eval off, its final eval is on the validation split')


def _test_metrics(eval_step, objective, params, data, eval_batch, batch_sh, tc, workdir: str, state_sh,
                  carry=None):
  """The test split's metrics, with the best evaluation's parameters under keep_best, else `params`."""
  which = 'final'
  if tc.get('keep_best', False):
    _, saved = checkpoint.restore_saved(workdir, which='best')
    params, which = jax.tree.map(jax.device_put, saved['params'], state_sh.params), 'best'
  return {**evaluate(eval_step, objective, params, data, eval_batch, batch_sh, tc.eval_batches or None, 'test',
                     carry), 'parameters': which}


def eval_batch_size(train_cfg) -> int:
  """The global rows of an evaluation batch: train.eval_batch_size, 0 meaning train.batch_size (under carry_state:
  the streams a split is read as)."""
  return train_cfg.get('eval_batch_size', 0) or train_cfg.batch_size


def in_steps(config, data: core.Data):
  """`config` with what it says in epochs said in steps: train.num_epochs > 0 as train.num_steps (rounded up), and
  train.eval_every / checkpoint_every 0 as one epoch's steps (rounded); `config` itself when it has none."""
  tc = config.train
  epochs = tc.get('num_epochs', 0)
  if not (epochs or tc.eval_every == 0 or tc.checkpoint_every == 0):
    return config
  per_epoch = data.steps_per_epoch(tc.batch_size, tc.get('carry_state', False))
  config = config.copy_and_resolve_references()
  if epochs:
    config.train.num_steps = max(1, math.ceil(epochs * per_epoch - 1e-9))
  for field in ('eval_every', 'checkpoint_every'):
    if config.train[field] == 0:
      config.train[field] = max(1, round(per_epoch))
  logging.info('an epoch is %.6g steps: num_steps %d, eval_every %d, checkpoint_every %d', per_epoch,
               config.train.num_steps, config.train.eval_every, config.train.checkpoint_every)
  return config


def check_resumable(workdir: str, config) -> None:
  """Refuses to resume a workdir that holds a run with a different model, data, optimizer or schedule.

  A run that saved nothing to resume from (no checkpoint, no summary: it failed or stopped before its first
  checkpoint) holds nothing a new config could mix with: the workdir is free for it, and its run starts over.
  """
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    return
  if not (os.path.exists(os.path.join(workdir, 'summary.json')) or checkpoint.saved_steps(workdir) or
          checkpoint.saved_steps(workdir, 'best')):
    return
  try:
    with open(path) as f:
      old = json.load(f)
  except (OSError, ValueError) as e:
    raise WorkdirError(f'workdir {workdir} has an unreadable config.json ({type(e).__name__}: {e}): use a new '
                       '--workdir, or delete that file to resume with this config') from e
  new = json.loads(config.to_json_best_effort())
  fixed = ['seed', 'model', 'data', 'optim', ('train', 'batch_size'), ('train', 'dtype'), ('train', 'carry_state'),
           ('train', 'num_epochs')]
  if not config.train.get('num_epochs', 0):  # else num_steps follows from num_epochs and the data (`in_steps`)
    fixed.append(('train', 'num_steps'))
  # What a config.json from before a field was added ran.
  defaults = {('train', 'carry_state'): False, ('train', 'num_epochs'): 0}
  # The same function either way: a run may resume on another platform.
  speed_only = {'model': ('unroll', 'min_scan', 'recurrence')}
  for key in fixed:
    a, b = (old.get(key), new.get(key)) if isinstance(key, str) else (
        old.get(key[0], {}).get(key[1], defaults.get(key)), new.get(key[0], {}).get(key[1], defaults.get(key)))
    if key == ('train', 'dtype') and {a, b} <= {*DTYPES, 'auto'}:
      a, b = compute_dtype(a).name, compute_dtype(b).name  # 'auto' here is what it computes in (float32 on CPU)
    if key == 'data' and isinstance(a, dict) and isinstance(b, dict):  # 'auto', relative paths: older files
      a, b = ({**core.with_absolute_paths(d), 'tokenizer': datasets.tokenizer_name(d)} for d in (a, b))
    if isinstance(a, dict) and isinstance(b, dict):
      # Fields added (or removed) by a newer code version are not a change of this run's config, nor speed knobs.
      a, b = ({k: v for k, v in d.items() if k in a and k in b and k not in speed_only.get(key, ())} for d in (a, b))
    if a != b:
      name = key if isinstance(key, str) else '.'.join(key)
      if isinstance(a, dict) and isinstance(b, dict):  # name the fields that differ, not the whole section
        changed = '; '.join(f'config.{name}.{k}: {a.get(k)!r} there, {b.get(k)!r} now'
                            for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k))
      else:
        changed = f'config.{name}: {a!r} there, {b!r} now'
      raise WorkdirError(f'workdir {workdir} holds a run with a different config ({changed}): use a new '
                         '--workdir, or the same config to resume')
  # The rows an evaluation reads: the best checkpoint is chosen by comparing evaluations across sessions.
  a, b = (_evaluated_rows(d.get('train', {})) for d in (old, new))
  if a != b:
    raise WorkdirError(f'workdir {workdir} holds a run evaluated on other rows (config.train.eval_batches, '
                       f'eval_batch_size: {a[0]!r}, {a[1]!r} there, {b[0]!r}, {b[1]!r} now), whose evaluations '
                       'would not compare with this one\'s: use a new --workdir, or the same settings to resume')


def _evaluated_rows(train: dict[str, Any]) -> tuple[int, int | None]:
  """(eval_batches, eval_batch_size) of a config.json's train section as far as they choose the rows an evaluation
  reads: the batch size (0: train.batch_size) only under a limit on batches or with carried state (the streams)."""
  batches, size = train.get('eval_batches', 0), train.get('eval_batch_size', 0) or train.get('batch_size')
  return (batches, size if batches or train.get('carry_state', False) else None)


DATA_FILES = 'data_files.json'  # in a workdir: {file: sha256} of the local files the run trains on


def absolute_paths(config):
  """`config` with the files and folders it names (data.path, src_path, tgt_path, data_dir; train.init_from)
  absolute, so that config.json names them wherever it is read from; `config` itself when they already are."""
  data = core.with_absolute_paths(config.data.to_dict())
  init_from = os.path.abspath(os.path.expanduser(config.train.init_from)) if config.train.init_from else ''
  if data == config.data.to_dict() and init_from == config.train.init_from:
    return config
  config = config.copy_and_resolve_references()
  for k in core.PATH_FIELDS:
    if k in config.data:
      config.data[k] = data[k]
  config.train.init_from = init_from
  return config


def data_change(workdir: str, digests: dict[str, str]) -> str:
  """'' unless the DATA_FILES of `workdir` records other files than `digests` (datasets.file_digests): then what
  differs, in words. None recorded (a new run, one of an older version, generated data) is no change."""
  try:
    with open(os.path.join(workdir, DATA_FILES)) as f:
      recorded = json.load(f)
  except (OSError, ValueError):
    return ''
  return core.changed_files(recorded, digests)


def _check_same_data(workdir: str, digests: dict[str, str]) -> None:
  """Refuses to resume a run (a workdir with a checkpoint) whose local data files are not the ones it began on:
  a changed file would train its parameters on other text, or with another tokenizer's ids."""
  why = data_change(workdir, digests) if checkpoint.saved_steps(workdir) else ''
  if why:
    raise WorkdirError(f'workdir {workdir} holds a run trained on other data: {why}: restore its data, or use a '
                       'new --workdir to train on this')


def write_json(path: str, obj: Any) -> None:
  """Writes whole or not at all: other processes (or a report) may read the file while it is written."""
  with open(f'{path}.{os.getpid()}.tmp', 'w') as f:
    json.dump(obj, f, indent=2)
  os.replace(f'{path}.{os.getpid()}.tmp', path)


def train_and_evaluate(config, workdir: str, stop_after: int | None = None) -> dict[str, Any]:
  """Trains config.model on config.data to config.train.num_steps, resuming from workdir if it has checkpoints.

  Returns the run summary (also written to workdir/summary.json on completion). `stop_after` ends this call
  after that many steps as if preempted (checkpoint saved, status 'preempted'); rerunning resumes exactly.
  In a multi-process run, a process that fails tells the others, which stop at their next barrier with its
  reason (`errors.PeerFailedError`) instead of waiting for it.
  """
  try:
    return _train_and_evaluate(config, workdir, stop_after)
  except errors.PeerFailedError:  # the failure of another process, which announced it itself
    raise
  except BaseException as e:
    error = _one_line(e)
    sharding.announce_failure(f'{type(error).__name__}: {str(error).splitlines()[0]}' if str(error)
                              else type(error).__name__)
    if error is e:
      raise
    raise error from e


def warn_of_init_from(init_from: str, loaded: list[str], fresh: list[str]) -> None:
  """Warnings for a train.init_from that gave this model `loaded` of its arrays (`fresh` start anew) and may not be
  what was meant: another model's run (fewer arrays loaded than fresh), or a run that has not finished."""
  if len(fresh) > len(loaded):
    logging.warning('config.train.init_from=%s gave only %d of this model\'s %d parameter arrays (%d start fresh): '
                    'check that config.model is the model trained there', init_from, len(loaded),
                    len(loaded) + len(fresh), len(fresh))
  if finished_summary(init_from) is None:
    logging.warning('config.train.init_from=%s holds a run that has not finished: its latest checkpoint (step %s) '
                    'is used', init_from, (checkpoint.saved_steps(init_from) or ['?'])[0])


def session(from_step: int, platform: str | None = None) -> dict[str, Any]:
  """One entry of summary.json's `sessions`: where this process's session of a run ran, from which step."""
  return {'from_step': from_step, 'devices': jax.device_count(), 'processes': jax.process_count(),
          'platform': platform or jax.devices()[0].platform}


def finished_summary(workdir: str) -> dict[str, Any] | None:
  """The summary.json of a run that finished in `workdir`, else None (none, or one that cannot be read)."""
  try:
    with open(os.path.join(workdir, 'summary.json')) as f:
      summary = json.load(f)
  except (OSError, ValueError):
    return None
  return summary if isinstance(summary, dict) and summary.get('status') == 'done' else None


def _train_and_evaluate(config, workdir: str, stop_after: int | None) -> dict[str, Any]:
  t_start = time.time()
  config = absolute_paths(config)
  os.makedirs(workdir, exist_ok=True)
  check_resumable(workdir, config)
  finished = finished_summary(workdir)
  if finished is not None:  # rerunning its command leaves it as it is (a sweep skips such trials alike)
    logging.warning('%s holds a finished run (summary.json): nothing to do. To train again, use a new --workdir; '
                    'to evaluate its final checkpoint again, delete summary.json', workdir)
    return finished
  peak_memory = PeakMemory()
  primary = jax.process_index() == 0
  digests = datasets.file_digests(config.data)
  _check_same_data(workdir, digests)
  if registry.MODELS[config.model.name].trained_by == 'counting':  # the n-gram LM: one counting pass, no steps
    if primary and digests:
      write_json(os.path.join(workdir, DATA_FILES), digests)
    return count.fit_and_evaluate(config, workdir, peak_memory)
  host_memory.keep_freed_memory()  # on CPU: a quarter of a small GPT's step was page faults (see host_memory)
  tc = config.train

  datasets.prepare(config.data)  # every process: safe under its file lock, and hosts may have local disks
  data = datasets.load(config.data)
  config = in_steps(config, data)
  tc = config.train
  if primary:
    write_json(os.path.join(workdir, 'config.json'), json.loads(config.to_json_best_effort()))
    if digests:
      write_json(os.path.join(workdir, DATA_FILES), digests)
  if tc.get('test_eval', False):
    _check_test_split(data, config.data.name)
  sharding.wait_for_all_processes('preparing the data')
  mesh = sharding.make_mesh()
  batch_sh = sharding.batch_sharding(mesh)
  local_batch = tc.batch_size // jax.process_count()
  eval_batch = eval_batch_size(tc) // jax.process_count()

  dtype = compute_dtype(tc.dtype)
  model = registry.build(config.model, data, dtype)
  tx, schedule = optim.make_optimizer(config.optim, tc.num_steps)
  objective = steps.OBJECTIVES[registry.MODELS[config.model.name].objective or data.kind]
  example = objective.inputs(next(data.eval_batches(batch_size=1, max_batches=1)))
  carry_state = tc.get('carry_state', False)  # recurrent LMs on text streams: the state carried across batches
  plateau_decay = config.optim.get('plateau_decay', 0.0)
  init = lambda rng: state_lib.create(model, tx, rng, example, tc.batch_size if carry_state else 0,
                                      lr_scale=plateau_decay > 0)
  rng = jax.random.PRNGKey(config.seed)
  abstract = jax.eval_shape(init, rng)
  state_sh = sharding.state_shardings(abstract, mesh, tc.fsdp, tc.fsdp_min_size)
  state_sh = state_sh.replace(carry=jax.tree.map(lambda _: batch_sh, state_sh.carry))  # a row per stream
  abstract = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, state_sh)

  ckpt = Checkpointer(workdir, tc.checkpoint_every, tc.keep_checkpoints, tc.get('keep_best', False))
  restored = ckpt.restore_latest(abstract)
  if restored is None:
    state = jax.jit(init, out_shardings=state_sh)(rng)
    if tc.init_from:
      params, loaded, fresh = checkpoint.load_matching_params(tc.init_from, state.params, state_sh.params,
                                                              frozen=optim.frozen_prefixes(config.optim))
      logging.info('initialised %d parameter arrays from %s; %d fresh: %s', len(loaded), tc.init_from, len(fresh),
                   ', '.join(fresh) or 'none')
      warn_of_init_from(tc.init_from, loaded, fresh)
      state = state.replace(params=params, opt_state=jax.jit(tx.init, out_shardings=state_sh.opt_state)(params))
    meta = {'best_eval_loss': math.inf, 'best_step': 0, 'train_seconds': 0.0, 'tokens_seen': 0}
  else:
    state, meta = restored
    logging.info('resumed from step %d in %s', int(state.step), workdir)
  start = int(state.step)
  wall_before = meta.get('wall_seconds', 0.0)  # the sessions before this one (0 in checkpoints before the field)
  # Where each session ran, from which step: a run resumed on other hardware says so (summary.json's `sessions`).
  meta['sessions'] = [*meta.get('sessions', []), session(start)]
  num_params = count_params(state.params)

  train_step = jax.jit(steps.make_train_step(model, tx, schedule, objective, tc.get('grad_accum', 1), carry_state),
                       in_shardings=(state_sh, batch_sh),
                       out_shardings=(state_sh, sharding.replicated(mesh)), donate_argnums=0)
  replicated = sharding.replicated(mesh)
  decay_lr = jax.jit(lambda s: s * plateau_decay, out_shardings=state_sh.lr_scale)
  if carry_state:
    eval_step = jax.jit(steps.make_eval_step(model, objective, carry_state=True),
                        in_shardings=(state_sh.params, state_sh.carry, batch_sh),
                        out_shardings=(replicated, state_sh.carry))
    eval_carry = jax.jit(lambda p: state_lib.zero_carry(model, p, eval_batch * jax.process_count()),
                         out_shardings=state_sh.carry)(state.params)
    # A split too short for its streams is a DataError now, not at the first evaluation.
    for split in ('validation', 'test') if tc.get('test_eval', False) else ('validation',):
      data.stream_batches(batch_size=eval_batch, split=split, process_count=jax.process_count())
    batches = data.stream_batches(batch_size=local_batch, start_step=start, process_index=jax.process_index(),
                                  process_count=jax.process_count())
  else:
    eval_step = jax.jit(steps.make_eval_step(model, objective), in_shardings=(state_sh.params, batch_sh),
                        out_shardings=replicated)
    eval_carry = None
    batches = data.train_batches(batch_size=local_batch, start_step=start, seed=config.seed,
                                 process_index=jax.process_index(), process_count=jax.process_count())
  writer = MetricWriter(workdir, enabled=primary, resume_step=start)
  progress = Progress(tc.num_steps, start, enabled=primary, name=config.model.name)
  preemption = _Preemption()
  tokens_per_step = tc.batch_size * data.seq_len
  pending: list[dict[str, jax.Array]] = []
  eval_metrics: dict[str, float] = {}
  train_metrics: dict[str, float] = {}
  test_metrics: dict[str, Any] = {}
  status = 'done'
  timer = time.time()
  steady_since, steady_tokens = None, 0  # tokens/s excludes compilation: counted from the first flush on

  def flush(step: int) -> None:
    """Fetches pending step metrics, stops on a non-finite loss, logs means."""
    nonlocal pending, timer, steady_since, steady_tokens, train_metrics
    if not pending:
      return
    got = jax.device_get(pending)
    first_step = step - len(got) + 1
    for i, m in enumerate(got):
      if not np.isfinite(m['loss']):
        ckpt.wait()  # a save in flight is a good checkpoint too
        saved = checkpoint.saved_steps(workdir)
        kept = (f'the last good checkpoint (step {saved[0]}) is kept in {workdir}/checkpoints' if saved else
                'no checkpoint was saved before it')
        raise NonFiniteLossError(
            f'loss became {float(m["loss"])} at step {first_step + i}; {kept}: lower optim.lr or set '
            'optim.clip_norm, then rerun with a new --workdir')
    now = time.time()
    meta['train_seconds'] += now - timer
    meta['tokens_seen'] += tokens_per_step * len(got)
    if steady_since is None:
      steady_since = now
    else:
      steady_tokens += tokens_per_step * len(got)
    elapsed = now - steady_since
    tok_s = steady_tokens / elapsed if elapsed > 0 else float('nan')
    train_metrics = {k: float(np.mean([m[k] for m in got])) for k in got[0]}
    train_metrics['tokens_per_sec'] = tok_s
    if math.isfinite(tok_s):  # the last session's that measured one (a short resume may not)
      meta['tokens_per_sec'] = tok_s
    writer.write(step, 'train', {**train_metrics, 'train_seconds': meta['train_seconds']})  # so far, all sessions
    eta = (tc.num_steps - step) * tokens_per_step / tok_s if tok_s > 0 else float('nan')
    progress.update(step, train_metrics['loss'], tok_s, eta)
    pending = []
    timer = time.time()

  try:
    if start >= tc.num_steps:  # finished before, but its summary was not written: evaluate the final state again
      eval_metrics = evaluate(eval_step, objective, state.params, data, eval_batch, batch_sh,
                              tc.eval_batches or None, carry=eval_carry)
      if objective.final_eval is not None:
        eval_metrics.update(objective.final_eval(model, state.params, data, config, workdir))
      if tc.get('test_eval', False):
        test_metrics = _test_metrics(eval_step, objective, state.params, data, eval_batch, batch_sh, tc, workdir,
                                     state_sh, eval_carry)
    for step in range(start + 1, tc.num_steps + 1):
      state, m = train_step(state, sharding.global_batch(next(batches), batch_sh))
      pending.append(m)
      bound_in_flight(pending)
      last = step == tc.num_steps
      stopping = preemption.reached(step) or (stop_after is not None and step - start >= stop_after)
      checkpoint_due = ckpt.should_save(step) or last or stopping
      if step % tc.log_every == 0 or checkpoint_due:
        flush(step)
      if step % tc.eval_every == 0 or last:
        flush(step)
        t_eval = time.time()
        eval_metrics = evaluate(eval_step, objective, state.params, data, eval_batch, batch_sh,
                                tc.eval_batches or None, carry=eval_carry)
        if eval_metrics['loss'] < meta['best_eval_loss']:
          meta['best_eval_loss'], meta['best_step'] = eval_metrics['loss'], step
          ckpt.save_best(step, state.params, eval_metrics)
        elif plateau_decay > 0:  # no better than the best so far: a lower learning rate from the next step on
          state = state.replace(lr_scale=decay_lr(state.lr_scale))
        if not last:  # the last one is written with the final evaluation's metrics, below
          writer.write(step, 'eval', eval_metrics)
        timer += time.time() - t_eval  # evaluation time is not training time
        if steady_since is not None:
          steady_since += time.time() - t_eval
      if checkpoint_due:
        meta['wall_seconds'] = wall_before + time.time() - t_start  # this session's and the earlier ones'
        ckpt.save(step, state, meta)
      if last:  # after the last checkpoint: a decoding that fails (or runs out of memory) loses no training
        if objective.final_eval is not None:
          eval_metrics.update(objective.final_eval(model, state.params, data, config, workdir))
        writer.write(step, 'eval', eval_metrics)
      if last and tc.get('test_eval', False):
        ckpt.wait()  # no save in flight while the best checkpoint is read (orbax's barriers: see save_best)
        test_metrics = _test_metrics(eval_step, objective, state.params, data, eval_batch, batch_sh, tc, workdir,
                                     state_sh, eval_carry)
        writer.write(step, 'test', {k: v for k, v in test_metrics.items() if k != 'parameters'})
      if stopping and not last:
        status = 'preempted'
        logging.warning('stopped at step %d with a checkpoint saved; rerun the same command to resume', step)
        break
  finally:
    preemption.restore()
    ckpt.close()
    writer.close()
    progress.close()

  summary = {
      'status': status, 'model': config.model.name, 'data': config.data.name, 'params': num_params,
      'step': int(state.step), 'num_steps': tc.num_steps, 'train': train_metrics, 'eval': eval_metrics,
      'best_eval_loss': meta['best_eval_loss'], 'best_step': meta['best_step'], **({'test': test_metrics} if
                                                                                    test_metrics else {}),
      'tokens_per_sec': meta.get('tokens_per_sec', float('nan')),  # steady state, compilation out
      'train_seconds': meta['train_seconds'], 'wall_seconds': wall_before + time.time() - t_start,
      'devices': jax.device_count(), 'processes': jax.process_count(), 'sessions': meta['sessions'],
      'dtype': dtype.name,
      'platform': jax.devices()[0].platform, 'commit': code_version(),
      'peak_memory_bytes': peak_memory.bytes(),  # GPU/TPU: the device's; CPU: the process's resident set
  }
  sharding.wait_for_all_processes('the run')  # a process that failed late says so here, not in jax's shutdown
  if status == 'done' and primary:
    write_json(os.path.join(workdir, 'summary.json'), summary)
  summary['state'] = state
  return summary
