"""Metrics to JSONL and TensorBoard in the workdir, and progress on the terminal."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import resource
import sys
import time
from typing import Any

import jax
import numpy as np

from seqmodels.errors import NonFiniteLossError
from seqmodels.train import checkpoint


@contextlib.contextmanager
def _without_torch():
  """Hides an installed but not yet imported PyTorch: tensorboardX imports it only to accept torch
  tensors, which cost every run 1.4 s of start-up on a 2-core CPU. A later `import torch` works as
  usual."""
  hidden = 'torch' not in sys.modules
  if hidden:
    sys.modules['torch'] = None  # makes `import torch` raise ImportError
  try:
    yield
  finally:
    if hidden:
      del sys.modules['torch']


class PeakMemory:
  """The peak memory of one run in this process, which may have run others before it (an in-process
  sweep).

  CPU: the process's peak resident set (VmHWM), reset when the run starts (Linux; getrusage's
  ru_maxrss keeps the peak of every thread that ever exited, so it never falls). GPU/TPU: the
  device's peak bytes in use, which cannot be reset: None where it is not above the peak at the
  run's start (an earlier run's), which hides this one.
  """

  def __init__(self):
    self._reset_host = _reset_host_peak()
    self._device_start = _device_peak()

  def bytes(self) -> int | None:
    device = _device_peak()
    if device is not None:
      return device if self._device_start is None or device > self._device_start else None
    return (_host_peak() if self._reset_host
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


def _device_peak() -> int | None:
  return (jax.local_devices()[0].memory_stats() or {}).get('peak_bytes_in_use')


def _reset_host_peak() -> bool:
  try:
    with open('/proc/self/clear_refs', 'w') as f:
      f.write('5')
    return _host_peak() is not None
  except OSError:
    return False


def _host_peak() -> int | None:
  try:
    with open('/proc/self/status') as f:
      for line in f:
        if line.startswith('VmHWM:'):
          return int(line.split()[1]) * 1024
  except (OSError, ValueError, IndexError):
    pass
  return None


def _scalar(v: Any) -> float:
  return float(np.asarray(v))


def strict_json(obj: Any) -> Any:
  """`obj` with its non-finite floats as the strings 'NaN', 'Infinity' and '-Infinity', which strict
  JSON readers accept and `float()` reads back (json.dump would write bare NaN, which is not
  JSON)."""
  if isinstance(obj, float) and not math.isfinite(obj):
    return 'NaN' if math.isnan(obj) else ('Infinity' if obj > 0 else '-Infinity')
  if isinstance(obj, dict):
    return {k: strict_json(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [strict_json(v) for v in obj]
  return obj


def _drop_records_after(path: str, step: int) -> int:
  """Rewrites the JSONL file `path` without its records after `step` (and a torn last line); returns
  how many records it dropped."""
  try:
    with open(path) as f:
      lines = f.readlines()
  except FileNotFoundError:
    return 0
  kept, dropped = [], 0
  for line in lines:
    try:
      record = json.loads(line)
    except ValueError:  # a line torn by a kill mid-write
      continue
    if isinstance(record, dict) and isinstance(record.get('step'), int) and record['step'] > step:
      dropped += 1
    else:
      kept.append(line if line.endswith('\n') else line + '\n')
  if dropped or len(kept) != len(lines):
    with open(f'{path}.{os.getpid()}.tmp', 'w') as f:
      f.writelines(kept)
    os.replace(f'{path}.{os.getpid()}.tmp', path)
  return dropped


class MetricWriter:
  """Appends one JSON object per (step, split) to workdir/metrics.jsonl and mirrors scalars to
  TensorBoard.

  `resume_step`: the step the run (re)starts from. The records an earlier session logged after it
  (the steps after its last checkpoint, which this session trains again) are dropped first, so each
  (step, split) is logged once and a curve never doubles back.
  """

  def __init__(self, workdir: str, enabled: bool = True, resume_step: int | None = None):
    self._enabled = enabled
    if not enabled:
      return
    path = os.path.join(workdir, 'metrics.jsonl')
    if resume_step is not None:
      dropped = _drop_records_after(path, resume_step)
      if dropped:
        logging.info('metrics.jsonl: dropped %d records logged after step %d, the step '
                     'this run resumes from', dropped, resume_step)
    self._jsonl = open(path, 'a')
    try:
      with _without_torch():
        from tensorboardX import SummaryWriter
      self._tb = SummaryWriter(os.path.join(workdir, 'tensorboard'))
    except ImportError:  # TensorBoard is optional; JSONL is the record
      self._tb = None

  def write(self, step: int, split: str, metrics: dict[str, Any]) -> None:
    if not self._enabled:
      return
    values = {k: _scalar(v) for k, v in metrics.items()}
    record = strict_json({'step': step, 'split': split, 'time': time.time(), **values})
    self._jsonl.write(json.dumps(record, allow_nan=False) + '\n')
    self._jsonl.flush()
    if self._tb is not None:
      for k, v in values.items():
        if math.isfinite(v):
          self._tb.add_scalar(f'{split}/{k}', v, step)

  def close(self) -> None:
    if self._enabled:
      self._jsonl.close()
      if self._tb is not None:
        self._tb.close()


class Progress:
  """A progress bar (loss, tokens/s, ETA) on an interactive terminal; plain log lines otherwise."""

  def __init__(self, total: int, start: int, enabled: bool = True, name: str = ''):
    self._total, self._last = total, start
    self._name = name
    self._bar = None
    if enabled and sys.stderr.isatty():
      from tqdm import tqdm
      self._bar = tqdm(total=total, initial=start, desc=name or None, unit='step',
                       dynamic_ncols=True)
    self._enabled = enabled

  def update(self, step: int, loss: float, tokens_per_sec: float, eta_s: float) -> None:
    if not self._enabled:
      return
    if self._bar is not None:
      self._bar.update(step - self._last)
      self._bar.set_postfix(loss=f'{loss:.4f}', tok_s=_rate(tokens_per_sec))
    else:
      logging.info('%sstep %d/%d  loss %.4f  %s tokens/s  ETA %s',
                   f'[{self._name}] ' if self._name else '', step, self._total, loss,
                   _rate(tokens_per_sec), _hms(eta_s))
    self._last = step

  def close(self) -> None:
    if self._bar is not None:
      self._bar.close()


def _rate(x: float) -> str:
  return f'{x:,.0f}' if math.isfinite(x) else '?'  # unknown until the first step after compilation


def _hms(seconds: float) -> str:
  if not math.isfinite(seconds):
    return '?'
  m, s = divmod(int(seconds), 60)
  h, m = divmod(m, 60)
  return f'{h}:{m:02d}:{s:02d}' if h else f'{m}:{s:02d}'


# Training steps dispatched but not yet finished, at most. Unbounded, the host queues hundreds of
# steps (each holding its batch in device memory), and XLA:CPU (jax 0.10.2) with several devices per
# process (the tests' 8, or one per core) deadlocks in an all-reduce, likely as executions of later
# steps take every worker thread while waiting for devices whose earlier steps cannot run. On 2
# cores, 600-step runs of the tests' tiny models on 8 devices aborted at the 40 s rendezvous timeout
# 4 times in 4, and 0 in 4 with this bound. Two keep the devices busy while the host prepares the
# next step.
MAX_STEPS_IN_FLIGHT = 2


def bound_in_flight(dispatched: list) -> None:
  """Waits until at most MAX_STEPS_IN_FLIGHT of the steps whose outputs are in `dispatched` (oldest
  first) are unfinished: the host stays ahead of the devices, by a bounded number of steps."""
  if len(dispatched) > MAX_STEPS_IN_FLIGHT:
    jax.block_until_ready(dispatched[-MAX_STEPS_IN_FLIGHT - 1])


class TrainLog:
  """The train metrics of the steps since the last flush: fetched, checked finite, averaged and
  written, with the training time and the steady tokens/s (compilation out: counted from the first
  flush on)."""

  def __init__(self, writer: MetricWriter, progress: Progress, run, tokens_per_step: int,
               num_steps: int):
    self.writer, self.progress, self.run = writer, progress, run
    self.tokens_per_step, self.num_steps = tokens_per_step, num_steps
    self.pending: list[dict[str, jax.Array]] = []
    self.metrics: dict[str, float] = {}  # the last flush's means
    self.timer = time.time()
    self.steady_since: float | None = None
    self.steady_tokens = 0

  def add(self, metrics: dict[str, jax.Array]) -> None:
    """A dispatched step's metrics; waits while more than MAX_STEPS_IN_FLIGHT steps are
    unfinished."""
    self.pending.append(metrics)
    bound_in_flight(self.pending)

  def pause(self, seconds: float) -> None:
    """Leaves `seconds` (an evaluation) out of the training time and the tokens/s."""
    self.timer += seconds
    if self.steady_since is not None:
      self.steady_since += seconds

  def flush(self, step: int, ckpt: checkpoint.Checkpointer, workdir: str) -> None:
    """Fetches the pending metrics, stops on a non-finite loss, logs their means."""
    if not self.pending:
      return
    got = jax.device_get(self.pending)
    first_step = step - len(got) + 1
    for i, m in enumerate(got):
      if not np.isfinite(m['loss']):
        ckpt.wait()  # a save in flight is a good checkpoint too
        saved = checkpoint.saved_steps(workdir)
        kept = (f'the last good checkpoint (step {saved[0]}) is kept in {workdir}/checkpoints'
                if saved else 'no checkpoint was saved before it')
        raise NonFiniteLossError(
            f'loss became {float(m["loss"])} at step {first_step + i}; {kept}: lower optim.lr or '
            'set optim.clip_norm, then rerun with a new --workdir')
    now = time.time()
    self.run.train_seconds += now - self.timer
    self.run.tokens_seen += self.tokens_per_step * len(got)
    if self.steady_since is None:
      self.steady_since = now
    else:
      self.steady_tokens += self.tokens_per_step * len(got)
    elapsed = now - self.steady_since
    tok_s = self.steady_tokens / elapsed if elapsed > 0 else float('nan')
    self.metrics = {k: float(np.mean([m[k] for m in got])) for k in got[0]}
    self.metrics['tokens_per_sec'] = tok_s
    self.run.train_metrics = dict(self.metrics)  # saved with the next checkpoint
    if math.isfinite(tok_s):
      self.run.tokens_per_sec = tok_s
    # train_seconds: so far, all sessions
    self.writer.write(step, 'train', {**self.metrics, 'train_seconds': self.run.train_seconds})
    eta = (self.num_steps - step) * self.tokens_per_step / tok_s if tok_s > 0 else float('nan')
    self.progress.update(step, self.metrics['loss'], tok_s, eta)
    self.pending = []
    self.timer = time.time()

  def close(self) -> None:
    self.progress.close()


def profile_steps(spec: str) -> tuple[int, int] | None:
  """config.train.profile_steps as (first, last) step, or None when empty: '10' (one step),
  '10,11' or '10-12' (consecutive steps). ValueError, naming the form, for anything else."""
  spec = str(spec).strip()
  if not spec:
    return None
  parts = spec.replace('-', ',').split(',')
  ok = len(parts) <= 2 and all(p.strip().isdigit() for p in parts)
  steps = sorted(int(p) for p in parts) if ok else []
  if not ok or steps[0] < 1 or ('-' not in spec and len(steps) == 2 and steps[1] != steps[0] + 1):
    raise ValueError(f'config.train.profile_steps={spec!r} is not a step range: write e.g. '
                     "'10', '10,11' or '10-12' (steps from 1)")
  return steps[0], steps[-1]


class StepProfiler:
  """A jax.profiler trace of train.profile_steps into workdir/profile (TensorBoard's profile tab
  reads it: tensorboard --logdir=WORKDIR/profile); a step range passed before this session began
  is not traced."""

  def __init__(self, spec: str, workdir: str, enabled: bool = True):
    self.steps = profile_steps(spec) if enabled else None
    self.dir = os.path.join(workdir, 'profile')
    self.tracing = False

  def before(self, step: int) -> None:
    if self.steps and step == self.steps[0]:
      jax.profiler.start_trace(self.dir)
      self.tracing = True

  def after(self, step: int, outputs) -> None:
    if self.tracing and step >= self.steps[1]:
      jax.block_until_ready(outputs)  # the traced steps run to their end inside the trace
      self.stop()

  def stop(self) -> None:
    if self.tracing:
      jax.profiler.stop_trace()
      self.tracing = False
