"""Sweeps: a grid of config overrides (product, zip, seeds), each trial named from its overrides,
and running them.

A sweep file defines `get_sweep()` (or `get_sweep(arg)`, chosen with `--sweep=FILE:arg`, as configs
do) returning a list of override dicts. Each trial runs in `<sweep workdir>/<trial name>`:
  * in this process, one after another (`run_in_process`), or N at a time as separate processes
    (`run_parallel`), each
    `python launch.py --config=... --config.<k>=<v> ... --workdir=<trial dir>` writing to <trial
    dir>/log.txt;
  * a trial with `summary.json` is finished and skipped; an interrupted one resumes from its
    checkpoints;
  * a trial that crashes writes `<trial dir>/failed.json` ({"error": last line, "detail": traceback
    or log tail}) and the others go on; rerunning the sweep retries it.
"""

from __future__ import annotations

import ctypes
import dataclasses
import importlib.util
import inspect
import itertools
import logging
import os
import re
import signal
import subprocess
import sys
import time
import traceback
from typing import Any, Callable, Sequence

import ml_collections

from seqmodels import errors
from seqmodels.errors import check
from seqmodels.train import lock
from seqmodels.errors import ConfigError

Overrides = dict[str, Any]
# launch.py's exit code when a run stopped with a checkpoint (SIGTERM, Ctrl-C)
PREEMPTED_EXIT_CODE = 143


def product(*axes: Sequence[Overrides]) -> list[Overrides]:
  """Every combination of one entry from each axis: product([{a:1},{a:2}], [{b:3}]) ->
  [{a:1,b:3},{a:2,b:3}]."""
  return [dict(itertools.chain.from_iterable(d.items() for d in combo))
          for combo in itertools.product(*axes)]


def zip_(*axes: Sequence[Overrides]) -> list[Overrides]:
  """Entries taken together position by position; the axes must have the same length."""
  lengths = {len(a) for a in axes}
  if len(lengths) > 1:
    raise ValueError(f'zip_ needs axes of one length, got lengths {sorted(lengths)}')
  return [dict(itertools.chain.from_iterable(d.items() for d in combo)) for combo in zip(*axes)]


def sweep(field: str, values: Sequence[Any]) -> list[Overrides]:
  """One axis: [{field: v} for v in values]."""
  return [{field: v} for v in values]


def seeds(n: int, field: str = 'seed') -> list[Overrides]:
  return sweep(field, list(range(n)))


def variant(arg: str, choices: Sequence[str], default: str, where: str) -> str:
  """A config or sweep file's `:arg` checked against the variants it has ('' gives `default`);
  `where` names the file. A variant it does not have is a ValueError naming the choices, which
  launch.py prints as one line."""
  if not arg:
    return default
  if not choices:
    raise ValueError(f'{where}:{arg}: this sweep has no variants: drop the ":{arg}" suffix')
  if arg not in choices:
    raise ValueError(f'{where}:{arg}: unknown variant {arg!r}; use one of {", ".join(choices)} '
                     f'(none: {default})')
  return arg


def split_arg(path: str) -> tuple[str, str]:
  """'sweeps/x.py:small' -> ('sweeps/x.py', 'small'); no colon -> (path, '')."""
  file, _, arg = path.partition(':')
  return file, arg


def load(path: str) -> list[Overrides] | Any:
  """The trials of a sweep file: what its get_sweep() (or get_sweep(arg) for 'FILE:arg') returns,
  checked to be a non-empty list of flat {field: value} dicts, or a seqmodels.tuning.Tuning (its
  search trials checked so). A problem is one ConfigError naming
  the file and the fix, as a config's is."""
  file, arg = split_arg(path)
  if not os.path.isfile(file):
    raise ConfigError(f'sweep file {file} does not exist: pass a file from experiments/sweeps/')
  spec = importlib.util.spec_from_file_location('seqmodels_sweep_file', file)
  if spec is None:
    raise ConfigError(f'sweep file {file} is not a Python file: name a .py file defining '
                      'get_sweep(), as in experiments/sweeps/')
  module = importlib.util.module_from_spec(spec)
  try:
    spec.loader.exec_module(module)
  except Exception as e:  # the file's own error, in one line
    raise ConfigError(_raised(file, e, 'while loading')) from e
  if not callable(getattr(module, 'get_sweep', None)):
    raise ConfigError(f'sweep file {file} defines no get_sweep(): define get_sweep() returning '
                      f'a list of override dicts, {_EXAMPLE}')
  if arg and not _takes_an_argument(module.get_sweep):
    raise ConfigError(f'sweep file {file} has no variants (its get_sweep() takes no argument): '
                      f'drop the ":{arg}" suffix')
  try:
    trials = module.get_sweep(arg) if arg else module.get_sweep()
  except ConfigError:  # the file's own one-line error
    raise
  except Exception as e:
    if _raised_by_variant(e):  # `variant` names the file, the variant and the choices
      raise
    call = f'get_sweep({arg!r})' if arg else 'get_sweep()'
    raise ConfigError(_raised(file, e, f'in {call}')) from e
  plan = trials
  if callable(getattr(trials, 'search_trials', None)):  # a tuning.Tuning: its first stage
    check(trials.seeds >= 1, f'sweep file {file}: Tuning(seeds={trials.seeds!r}) must be >= 1')
    trials = trials.search_trials()
  _check_trials(file, trials)
  names = [trial_name(o) for o in trials]
  repeated = sorted({n for n in names if names.count(n) > 1})
  if repeated:
    raise ConfigError(f'sweep {path} has repeated trials {repeated}: every trial needs its own '
                      'overrides')
  return list(trials) if plan is trials else plan


_EXAMPLE = "one per trial: [{'model.width': 32}, {'model.width': 64}]"


def _raised(file: str, e: BaseException, where: str) -> str:
  """'sweep file F raised T at line N in get_sweep(): message: fix the file'."""
  if isinstance(e, SyntaxError):  # its line is the file's, not a frame's
    return f'sweep file {file} has a {type(e).__name__} at line {e.lineno}: {e.msg}: fix the file'
  message = (str(e).strip().splitlines() or [''])[0]
  here = os.path.realpath(file)
  frames = [f for f in traceback.extract_tb(e.__traceback__)
            if os.path.realpath(f.filename) == here]
  at = f' at line {frames[-1].lineno}' if frames else ''  # the file's last line on the way to it
  return (f'sweep file {file} raised {type(e).__name__}{at} {where}' +
          (f': {message}' if message else '') + ': fix the file')


def _takes_an_argument(function: Callable) -> bool:
  try:
    inspect.signature(function).bind('arg')
  except TypeError:
    return False
  except ValueError:  # no signature to read: the call will say
    pass
  return True


def _raised_by_variant(e: BaseException) -> bool:
  """Whether `e` is `variant`'s refusal of a variant the file lacks (one line, with its fix)."""
  tb = e.__traceback__
  while tb is not None and tb.tb_next is not None:
    tb = tb.tb_next
  return isinstance(e, ValueError) and tb is not None and tb.tb_frame.f_code is variant.__code__


def _check_trials(file: str, trials: Any) -> None:
  """get_sweep()'s result is a non-empty list of flat {field: value} dicts, keys dotted names."""
  fix = f'return a non-empty list of {{field: value}} override dicts, {_EXAMPLE}'
  if not isinstance(trials, (list, tuple)):
    got = 'None' if trials is None else f'{_a(type(trials).__name__)} ({_short(trials)})'
    raise ConfigError(f'sweep file {file}: get_sweep() returned {got}: {fix}')
  if not trials:
    raise ConfigError(f'sweep file {file}: get_sweep() returned an empty '
                      f'{type(trials).__name__}, no trials: {fix}')
  for i, trial in enumerate(trials, 1):
    where = f'sweep file {file}: trial {i} of {len(trials)}'
    if not isinstance(trial, dict):
      raise ConfigError(f'{where} is {_a(type(trial).__name__)} ({_short(trial)}), not a dict: '
                        f'{fix}')
    for key, value in trial.items():
      if not isinstance(key, str) or not key:
        raise ConfigError(f'{where} has the key {key!r}, not a field name: name fields as dotted '
                          "strings, e.g. 'model.width'")
      if isinstance(value, (dict, ml_collections.ConfigDict)):
        inner = next(iter(value), 'width')
        raise ConfigError(f'{where} sets {key!r} to a dict ({_short(value)}): override one field '
                          f"per key, with a dotted name: {{'{key}.{inner}': ...}}")


def _a(noun: str) -> str:
  return f'{"an" if noun[:1].lower() in "aeiou" else "a"} {noun}'


def _short(value: Any, limit: int = 60) -> str:
  text = repr(value)
  return text if len(text) <= limit else text[:limit - 3] + '...'


def trial_name(overrides: Overrides) -> str:
  """A directory name from the overrides, e.g. 'model.name=gpt,model.width=64'."""
  name = ','.join(f'{k}={v}' for k, v in overrides.items()) or 'base'
  return re.sub(r'[^A-Za-z0-9._=,+-]', '_', name)


def apply(config: ml_collections.ConfigDict, overrides: Overrides) -> ml_collections.ConfigDict:
  """A copy of `config` with dotted-path overrides applied; unknown fields are an error naming the
  field."""
  config = ml_collections.ConfigDict(config.to_dict())
  for key, value in overrides.items():
    *parents, leaf = key.split('.')
    node = config
    for p in parents:
      if p not in node:
        raise KeyError(f'sweep override {key!r}: config has no field {p!r}')
      node = node[p]
    if leaf not in node:
      raise KeyError(f'sweep override {key!r}: config has no field {key!r}')
    node[leaf] = value
  return config


# --- running trials -------------------------------------------------------------------------------

@dataclasses.dataclass
class Trial:
  name: str
  overrides: Overrides
  config: ml_collections.ConfigDict
  workdir: str
  status: str = 'pending'   # pending | skipped (finished before) | done | failed | preempted
  error: str = ''


def make_trials(config: ml_collections.ConfigDict, overrides: Sequence[Overrides],
                workdir: str) -> list[Trial]:
  return [Trial(trial_name(o), dict(o), apply(config, o), os.path.join(workdir, trial_name(o)))
          for o in overrides]


def run_in_process(trials: Sequence[Trial],
                   train: Callable[[ml_collections.ConfigDict, str], dict]) -> list[Trial]:
  """Runs the unfinished trials one after another with `train(config, run_dir) -> summary`.

  An exception fails that trial only (failed.json); a preempted run (summary status 'preempted')
  stops the sweep, since the user asked to stop. KeyboardInterrupt outside the loop's own handling
  propagates.
  """
  # config files import this module for `variant`: it stays light
  from seqmodels.train import workdir
  for t in trials:
    if workdir.is_finished(t.workdir):
      t.status = 'skipped'
      logging.info('%s is finished (summary.json exists): skipped', t.workdir)
      continue
    holder = lock.holder(t.workdir)
    if holder is not None:  # another process writes it: leave its directory as it is
      t.status, t.error = 'failed', f'{t.workdir} is in use by {lock.describe(holder)}'
      logging.error('trial %s not run: %s', t.name, t.error)
      continue
    workdir.clear_failure(t.workdir)
    logging.info('trial %s: model %s on %s -> %s', t.name, t.config.model.name, t.config.data.name,
                 t.workdir)
    try:
      summary = train(t.config, t.workdir)
    except errors.WorkdirBusyError as e:
      # taken between the check and the run: nothing of its to record
      t.status, t.error = 'failed', str(e)
      logging.error('trial %s not run: %s', t.name, t.error)
      continue
    except Exception as e:
      # one trial's crash must not stop the sweep
      t.status, t.error = 'failed', workdir.record_failure(t.workdir, e, traceback.format_exc())
      logging.error('trial %s failed: %s (see %s/failed.json)', t.name, t.error, t.workdir)
      continue
    t.status = summary.get('status', 'done')
    if t.status == 'preempted':
      break
  return trials


def failed_line(trials: Sequence[Trial]) -> str:
  """The launcher's last line for a sweep with failed trials: where their errors are and how to
  retry them. The same command retries them as they were, from their checkpoints (a passing fault);
  a fix that changes the config is refused for every trial whose directory holds a checkpoint or a
  summary (workdir.check_resumable), failed or finished, until those directories are deleted."""
  from seqmodels.train import checkpoint  # imported here: config files import this module
  failed = [t.name for t in trials if t.status == 'failed']
  held = [t.name for t in trials if os.path.exists(os.path.join(t.workdir, 'summary.json')) or
          checkpoint.saved_steps(t.workdir) or checkpoint.saved_steps(t.workdir, 'best')]
  line = (f'{len(failed)} of {len(trials)} trials failed ({", ".join(failed)}): their errors are '
          'in <trial dir>/failed.json; rerun the same command to retry them as they were')
  if set(failed) & set(held):
    line += ', from their last checkpoints'
  if not held:
    return line + ', or with the config changed to fix them'
  return line + ('; to fix them with a changed config, first delete the trial directories that '
                 f'hold a checkpoint or a summary ({", ".join(held)}), which resume only with the '
                 'config they began with, or use a new --workdir')


# --- separate processes ---------------------------------------------------------------------------

def flag_value(v: Any) -> str:
  """A config value as config_flags parses it back: strings bare, everything else as its Python
  literal."""
  return v if isinstance(v, str) else repr(v)


def trial_command(config_file: str, overrides: Overrides, run_dir: str, launcher: str) -> list[str]:
  """`python launch.py --config=FILE[:arg] --config.k=v ... --workdir=DIR` for one trial."""
  return [sys.executable, launcher, f'--config={config_file}',
          *(f'--config.{k}={flag_value(v)}' for k, v in overrides.items()), f'--workdir={run_dir}']


def gpu_ids(environ: dict[str, str]) -> list[str]:
  """The GPU ids this process may use: CUDA_VISIBLE_DEVICES if set, else `nvidia-smi -L`; [] on a
  CPU host."""
  if environ.get('CUDA_VISIBLE_DEVICES', '').strip():
    return [d.strip() for d in environ['CUDA_VISIBLE_DEVICES'].split(',') if d.strip()]
  try:
    out = subprocess.run(['nvidia-smi', '-L'], capture_output=True, text=True, timeout=20).stdout
  except (OSError, subprocess.SubprocessError):
    return []
  return [str(i) for i, line in enumerate(l for l in out.splitlines() if l.startswith('GPU '))]


def device_shares(n: int, gpus: Sequence[str]) -> list[dict[str, str]]:
  """Environment additions for each of n parallel slots: disjoint CUDA_VISIBLE_DEVICES shares on a
  GPU host.

  On a CPU host every process just uses the CPU (no additions). With G GPUs, n must divide G: slot i
  gets GPUs [i*G/n, (i+1)*G/n). Otherwise ValueError naming the fix.
  """
  if not gpus:
    return [{} for _ in range(n)]
  if len(gpus) % n:
    divisors = [d for d in range(1, len(gpus) + 1) if len(gpus) % d == 0]
    raise ValueError(f'--parallel={n} does not split the {len(gpus)} GPUs evenly: choose '
                     f'--parallel from {divisors} (or set CUDA_VISIBLE_DEVICES to the GPUs to use)')
  k = len(gpus) // n
  return [{'CUDA_VISIBLE_DEVICES': ','.join(gpus[i * k:(i + 1) * k])} for i in range(n)]


def _log_error_line(log_path: str) -> tuple[str, str]:
  """(the last 'error: ...' line or else the last line, the log's tail) of a trial's log.txt."""
  try:
    with open(log_path, errors='replace') as f:
      lines = [l.rstrip() for l in f.readlines() if l.strip()]
  except OSError:
    return 'no log', ''
  errors = [l for l in lines if l.startswith('error:') or 'Error' in l.split(':')[0]]
  return (errors or lines or ['empty log'])[-1], '\n'.join(lines[-40:])


def process_ended(t: Trial, code: int, stopping: bool = False) -> None:
  """A trial's `launch.py` process ended with exit `code`: its status is done, preempted (stopped
  with a checkpoint; also killed by the SIGTERM / Ctrl-C this launcher passed on, `stopping`) or
  failed, with failed.json holding its log's error line. The SLURM launcher's jobs end here too."""
  stopped = code == PREEMPTED_EXIT_CODE or code in (-signal.SIGTERM, -signal.SIGINT)
  # workdir.is_finished, without importing what workdir.py does (JAX): a SLURM job's process
  # imports it only to record a failure
  if os.path.exists(os.path.join(t.workdir, 'summary.json')) and (code == 0 or stopped):
    t.status = 'done'  # a stop that came after its summary was written: finished all the same
  elif code == PREEMPTED_EXIT_CODE or (stopping and stopped):
    t.status = 'preempted'
  else:
    from seqmodels.train import workdir  # config files import this module for `variant`
    t.error, detail = _log_error_line(os.path.join(t.workdir, 'log.txt'))
    t.status = 'failed'
    workdir.record_failure(t.workdir, t.error, detail)
    logging.error('trial %s failed (exit %d): %s (see %s/log.txt)', t.name, code, t.error,
                  t.workdir)


def _terminated_with_parent() -> None:
  """In a trial's process, before it starts: SIGTERM when the launcher dies, even by kill -9
  (Linux's PR_SET_PDEATHSIG), so the trial checkpoints and stops instead of running on beside a
  rerun's."""
  if sys.platform.startswith('linux'):
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG


def run_parallel(trials: Sequence[Trial], n: int, command: Callable[[Trial], list[str]],
                 env: dict[str, str] | None = None, poll_s: float = 0.5) -> list[Trial]:
  """Runs the unfinished trials as subprocesses, n at a time, each with its own device share and
  log.txt.

  A non-zero exit fails that trial (failed.json with the log's error line); exit 143 (preempted)
  marks it preempted. SIGTERM / Ctrl-C to this process is passed on to the running trials, which
  checkpoint and stop; no new trial starts after it.
  """
  # config files import this module for `variant`: it stays light
  from seqmodels.train import workdir
  env = dict(os.environ if env is None else env)
  shares = device_shares(n, gpu_ids(env))
  free = list(range(n))
  queue = []
  for t in trials:
    if workdir.is_finished(t.workdir):
      t.status = 'skipped'
    else:
      queue.append(t)
  running: dict[int, tuple[Trial, subprocess.Popen, Any]] = {}
  stopping = waiting = False

  def stop(signum, frame):
    nonlocal stopping
    stopping = True
    for _, p, _ in running.values():
      if p.poll() is None:
        p.send_signal(signal.SIGTERM)

  previous = {}
  for sig in (signal.SIGTERM, signal.SIGINT):
    try:
      previous[sig] = signal.signal(sig, stop)
    except ValueError:  # not the main thread
      pass
  try:
    while queue or running:
      while queue and free and not stopping:
        # A trial still held by a process of an earlier launch (its launcher was killed, and the
        # trial is checkpointing on the SIGTERM its death sent): waited for, never run beside.
        t = next((t for t in queue if lock.holder(t.workdir) is None), None)
        if t is None:
          if not waiting:
            waiting = True
            logging.warning('waiting for the processes of an earlier launch that still hold %s',
                            ', '.join(t.workdir for t in queue))
          break
        queue.remove(t)
        slot = free.pop(0)
        os.makedirs(t.workdir, exist_ok=True)
        workdir.clear_failure(t.workdir)
        log = open(os.path.join(t.workdir, 'log.txt'), 'a')
        logging.info('trial %s (slot %d%s) -> %s', t.name, slot,
                     f', CUDA_VISIBLE_DEVICES={shares[slot]["CUDA_VISIBLE_DEVICES"]}'
                     if shares[slot] else '',
                     t.workdir)
        # Its own session: our handler, not the terminal, forwards Ctrl-C. It dies with this
        # launcher.
        p = subprocess.Popen(command(t), env={**env, **shares[slot]}, stdout=log,
                             stderr=subprocess.STDOUT, start_new_session=True,
                             preexec_fn=_terminated_with_parent)
        running[slot] = (t, p, log)
      if stopping:
        queue.clear()
      for slot, (t, p, log) in list(running.items()):
        code = p.poll()
        if code is None:
          continue
        log.close()
        del running[slot]
        free.append(slot)
        process_ended(t, code, stopping)
      time.sleep(poll_s if running or queue else 0)
  finally:
    for sig, handler in previous.items():
      signal.signal(sig, handler)
  return list(trials)
