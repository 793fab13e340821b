"""A sweep on a SLURM cluster (`launch.py --launcher=slurm`): each unfinished trial a job submitted
through submitit, under the local sweep's contract.

  * A trial's job runs the trial's `python launch.py ... --workdir=<trial dir>` as its child,
    writing <trial dir>/log.txt, as `--parallel` does; submitit's files (the sbatch script, the
    job's own log) go to <trial dir>/slurm/, and the ids of the jobs submitted for the trial to
    <trial dir>/slurm/jobs.json. Resources come from `config.slurm`, which a sweep may set per
    trial.
  * With config.slurm.nodes > 1 the job starts one process per node (srun), and each joins the run
    through jax.distributed's SLURM detection (config.distributed.auto).
  * Rerunning submits only the trials that have no job queued or running (squeue): a finished trial
    (summary.json) is skipped, a stopped one resumes from its checkpoints, a failed one
    (failed.json) is retried.
  * Before its time limit SLURM sends the job SIGUSR2 (sbatch --signal, submitit's): the job passes
    SIGTERM to launch.py, which saves a checkpoint and stops (the local path), and submitit requeues
    the job, which resumes the trial. A SIGTERM that reaches launch.py while the job goes on
    (`scancel --signal=TERM`, a preemption's notice) takes the same path; one that ends the job
    (scancel, the time limit itself) leaves the checkpoint for a rerun.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import shutil
import signal
import subprocess
import time
from typing import Any, Callable, Sequence

import submitit

from seqmodels import errors, sweep
from seqmodels.errors import ConfigError, SchedulerError
from seqmodels.train import lock

JOBS_FILE = 'jobs.json'
# squeue states of a job that still holds or awaits its trial (COMPLETING: its processes may still
# be saving a checkpoint)
ACTIVE = frozenset({'PENDING', 'CONFIGURING', 'RUNNING', 'COMPLETING', 'SUSPENDED', 'REQUEUED',
                    'REQUEUE_HOLD', 'REQUEUE_FED', 'RESIZING', 'SIGNALING', 'STAGE_OUT',
                    'RESV_DEL_HOLD', 'STOPPED'})
# config.slurm's fields as sbatch options; config.slurm.sbatch may not set them again
_OPTIONS = {'partition': 'partition', 'account': 'account', 'nodes': 'nodes',
            'gpus_per_node': 'gpus-per-node', 'cpus_per_task': 'cpus-per-task', 'mem_gb': 'mem',
            'time_min': 'time'}
_OWNED = {*_OPTIONS.values(), 'signal', 'output', 'error', 'open-mode', 'ntasks-per-node',
          'ntasks', 'job-name', 'wrap', 'array'}
_COMMANDS = ('sbatch', 'squeue', 'srun', 'scontrol', 'sinfo')
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def slurm_dir(trial_dir: str) -> str:
  return os.path.join(trial_dir, 'slurm')


# --- before anything is submitted -----------------------------------------------------------------

def check(trials: Sequence[sweep.Trial]) -> None:
  """Refuses, in one line each, what would fail only once submitted: a config.slurm field out of
  range, no SLURM on this host, a partition or account the cluster refuses, more GPUs per node than
  its nodes have."""
  for t in trials:
    check_config(t.config.slurm)
  missing = [c for c in _COMMANDS if shutil.which(c) is None]
  errors.check(not missing, f'--launcher=slurm submits jobs with SLURM\'s {", ".join(missing)}, '
               'and this host has none on its PATH: run the sweep from a login node of the '
               'cluster, or without --launcher=slurm to run it here')
  asked = {}
  for t in trials:  # one query per distinct set of resources
    asked.setdefault(tuple(sbatch_flags(t.config.slurm)), t.config.slurm)
  partitions = _partitions()
  for cfg in asked.values():
    _check_cluster(cfg, partitions)


def check_config(cfg) -> None:
  """config.slurm's fields, each in its range."""
  def whole(field: str, low: int) -> None:
    value = cfg[field]
    errors.check(isinstance(value, int) and not isinstance(value, bool) and value >= low,
                 f'config.slurm.{field}={value!r}: give a whole number >= {low}')
  whole('nodes', 1)
  for field in ('gpus_per_node', 'cpus_per_task', 'max_requeues', 'signal_delay_s'):
    whole(field, 0)
  whole('time_min', 1)
  errors.check(isinstance(cfg.mem_gb, (int, float)) and cfg.mem_gb >= 0,
               f'config.slurm.mem_gb={cfg.mem_gb!r}: give the memory per node in GB, or 0 for the '
               "partition's default")
  errors.check(cfg.signal_delay_s < 60 * cfg.time_min,
               f'config.slurm.signal_delay_s={cfg.signal_delay_s} is not within the time limit '
               f'(config.slurm.time_min={cfg.time_min} minutes): SLURM signals a job this long '
               'before its limit, to save a checkpoint: give fewer seconds, or more minutes')
  errors.check(isinstance(cfg.poll_s, (int, float)) and cfg.poll_s > 0,
               f'config.slurm.poll_s={cfg.poll_s!r}: give the seconds between two queries of the '
               'queue (> 0)')
  extra_options(cfg.sbatch)


def extra_options(text: str) -> dict[str, Any]:
  """config.slurm.sbatch, '--qos=high --exclusive', as {'qos': 'high', 'exclusive': True}."""
  try:
    words = shlex.split(text)
  except ValueError as e:
    raise ConfigError(f'config.slurm.sbatch={text!r} cannot be read ({e}): give sbatch options '
                      "as '--name=value --flag'") from e
  options = {}
  for word in words:
    name, eq, value = word[2:].partition('=')
    errors.check(word.startswith('--') and name,
                 f'config.slurm.sbatch={text!r}: {word!r} is not an option: give long options '
                 "as '--name=value' or '--flag', e.g. '--qos=high --exclusive'")
    field = next((f for f, o in _OPTIONS.items() if o == name), None)
    errors.check(name not in _OWNED,
                 f'config.slurm.sbatch={text!r} sets --{name}, which ' +
                 (f'config.slurm.{field} sets: set that field instead' if field else
                  'the launcher sets itself: leave it out'))
    options[name] = value if eq else True
  return options


def parameters(cfg, name: str) -> dict[str, Any]:
  """submitit's SlurmExecutor parameters for a trial's job."""
  params = {'job_name': name, 'time': cfg.time_min, 'nodes': cfg.nodes, 'ntasks_per_node': 1,
            'signal_delay_s': cfg.signal_delay_s,
            # the seqmodels of this launcher, wherever the job starts (the submitting directory)
            'setup': [f'export PYTHONPATH={shlex.quote(_REPO)}${{PYTHONPATH:+:$PYTHONPATH}}'],
            # --requeue: a preempted job, or one on a failed node, goes back to the queue
            'additional_parameters': {'requeue': True, **extra_options(cfg.sbatch)}}
  for field in ('partition', 'account', 'gpus_per_node', 'cpus_per_task'):
    if cfg[field]:
      params[field] = cfg[field]
  if cfg.mem_gb:
    params['mem'] = f'{int(cfg.mem_gb * 1024)}M'
  return params


def sbatch_flags(cfg) -> list[str]:
  """The sbatch options of a trial's job (those submitit writes into its script), for `sbatch
  --test-only`."""
  params = parameters(cfg, 'check')
  flags = [f'--{k.replace("_", "-")}={params[k]}'
           for k in ('partition', 'account', 'time', 'nodes', 'ntasks_per_node', 'gpus_per_node',
                     'cpus_per_task', 'mem') if k in params]
  flags.append(f'--signal={submitit.JobEnvironment.USR_SIG}@{params["signal_delay_s"]}')
  return flags + [f'--{k}' if v is True else f'--{k}={v}'
                  for k, v in params['additional_parameters'].items()]


def _run(command: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
  try:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)
  except subprocess.TimeoutExpired as e:
    raise SchedulerError(f'{shlex.join(command)} gave no answer in {timeout:.0f} s: is the '
                         'cluster reachable (sinfo)? Rerun once it is') from e


def _said(r: subprocess.CompletedProcess) -> str:
  """What a SLURM command said on failure, in one line, without its 'sbatch: error:' prefixes."""
  lines = [line.split('error:', 1)[-1].strip() for line in (r.stderr + r.stdout).splitlines()
           if line.strip()]
  return '; '.join(dict.fromkeys(lines)) or f'exit {r.returncode}'


def _partitions() -> dict[str, bool]:
  """{partition: whether it is the default} (sinfo)."""
  r = _run(['sinfo', '--noheader', '--format=%P'])
  if r.returncode:
    raise SchedulerError(f'sinfo failed ({_said(r)}): is SLURM running here? Rerun once it is')
  names = [line.strip() for line in r.stdout.splitlines() if line.strip()]
  return {n.rstrip('*'): n.endswith('*') for n in names}


def _check_cluster(cfg, partitions: dict[str, bool]) -> None:
  """The cluster's answer for one set of resources: the partition, its nodes' GPUs, then sbatch
  --test-only for everything else (the account, limits, the extra options)."""
  choices = ', '.join(partitions) or 'none'
  errors.check(not cfg.partition or cfg.partition in partitions,
               f'config.slurm.partition={cfg.partition!r} is not a partition of this cluster: '
               f'choose one of {choices} (sinfo)')
  partition = cfg.partition or next((p for p, default in partitions.items() if default), '')
  where = [f'--partition={partition}'] if partition else []
  if cfg.nodes > 1:
    r = _run(['sinfo', '--noheader', '--format=%D', *where])
    nodes = sum(int(n) for n in r.stdout.split() if n.isdigit())
    errors.check(cfg.nodes <= nodes,
                 f'config.slurm.nodes={cfg.nodes}, and partition {partition or "(default)"} has '
                 f'{nodes} node{"s" * (nodes != 1)} (sinfo --format=%D): ask for at most that, or '
                 'a larger partition (config.slurm.partition)')
  if cfg.gpus_per_node:
    r = _run(['sinfo', '--noheader', '--format=%G', *where])
    most = max((_gpus(line) for line in r.stdout.splitlines()), default=0)
    errors.check(cfg.gpus_per_node <= most,
                 f'config.slurm.gpus_per_node={cfg.gpus_per_node}, and the nodes of partition '
                 f'{partition or "(default)"} have at most {most} GPUs (sinfo --format=%G): ask '
                 'for at most that, or a partition whose nodes have more (config.slurm.partition)')
  r = _run(['sbatch', '--test-only', *sbatch_flags(cfg), '--wrap=true'])
  if r.returncode == 0:
    return
  said = _said(r)
  if cfg.account and 'account' in said.lower():
    raise ConfigError(f'config.slurm.account={cfg.account!r} is refused by the cluster ({said}): '
                      'use an account of yours (sacctmgr show associations user=$USER '
                      'format=account,partition)')
  raise ConfigError(f'the cluster refuses the trials\' jobs ({said}; sbatch --test-only '
                    f'{" ".join(sbatch_flags(cfg))}): change config.slurm')


def _gpus(gres: str) -> int:
  """The GPUs of one sinfo %G entry: 'gpu:a100:4(S:0-1),gpu:2' -> 6; '(null)' -> 0."""
  total = 0
  for item in gres.strip().split(','):
    parts = item.split('(')[0].split(':')
    if parts[0] == 'gpu' and parts[-1].isdigit():
      total += int(parts[-1])
  return total


# --- jobs and their states ------------------------------------------------------------------------

def recorded_jobs(trial_dir: str) -> list[str]:
  """The ids of the jobs submitted for a trial, oldest first."""
  try:
    with open(os.path.join(slurm_dir(trial_dir), JOBS_FILE)) as f:
      return [str(j['id']) for j in json.load(f)['jobs']]
  except (OSError, ValueError, KeyError, TypeError):
    return []


def _record_job(trial_dir: str, job_id: str, flags: list[str]) -> None:
  from seqmodels.train import workdir  # config files import sweep, which stays light
  path = os.path.join(slurm_dir(trial_dir), JOBS_FILE)
  try:
    with open(path) as f:
      jobs = json.load(f)['jobs']
  except (OSError, ValueError, KeyError):
    jobs = []
  jobs.append({'id': job_id, 'submitted': time.time(), 'sbatch': flags})
  workdir.write_json(path, {'jobs': jobs})


def queue_states(job_ids: Sequence[str]) -> dict[str, str]:
  """{job id: state} of the jobs squeue still knows (queued, running, or recently ended)."""
  ids = sorted(set(job_ids))
  if not ids:
    return {}
  r = _run(['squeue', '--noheader', '--states=all', f'--jobs={",".join(ids)}', '--format=%i|%T'])
  if r.returncode and 'Invalid job id' not in r.stderr:  # every id unknown: none queued
    raise SchedulerError(f'squeue failed ({_said(r)}): is the cluster reachable (sinfo)? Rerun '
                         'once it is')
  states = {}
  for line in r.stdout.splitlines():
    job, _, state = line.strip().partition('|')
    if job:
      states[job] = state.split()[0] if state else 'UNKNOWN'
  return states


def end_state(trial_dir: str, job_id: str, known: dict[str, str]) -> str:
  """How a job that left the queue ended: squeue's record while it keeps one, else sacct's
  (through submitit), else UNKNOWN (a cluster without accounting)."""
  if job_id in known:
    return known[job_id]
  job = submitit.SlurmJob(folder=slurm_dir(trial_dir), job_id=job_id)
  return job.watcher.get_state(job_id, mode='force')


# --- a trial's job --------------------------------------------------------------------------------

class TrialFailed(RuntimeError):
  """launch.py failed: the job ends FAILED, with the trial's error (also in its failed.json)."""


class TrialJob(submitit.helpers.Checkpointable):
  """What a trial's job runs on each of its nodes: the trial's launch.py command as a child writing
  log.txt (log.<rank>.txt on the other nodes).

  SIGUSR2, SLURM's signal before the time limit, reaches submitit's handler in this process, which
  calls `checkpoint`: SIGTERM to launch.py, which saves a checkpoint and stops, then the job is
  requeued. launch.py ignores SIGUSR2 itself (SLURM signals every process of the job), and takes
  SLURM's SIGTERM directly: this process does not pass it on (a second one would stop it at once).
  """

  def __init__(self, name: str, workdir: str, command: list[str]):
    self.name, self.workdir, self.command = name, workdir, list(command)
    self._process: subprocess.Popen | None = None

  def __getstate__(self) -> dict[str, Any]:
    return {'name': self.name, 'workdir': self.workdir, 'command': self.command}

  def __setstate__(self, state: dict[str, Any]) -> None:
    self.__dict__.update(state, _process=None)

  def __call__(self) -> str:
    rank = int(os.environ.get('SLURM_PROCID', '0'))
    log = os.path.join(self.workdir, 'log.txt' if rank == 0 else f'log.{rank}.txt')
    os.makedirs(self.workdir, exist_ok=True)
    with open(log, 'a') as out:
      self._process = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT,
                                       preexec_fn=_ignore_requeue_signal)
      code = self._process.wait()
    if rank:  # process 0 records the trial's outcome, as in a multi-process run
      return f'exit {code}'
    trial = sweep.Trial(self.name, {}, None, self.workdir)
    sweep.process_ended(trial, code, stopping=True)  # a SIGTERM here is SLURM's: a stop asked for
    if trial.status == 'failed':
      raise TrialFailed(trial.error)
    if trial.status == 'preempted' and _own_state() == 'RUNNING':
      # SIGTERM reached launch.py and the job goes on (`scancel --signal=TERM`, a preemption's
      # notice): requeued as before the time limit, by submitit's handler of that signal
      logging.warning('launch.py stopped with a checkpoint while the job goes on: requeued')
      os.kill(os.getpid(), getattr(signal, 'SIG' + submitit.JobEnvironment.USR_SIG))
    return trial.status

  def checkpoint(self) -> submitit.helpers.DelayedSubmission:
    """submitit's handler of SLURM's signal before the time limit: stop launch.py with a checkpoint
    (its SIGTERM path), and resubmit this trial, which resumes from it."""
    process = self._process
    if process is not None and process.poll() is None:
      logging.warning("the job's time is nearly up: launch.py saves a checkpoint and stops, and "
                      'the job is requeued')
      process.send_signal(signal.SIGTERM)
      # not process.wait(): the wait this signal interrupted in __call__ holds its lock
      with contextlib.suppress(ChildProcessError):
        os.waitpid(process.pid, 0)
    return submitit.helpers.DelayedSubmission(TrialJob(self.name, self.workdir, self.command))


def _ignore_requeue_signal() -> None:
  """In launch.py's process, before it starts: SLURM's signal before the time limit is for the job's
  own process (an ignored signal stays ignored across exec)."""
  signal.signal(getattr(signal, 'SIG' + submitit.JobEnvironment.USR_SIG), signal.SIG_IGN)


def _own_state() -> str:
  """This job's state, from inside it: RUNNING unless SLURM ends it (CANCELLED, TIMEOUT, ...)."""
  job_id = os.environ.get('SLURM_JOB_ID', '')
  r = _run(['squeue', '--noheader', f'--jobs={job_id}', '--format=%T']) if job_id else None
  return r.stdout.strip() if r is not None and r.returncode == 0 else 'UNKNOWN'


# --- the launcher ---------------------------------------------------------------------------------

def submit(t: sweep.Trial, command: list[str]) -> str:
  """Submits one trial's job; returns its id, recorded in <trial dir>/slurm/jobs.json."""
  cfg = t.config.slurm
  if cfg.nodes > 1:  # one process per node, peers found from SLURM's environment
    command = [*command, '--config.distributed.auto=True']
  executor = submitit.SlurmExecutor(folder=slurm_dir(t.workdir), max_num_timeout=cfg.max_requeues)
  executor.update_parameters(**parameters(cfg, t.name))
  try:
    job = executor.submit(TrialJob(t.name, t.workdir, command))
  except (submitit.core.utils.FailedJobError, OSError) as e:
    raise SchedulerError(f'sbatch refused trial {t.name} ({str(e).strip().splitlines()[-1]}): '
                         'the trials submitted before it are in their jobs.json; fix it and rerun, '
                         'which submits none twice') from e
  _record_job(t.workdir, job.job_id, sbatch_flags(cfg))
  return job.job_id


def submit_unfinished(trials: Sequence[sweep.Trial], command: Callable[[sweep.Trial], list[str]],
                      say: Callable[[str], None] = print) -> list[sweep.Trial]:
  """Submits each unfinished trial that has no job queued or running. A trial's status: skipped
  (finished before), queued (its job queued or running, just submitted or before), or failed (its
  directory held by another process)."""
  from seqmodels.train import workdir  # config files import sweep, which stays light
  last = {t.name: (recorded_jobs(t.workdir) or [''])[-1] for t in trials}
  states = queue_states([j for j in last.values() if j])
  for t in trials:
    job = last[t.name]
    if workdir.is_finished(t.workdir):
      t.status = 'skipped'
      continue
    if states.get(job) in ACTIVE:
      t.status = 'queued'
      say(f'trial {t.name}: SLURM job {job} {states[job]}, not submitted again')
      continue
    holder = lock.holder(t.workdir)
    if holder is not None:  # another process writes it: leave it as it is
      t.status, t.error = 'failed', f'{t.workdir} is in use by {lock.describe(holder)}'
      say(f'trial {t.name} not submitted: {t.error}')
      continue
    os.makedirs(t.workdir, exist_ok=True)
    workdir.clear_failure(t.workdir)
    job = submit(t, command(t))
    t.status = 'queued'
    say(f'trial {t.name}: submitted as SLURM job {job} (its log: {t.workdir}/log.txt)')
  return list(trials)


def wait(trials: Sequence[sweep.Trial], say: Callable[[str], None] = print) -> list[sweep.Trial]:
  """Waits for the jobs of the queued trials, saying each change of state; then each is done,
  failed (failed.json) or preempted (its job ended before the trial did: a rerun resumes it; t.error
  says how the job ended). Ctrl-C stops the waiting, not the jobs."""
  queued = [t for t in trials if t.status == 'queued']
  jobs = {t.name: (recorded_jobs(t.workdir) or [''])[-1] for t in queued}
  said: dict[str, str] = {}
  try:
    while queued:
      states = queue_states(list(jobs.values()))
      for t in list(queued):
        job = jobs[t.name]
        state = states.get(job, 'GONE')
        if state in ACTIVE:
          if state != said.get(t.name):
            say(f'trial {t.name}: SLURM job {job} {state}')
            said[t.name] = state
          continue
        queued.remove(t)
        _ended(t, job, end_state(t.workdir, job, states))
        say(f'trial {t.name}: {t.status}' + (f' ({t.error})' if t.error else ''))
      if queued:
        time.sleep(min(t.config.slurm.poll_s for t in queued))
  except KeyboardInterrupt:
    say('stopped waiting: the jobs go on; rerun the command to see their state')
  return list(trials)


def _ended(t: sweep.Trial, job_id: str, state: str) -> None:
  """The status of a trial whose job left the queue, from what its directory holds."""
  from seqmodels.train import workdir
  failed = os.path.join(t.workdir, 'failed.json')
  if workdir.is_finished(t.workdir):
    t.status = 'done'
  elif os.path.exists(failed):
    try:
      with open(failed) as f:
        t.status, t.error = 'failed', str(json.load(f).get('error', ''))
    except (OSError, ValueError, AttributeError):
      t.status, t.error = 'failed', f'see {failed}'
  else:  # cancelled, timed out, requeued too often, killed: its checkpoints stay for a rerun
    t.status = 'preempted'
    t.error = (f'SLURM job {job_id} ended {state}: see {slurm_dir(t.workdir)}/{job_id}_0_log.err')


def queued_line(trials: Sequence[sweep.Trial], rerun: str) -> str:
  """The launcher's last line while jobs are queued or running."""
  queued = [t for t in trials if t.status == 'queued']
  jobs = ', '.join((recorded_jobs(t.workdir) or ['?'])[-1] for t in queued)
  return (f'{len(queued)} of {len(trials)} trials are queued or running as SLURM jobs ({jobs}): '
          f'`{rerun}` reports their progress (it submits no trial twice) and writes comparison.md '
          'once all are done; add --wait to wait for them')
