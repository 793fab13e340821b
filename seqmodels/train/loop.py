"""The training loop: data -> jitted step -> periodic (log, eval, checkpoint) -> summary; exact
resume.

`train_and_evaluate` reads top to bottom: the workdir's checks, the data, the model and its state
(fresh, resumed or from `train.init_from`), then the steps, with logging, evaluation and checkpoints
as small named pieces. The workdir's records live in workdir.py, evaluation in evaluate.py, the
n-gram's counting run in count.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import time
from typing import Any

import jax
import numpy as np

from seqmodels import errors
from seqmodels.data import core
from seqmodels.data import registry as datasets
from seqmodels.models import registry, size
from seqmodels.train import (checkpoint, count, host_memory, mfu, optim, pretrained, sharding,
                             steps)
from seqmodels.train import state as state_lib
from seqmodels.train import workdir as records
from seqmodels.train.evaluate import Evaluator, check_test_split
from seqmodels.train.lock import WorkdirLock
from seqmodels.train.metrics import (MetricWriter, PeakMemory, Progress, StepProfiler, TrainLog,
                                     strict_json)
from seqmodels.train.preemption import Preemption

def train_and_evaluate(config, workdir: str, stop_after: int | None = None) -> dict[str, Any]:
  """Trains config.model on config.data to config.train.num_steps, resuming from workdir if it has
  checkpoints.

  Returns the run summary (also written to workdir/summary.json on completion). `stop_after` ends
  this call after that many steps as if preempted (checkpoint saved, status 'preempted'); rerunning
  resumes exactly. In a multi-process run, a process that fails tells the others, which stop at
  their next barrier with its reason (`errors.PeerFailedError`) instead of waiting for it.
  """
  try:
    return _train_and_evaluate(config, workdir, stop_after)
  except errors.PeerFailedError:  # the failure of another process, which announced it itself
    raise
  except BaseException as e:
    error = _as_one_line(e, workdir)
    sharding.announce_failure(errors.one_line(error))
    if error is e:
      raise
    raise error from e


def _train_and_evaluate(config, workdir: str, stop_after: int | None) -> dict[str, Any]:
  t_start = time.time()
  config = records.absolute_paths(config)
  os.makedirs(workdir, exist_ok=True)
  records.check_resumable(workdir, config)
  finished = records.finished_summary(workdir)
  # rerunning its command leaves it as it is (a sweep skips such trials alike)
  if finished is not None:
    logging.warning('%s holds a finished run (summary.json): nothing to do. To train again, use a '
                    'new --workdir; to evaluate its final checkpoint again, delete summary.json',
                    workdir)
    return finished
  # One writer at a time, from here to the end (process 0 holds it for all processes of the run).
  with WorkdirLock(workdir) if jax.process_index() == 0 else contextlib.nullcontext():
    return _train(config, workdir, stop_after, t_start)


def _train(config, workdir: str, stop_after: int | None, t_start: float) -> dict[str, Any]:
  records.check_resumable(workdir, config)  # again, now that no other process can write it
  peak_memory = PeakMemory()
  digests = datasets.file_digests(config.data)
  records.check_same_data(workdir, digests)
  # the n-gram LM: one pass, no steps
  if registry.MODELS[config.model.name].trained_by == 'counting':
    return count.fit_and_evaluate(config, workdir, peak_memory, digests)
  # on CPU: a quarter of a small GPT's step was page faults (host_memory)
  host_memory.keep_freed_memory()

  # every process: safe under its file lock, and hosts may have local disks
  datasets.prepare(config.data)
  data = datasets.load(config.data)
  config = in_steps(config, data)
  objective = steps.objective_for(config.model.name, data.kind)
  example = objective.inputs(next(data.eval_batches(batch_size=1, max_batches=1)))
  # model.params / flops_per_token: the width that comes closest, recorded in config.json
  config, size_target = size.solve(config, data, example)
  tc = config.train
  records.write_config(workdir, config, digests)
  if tc.get('test_eval', False):
    check_test_split(data, config.data.name)
  sharding.wait_for_all_processes('preparing the data')

  mesh = sharding.make_mesh()
  batch_sh = sharding.batch_sharding(mesh)
  dtype = registry.compute_dtype(tc.dtype)
  registry.check_vocab(config.model, data)
  model = registry.build(config.model, data, dtype)
  tx, schedule = optim.make_optimizer(config.optim, tc.num_steps)
  # recurrent LMs on text streams: the state carried across batches
  carry_state = tc.get('carry_state', False)
  ckpt = checkpoint.Checkpointer(workdir, tc.checkpoint_every, tc.keep_checkpoints,
                                 tc.get('keep_best', False))
  state, state_sh, run = _initial_state(
      config, model, objective, data, tx, mesh, batch_sh, ckpt, workdir)
  start = int(state.step)
  run.sessions = [*run.sessions, records.session(start)]  # a run resumed on other hardware says so
  wall_before = run.wall_seconds  # the sessions before this one
  num_params = int(sum(np.prod(p.shape) for p in jax.tree.leaves(state.params)))
  sized = size.count(config.model, data, state.params)

  train_step = jax.jit(
      steps.make_train_step(model, tx, schedule, objective, tc.get('grad_accum', 1), carry_state,
                            tc.get('layer_norms', False)),
      in_shardings=(state_sh, batch_sh), out_shardings=(state_sh, sharding.replicated(mesh)),
      donate_argnums=0)
  plateau_decay = config.optim.get('plateau_decay', 0.0)
  decay_lr = jax.jit(lambda s: s * plateau_decay, out_shardings=state_sh.lr_scale)
  evaluator = Evaluator(model, objective, data, config, workdir, state_sh, batch_sh, state.params)
  batches = _train_batches(data, config, start)
  primary = jax.process_index() == 0
  writer = MetricWriter(workdir, enabled=primary, resume_step=start)
  log = TrainLog(writer, Progress(tc.num_steps, start, enabled=primary, name=config.model.name),
                  run, tokens_per_step=tc.batch_size * data.seq_len, num_steps=tc.num_steps)
  preemption = Preemption()
  profiler = StepProfiler(tc.get('profile_steps', ''), workdir, enabled=primary)
  test_eval = tc.get('test_eval', False)
  eval_metrics: dict[str, float] = {}
  test_metrics: dict[str, Any] = {}
  context: dict[str, Any] = {}  # the loss at longer windows (evaluate.Evaluator.record_context)
  status = 'done'

  def evaluate_and_keep_best(step: int, state):
    """The validation metrics; a new best is saved (train.keep_best), a plateau lowers the learning
    rate."""
    t_eval = time.time()
    metrics = evaluator(state.params)
    if metrics['loss'] < run.best_eval_loss:
      run.best_eval_loss, run.best_step = metrics['loss'], step
      ckpt.save_best(step, state.params, metrics)
    elif plateau_decay > 0:
      # no better than the best so far: a lower learning rate from the next step on
      state = state.replace(lr_scale=decay_lr(state.lr_scale))
    log.pause(time.time() - t_eval)  # evaluation time is not training time
    return metrics, state

  def final_evaluations(step: int, state) -> None:
    """After the last step's checkpoint, so a decoding that fails (or runs out of memory) loses no
    training."""
    nonlocal test_metrics
    eval_metrics.update(evaluator.after_training(state.params))
    context.update(evaluator.record_context(state.params, workdir))
    writer.write(step, 'eval', eval_metrics)
    if test_eval:
      # no save in flight while the best checkpoint is read (orbax's barriers: see save_best)
      ckpt.wait()
      test_metrics = evaluator.test(state.params)
      writer.write(step, 'test', {k: v for k, v in test_metrics.items() if k != 'parameters'})

  try:
    # finished before, but its summary was not written: evaluate the final state
    if start >= tc.num_steps:
      eval_metrics = {**evaluator(state.params), **evaluator.after_training(state.params)}
      context.update(evaluator.record_context(state.params, workdir))
      if test_eval:
        test_metrics = evaluator.test(state.params)
    for step in range(start + 1, tc.num_steps + 1):
      profiler.before(step)
      state, metrics = train_step(state, sharding.global_batch(next(batches), batch_sh))
      profiler.after(step, metrics)
      log.add(metrics)
      last = step == tc.num_steps
      stopping = preemption.reached(step) or (stop_after is not None and step - start >= stop_after)
      checkpoint_due = ckpt.should_save(step) or last or stopping
      if step % tc.log_every == 0 or checkpoint_due:
        log.flush(step, ckpt, workdir)
      if step % tc.eval_every == 0 or last:
        log.flush(step, ckpt, workdir)
        eval_metrics, state = evaluate_and_keep_best(step, state)
        if not last:  # the last one is written with the final evaluations' metrics
          writer.write(step, 'eval', eval_metrics)
      if checkpoint_due:
        # this session's and the earlier ones'
        run.wall_seconds = wall_before + time.time() - t_start
        ckpt.save(step, state, run.to_meta())
      if last:
        final_evaluations(step, state)
      if stopping and not last:
        status = 'preempted'
        logging.warning(
            'stopped at step %d with a checkpoint saved; rerun the same command to resume', step)
        break
  finally:
    profiler.stop()
    # waits for a save in flight; a second Ctrl-C meanwhile aborts at once (preemption.py)
    ckpt.close()
    writer.close()
    log.close()
    preemption.restore()

  summary = records.summary(
      config, status, params=num_params, step=int(state.step), num_steps=tc.num_steps,
      train=run.train_metrics,  # the checkpoint's where this session logged none
      eval=eval_metrics, evaluation=evaluator.describe(), **context,
      best_eval_loss=run.best_eval_loss, best_step=run.best_step,
      **({'test': test_metrics} if test_metrics else {}),
      tokens_per_sec=run.tokens_per_sec,  # steady state, compilation out
      train_seconds=run.train_seconds, wall_seconds=wall_before + time.time() - t_start,
      sessions=run.sessions, dtype=dtype.name, platform=jax.devices()[0].platform,
      **({'pretrained_vectors': run.pretrained_vectors} if run.pretrained_vectors else {}),
      peak_memory_bytes=peak_memory.bytes(),  # GPU/TPU: the device's; CPU: the process's resident
                                              # set
      **sized.fields(), **({'size_target': size_target} if size_target else {}),
      **mfu.fields(sized.flops_per_token, run.tokens_per_sec, dtype.name, jax.device_count(),
                   tc.get('peak_flops', 0.0)))
  sharding.wait_for_all_processes('the run')  # a process that failed late says so here, not in
                                              # jax's shutdown
  if status == 'done':
    records.write_summary(workdir, summary)
  summary['state'] = state
  return summary


@dataclasses.dataclass
class _RunRecord:
  """What a run carries across its sessions, in every checkpoint's metadata."""
  best_eval_loss: float = math.inf
  best_step: int = 0
  train_seconds: float = 0.0
  tokens_seen: int = 0
  wall_seconds: float = 0.0  # the sessions' wall time up to the last checkpoint
  tokens_per_sec: float = math.nan  # the last session's that measured one (a short resume may not)
  sessions: list[dict[str, Any]] = dataclasses.field(default_factory=list)
  # The last logged train metrics (TrainLog.flush), the summary's: also for a rerun that finds the
  # last checkpoint saved and no summary (killed between them), which trains no step to log.
  train_metrics: dict[str, float] = dataclasses.field(default_factory=dict)
  # model.pretrained_vectors: the file and how many of the vocabulary's words it had
  pretrained_vectors: dict[str, Any] = dataclasses.field(default_factory=dict)

  @classmethod
  def from_meta(cls, meta: dict[str, Any]) -> _RunRecord:
    """From a checkpoint's metadata; fields a version before them did not save keep their
    defaults."""
    names = {f.name for f in dataclasses.fields(cls)}
    record = cls(**{k: v for k, v in meta.items() if k in names})
    record.train_metrics = {k: float(v) for k, v in record.train_metrics.items()}  # 'NaN': nan
    return record

  def to_meta(self) -> dict[str, Any]:
    meta = dataclasses.asdict(self)
    if math.isnan(meta['tokens_per_sec']):
      del meta['tokens_per_sec']  # not measured yet: absent, as strict JSON has no NaN
    meta['train_metrics'] = strict_json(meta['train_metrics'])  # a first flush's tokens/s is NaN
    return meta


def _initial_state(config, model, objective, data, tx, mesh, batch_sh,
                   ckpt: checkpoint.Checkpointer, workdir: str):
  """(state, its shardings, run record): the latest checkpoint's, else a fresh state (from
  train.init_from's parameters where it names a run)."""
  tc = config.train
  carry_state = tc.get('carry_state', False)
  example = objective.inputs(next(data.eval_batches(batch_size=1, max_batches=1)))
  init = lambda rng: state_lib.create(model, tx, rng, example, tc.batch_size if carry_state else 0,
                                      lr_scale=config.optim.get('plateau_decay', 0.0) > 0)
  rng = jax.random.PRNGKey(config.seed)
  abstract = jax.eval_shape(init, rng)
  state_sh = sharding.state_shardings(abstract, mesh, tc.fsdp, tc.fsdp_min_size)
  # a row per stream
  state_sh = state_sh.replace(carry=jax.tree.map(lambda _: batch_sh, state_sh.carry))
  abstract = jax.tree.map(
      lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, state_sh)
  restored = ckpt.restore_latest(abstract)
  if restored is not None:
    state, meta = restored
    logging.info('resumed from step %d in %s', int(state.step), workdir)
    return state, state_sh, _RunRecord.from_meta(meta)
  if tc.get('branch_from', ''):  # a wsd budget: the longer run's state where this decay begins
    branch = optim.decay_start(config.optim, tc.num_steps)
    state, meta = checkpoint.restore_step(tc.branch_from, branch, abstract,
                                          'config.train.branch_from')
    logging.info('branched from step %d of %s', branch, tc.branch_from)
    return state, state_sh, _RunRecord.from_meta({k: v for k, v in meta.items()
                                                  if k != 'sessions'})
  state = jax.jit(init, out_shardings=state_sh)(rng)
  if tc.init_from:
    params, loaded, fresh = checkpoint.load_matching_params(
        tc.init_from, state.params, state_sh.params, frozen=optim.frozen_prefixes(config.optim))
    logging.info('initialised %d parameter arrays from %s; %d fresh: %s', len(loaded), tc.init_from,
                 len(fresh), ', '.join(fresh) or 'none')
    warn_of_init_from(tc.init_from, loaded, fresh)
    state = state.replace(params=params,
                          opt_state=jax.jit(tx.init, out_shardings=state_sh.opt_state)(params))
  record = _RunRecord()
  if config.model.get('pretrained_vectors', ''):
    params, record.pretrained_vectors = pretrained.initialise(
        state.params, list(data.meta['words']), config.model.pretrained_vectors, config.model)
    state = state.replace(params=params,
                          opt_state=jax.jit(tx.init, out_shardings=state_sh.opt_state)(params))
  return state, state_sh, record


def _train_batches(data: core.Data, config, start: int):
  """This process's training batches from step `start` on: shuffled rows, or the streams of
  carry_state."""
  tc = config.train
  local = dict(batch_size=tc.batch_size // jax.process_count(), start_step=start,
               process_index=jax.process_index(), process_count=jax.process_count())
  if tc.get('carry_state', False):
    return data.stream_batches(**local)
  return data.train_batches(**local, seed=config.seed)


def in_steps(config, data: core.Data):
  """`config` with what it says in epochs said in steps: train.num_epochs > 0 as train.num_steps
  (rounded up), and train.eval_every / checkpoint_every 0 as one epoch's steps (rounded); `config`
  itself when it has none."""
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
  logging.info('an epoch is %.6g steps: num_steps %d, eval_every %d, checkpoint_every %d',
               per_epoch, config.train.num_steps, config.train.eval_every,
               config.train.checkpoint_every)
  return config


def warn_of_init_from(init_from: str, loaded: list[str], fresh: list[str]) -> None:
  """Warnings for a train.init_from that gave this model `loaded` of its arrays (`fresh` start anew)
  and may not be what was meant: another model's run (fewer arrays loaded than fresh), or a run that
  has not finished."""
  if len(fresh) > len(loaded):
    logging.warning("config.train.init_from=%s gave only %d of this model's %d "
                    "parameter arrays (%d start "
                    'fresh): check that config.model is the model trained there', init_from,
                    len(loaded), len(loaded) + len(fresh), len(fresh))
  if records.finished_summary(init_from) is None:
    logging.warning('config.train.init_from=%s holds a run that has not finished: its latest '
                    'checkpoint (step %s) is used', init_from,
                    (checkpoint.saved_steps(init_from) or ['?'])[0])


def _as_one_line(e: BaseException, workdir: str) -> BaseException:
  """Out of memory (XLA's, or the host's MemoryError) as an OutOfMemoryError, and a failed write to
  storage as a StorageError, each naming the fixes; any other error as it is."""
  if isinstance(e, errors.SeqmodelsError):
    return e
  fixes = ('lower config.train.batch_size or the model (config.model.width, config.model.layers), '
           'or shard parameters and optimizer state with config.train.fsdp=True')
  if isinstance(e, jax.errors.JaxRuntimeError) and errors.is_out_of_memory(str(e)):
    return errors.OutOfMemoryError(f'the {jax.default_backend()} devices ran out of memory '
                                   f'({str(e).splitlines()[0][:200]}): {fixes}')
  if isinstance(e, MemoryError):
    return errors.OutOfMemoryError(f'the host ran out of memory ({type(e).__name__}: {e}): {fixes}')
  fault = errors.storage_fault(e)
  if fault is not None:
    reason, fix = fault
    where = getattr(e, 'filename', None) or workdir
    saved = checkpoint.saved_steps(workdir)
    kept = (f'the last complete checkpoint (step {saved[0]}) is kept' if saved
            else 'no checkpoint was saved')
    return errors.StorageError(f'a write to {where} failed ({reason}): {fix} and rerun the same '
                               f'command to resume ({kept}), or use another --workdir')
  return e
