"""A sweep on a real one-node SLURM cluster (Debian's slurm-wlm and munge, started here once per
test session): every trial finishes, a rerun submits nothing twice, a cancelled trial resumes with
the parameters of an uninterrupted one, a job signalled before its time limit is requeued."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from seqmodels import errors, slurm, sweep
from seqmodels.train import checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DAEMONS = ('munged', 'slurmctld', 'slurmd', 'sbatch')
STEPS = 800
FLAGS = ['--config=experiments/configs/copy.py', '--config.model.width=16',
         '--config.model.layers=1', '--config.data.max_len=6', '--config.data.num_symbols=4',
         '--config.data.num_train=256', '--config.data.num_validation=32',
         f'--config.train.num_steps={STEPS}', '--config.train.batch_size=8',
         f'--config.train.eval_every={STEPS}', f'--config.train.checkpoint_every={STEPS}',
         '--config.slurm.poll_s=0.2']
# Two trials that train alike (how often they log changes no parameter): one is cancelled, one left
# alone.
CANCELLED, LEFT_ALONE = 'train.log_every=10', 'train.log_every=25'
SWEEP = ('from seqmodels import sweep\n'
         'def get_sweep():\n'
         '  return sweep.sweep("train.log_every", [10, 25])\n')
# the trials' processes (sbatch passes the launcher's environment on): one CPU device each
TRIAL_ENV = {'JAX_PLATFORMS': 'cpu', 'XLA_FLAGS': '--xla_force_host_platform_device_count=1 '
                                                  '--xla_backend_optimization_level=0'}


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _conf(d, ctld_port: int, slurmd_port: int) -> str:
  """A one-node cluster on localhost: 4 CPUs (a trial takes one), no accounting; `restricted`
  takes only the account 'lab', refused at submission (EnforcePartLimits). A requeued job may start
  again after cred_expire, 5 s here (120 s by default)."""
  return f"""ClusterName=seqmodels-test
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={d}/munge.socket,cred_expire=5
SlurmUser=root
SlurmdUser=root
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=1,sched_min_interval=100000
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
EnforcePartLimits=ALL
KillWait=5
InactiveLimit=0
NodeName=localhost NodeAddr=127.0.0.1 CPUs=4 RealMemory=2000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
PartitionName=restricted Nodes=localhost AllowAccounts=lab MaxTime=INFINITE State=UP
"""


def _until(what: str, ok, timeout: float = 60, pause: float = 0.1):
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    value = ok()
    if value:
      return value
    time.sleep(pause)
  raise AssertionError(f'waited {timeout:.0f} s for {what}')


@pytest.fixture(scope='session')
def cluster(tmp_path_factory):
  """munged, slurmctld and slurmd on this machine, on free ports, until the session ends;
  SLURM_CONF points the SLURM commands (and the launcher) at it."""
  missing = [d for d in DAEMONS if shutil.which(d) is None and
             not os.path.exists(f'/usr/sbin/{d}')]
  if missing:
    pytest.fail(f'no {", ".join(missing)} on this machine: .ci/run installs SLURM for these tests '
                '(apt-get install -y slurm-wlm munge)')
  d = tmp_path_factory.mktemp('slurm')
  for sub in ('state', 'spool'):
    (d / sub).mkdir()
  key = d / 'munge.key'
  key.write_bytes(os.urandom(1024))
  key.chmod(0o600)
  conf = d / 'slurm.conf'
  conf.write_text(_conf(d, _free_port(), _free_port()))
  daemon = lambda *command: subprocess.Popen(
      [shutil.which(command[0]) or f'/usr/sbin/{command[0]}', *command[1:]],
      stdout=open(d / f'{command[0]}.out', 'w'), stderr=subprocess.STDOUT)
  started = [daemon('munged', '--foreground', '--force', f'--socket={d}/munge.socket',
                    f'--key-file={key}', f'--pid-file={d}/munged.pid',
                    f'--seed-file={d}/munged.seed', f'--log-file={d}/munged.log')]
  patch = pytest.MonkeyPatch()
  try:
    _until('munged', (d / 'munge.socket').exists, 20)
    started += [daemon('slurmctld', '-D', '-i', '-f', str(conf)),
                daemon('slurmd', '-D', '-N', 'localhost', '-f', str(conf))]
    patch.setenv('SLURM_CONF', str(conf))
    idle = lambda: subprocess.run(['sinfo', '--noheader', '--format=%T'], capture_output=True,
                                  text=True).stdout.split()[:1] == ['idle']
    _until('the node to be idle (see slurmctld.log, slurmd.log in ' + str(d) + ')', idle, 60,
           0.2)
    yield d
  finally:  # the jobs first, while slurmd is there to kill what outlives KillWait
    subprocess.run(['scancel', '--partition=debug,restricted'], capture_output=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(
        line.split('|')[-1] in slurm.ACTIVE for line in _queue()):
      time.sleep(0.2)
    for p in reversed(started):
      p.terminate()
      try:
        p.wait(10)
      except subprocess.TimeoutExpired:
        p.kill()
    patch.undo()


def _queue() -> list[str]:
  r = subprocess.run(['squeue', '--noheader', '--states=all', '--format=%i|%T'],
                     capture_output=True, text=True)
  return r.stdout.split()


def _state(job: str) -> str:
  return dict(line.split('|') for line in _queue()).get(job, 'GONE')


def _trials(workdir, cfg_overrides: dict) -> list[sweep.Trial]:
  from experiments.configs import copy
  config = copy.get_config()
  for key, value in cfg_overrides.items():
    section, field = key.split('.')
    config[section][field] = value
  return sweep.make_trials(config, [{}], str(workdir))


def test_what_the_cluster_cannot_run_is_refused_in_one_line_before_submitting(cluster, tmp_path,
                                                                             monkeypatch):
  jobs_before = _queue()
  refusals = [
      ({'slurm.partition': 'gpu'}, "config.slurm.partition='gpu' is not a partition of this "
       'cluster: choose one of debug, restricted (sinfo)'),
      ({'slurm.gpus_per_node': 2}, 'config.slurm.gpus_per_node=2, and the nodes of partition debug '
       'have at most 0 GPUs (sinfo --format=%G): ask for at most that'),
      ({'slurm.partition': 'restricted', 'slurm.account': 'other'},
       "config.slurm.account='other' is refused by the cluster (allocation failure: Invalid "
       'account or account/partition combination specified): use an account of yours'),
      ({'slurm.nodes': 2}, 'config.slurm.nodes=2, and partition debug has 1 node (sinfo '
       '--format=%D): ask for at most that'),
      ({'slurm.sbatch': '--constraint=h100'}, "the cluster refuses the trials' jobs (allocation "
       'failure: Invalid feature specification; sbatch --test-only --time=60 --nodes=1 '),
      ({'slurm.sbatch': '--time=5'}, "config.slurm.sbatch='--time=5' sets --time, which "
       'config.slurm.time_min sets: set that field instead'),
  ]
  for overrides, line in refusals:
    with pytest.raises(errors.ConfigError) as e:
      slurm.check(_trials(tmp_path, overrides))
    assert str(e.value).startswith(line) and '\n' not in str(e.value), str(e.value)
  slurm.check(_trials(tmp_path, {'slurm.gpus_per_node': 0}))  # what it can run passes
  assert slurm._gpus('gpu:a100:4(S:0-1),gpu:2,nic:1') == 6 and slurm._gpus('(null)') == 0
  assert slurm.extra_options("--qos=high --exclusive --comment='a b'") == {
      'qos': 'high', 'exclusive': True, 'comment': 'a b'}
  monkeypatch.setenv('PATH', '/nonexistent')
  with pytest.raises(errors.ConfigError, match=r"^--launcher=slurm submits jobs with SLURM's "
                     r'sbatch, squeue, srun, scontrol, sinfo, and this host has none on its PATH'):
    slurm.check(_trials(tmp_path, {}))
  monkeypatch.undo()
  assert _queue() == jobs_before  # nothing was submitted


# A trial's process as a job sees launch.py: SIGTERM saves a "checkpoint" and exits 143; started
# again, it finds it and finishes.
STOPS_ON_SIGTERM = """
import json, os, signal, sys, time
d = sys.argv[1]
if os.path.exists(os.path.join(d, 'checkpoint')):
  json.dump({'status': 'done'}, open(os.path.join(d, 'summary.json'), 'w'))
  sys.exit(0)
def stop(signum, frame):
  open(os.path.join(d, 'checkpoint'), 'w').close()
  sys.exit(143)
signal.signal(signal.SIGTERM, stop)
open(os.path.join(d, 'started'), 'w').close()
while True:
  time.sleep(0.05)
"""


def test_a_job_signalled_before_its_time_limit_stops_its_trial_and_is_requeued(cluster, tmp_path):
  # SIGUSR2: what sbatch --signal sends slurm.signal_delay_s before the time limit; SIGTERM while
  # the job goes on: scancel --signal=TERM, a preemption's notice
  jobs = {}
  for sig in ('USR2', 'TERM'):
    t, = _trials(tmp_path / sig, {})
    jobs[sig] = (slurm.submit(t, [sys.executable, '-c', STOPS_ON_SIGTERM, t.workdir]),
                 tmp_path / sig / 'base')
  for sig, (job, d) in jobs.items():
    _until(f'the {sig} trial to start', (d / 'started').exists, 60)
    subprocess.run(['scancel', f'--signal={sig}', job], check=True)
  for sig, (job, d) in jobs.items():
    _until(f'the {sig} job to be requeued', lambda: _state(job) == 'PENDING', 30)
  for sig, (job, d) in jobs.items():
    _until(f'the requeued {sig} job to finish', lambda: _state(job) == 'COMPLETED', 60)
    # launch.py stopped on SIGTERM (SIGUSR2 would have killed it, had it not ignored it)
    assert (d / 'checkpoint').exists() and not (d / 'failed.json').exists(), sig
    assert json.loads((d / 'summary.json').read_text())['status'] == 'done'
    assert slurm.recorded_jobs(str(d)) == [job]  # the same job, requeued
    log = (d / 'slurm' / f'{job}_0_log.err').read_text()
    assert f'Requeued job {job}' in log, log
  assert "the job's time is nearly up" in (jobs['USR2'][1] / 'slurm' /
                                           f'{jobs["USR2"][0]}_0_log.err').read_text()


def test_a_failed_trial_job_writes_failed_json_and_a_rerun_retries_it(cluster, tmp_path):
  t, = _trials(tmp_path, {'slurm.poll_s': 0.2})
  fails = [sys.executable, '-c', 'print("error: loss became nan at step 3"); raise SystemExit(1)']
  job = slurm.submit(t, fails)
  t.status = 'queued'
  said = []
  slurm.wait([t], said.append)
  assert t.status == 'failed' and t.error == 'error: loss became nan at step 3', said
  assert json.loads((tmp_path / 'base' / 'failed.json').read_text())['error'] == t.error
  assert _state(job) == 'FAILED'
  # the rerun submits it again, without its failure
  [t] = slurm.submit_unfinished([t], lambda t: [sys.executable, '-c', 'import json, sys; json.dump('
                                               '{"status": "done"}, open(sys.argv[1], "w"))',
                                               os.path.join(t.workdir, 'summary.json')],
                                said.append)
  assert t.status == 'queued' and not (tmp_path / 'base' / 'failed.json').exists()
  assert slurm.wait([t], said.append)[0].status == 'done', said
  assert slurm.recorded_jobs(t.workdir)[0] == job and len(slurm.recorded_jobs(t.workdir)) == 2


def _launch(workdir, *extra) -> subprocess.Popen:
  return subprocess.Popen([sys.executable, 'launch.py', *FLAGS, f'--sweep={workdir}/sweep_file.py',
                           '--launcher=slurm', f'--workdir={workdir}', *extra], cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=ROOT, **TRIAL_ENV),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _params(trial_dir):
  _, state = checkpoint.restore_saved(str(trial_dir), STEPS,
                                      jax.sharding.SingleDeviceSharding(jax.devices()[0]))
  return jax.tree_util.tree_leaves(state['params'])


def test_a_sweep_runs_as_jobs_and_a_cancelled_trial_resumes_exactly(cluster, tmp_path):
  (tmp_path / 'sweep_file.py').write_text(SWEEP)
  trial = {name: tmp_path / name for name in (CANCELLED, LEFT_ALONE)}
  first = _launch(tmp_path)
  out, _ = first.communicate(timeout=120)
  assert first.returncode == 0, out[-3000:]
  jobs = {name: slurm.recorded_jobs(str(d)) for name, d in trial.items()}
  assert all(len(ids) == 1 for ids in jobs.values()), jobs
  assert out.strip().splitlines()[-1].startswith('2 of 2 trials are queued or running as SLURM '
                                                 f'jobs ({", ".join(jobs[n][0] for n in trial)})')
  assert not (tmp_path / 'comparison.md').exists()  # written once all are done

  # a rerun while they are queued or running submits nothing, and says their state
  from experiments.configs import copy
  trials = lambda: sweep.make_trials(copy.get_config(),
                                     sweep.load(str(tmp_path / 'sweep_file.py')), str(tmp_path))
  said = []
  submitted = lambda t: pytest.fail(f'{t.name} submitted again')
  assert [t.status for t in slurm.submit_unfinished(trials(), submitted, said.append)] == [
      'queued'] * 2
  assert all(f'SLURM job {jobs[n][0]} ' in line and line.endswith(', not submitted again')
             for n, line in zip(trial, said)), said

  # cancelled mid-run, it saves a checkpoint; the next rerun submits it again, and waits for all
  metrics = trial[CANCELLED] / 'metrics.jsonl'
  _until('the trial to train', lambda: metrics.exists() and metrics.stat().st_size, 180, 0.05)
  subprocess.run(['scancel', jobs[CANCELLED][0]], check=True)
  _until('the cancelled job to end', lambda: _state(jobs[CANCELLED][0]) == 'CANCELLED', 60)
  rerun = _launch(tmp_path, '--wait')
  out, _ = rerun.communicate(timeout=240)
  assert rerun.returncode == 0, out[-3000:]
  assert f'trial {CANCELLED}: submitted as SLURM job' in out
  assert 'written to' in out and (tmp_path / 'comparison.md').exists()

  final = {name: slurm.recorded_jobs(str(d)) for name, d in trial.items()}
  assert final[LEFT_ALONE] == jobs[LEFT_ALONE]
  assert final[CANCELLED][0] == jobs[CANCELLED][0] and len(final[CANCELLED]) == 2
  for name, d in trial.items():
    summary = json.loads((d / 'summary.json').read_text())
    assert summary['status'] == 'done' and summary['step'] == STEPS
    starts = [s['from_step'] for s in summary['sessions']]
    assert starts == [0] if name == LEFT_ALONE else (len(starts) == 2 and 0 < starts[1] < STEPS), (
        name, starts)
    # the trial's own log, and each of its jobs' scheduler logs, in its directory
    assert (d / 'log.txt').exists()
    for job in final[name]:
      assert (d / 'slurm' / f'{job}_0_log.err').exists()
  assert 'SIGTERM received' in (trial[CANCELLED] / 'log.txt').read_text()
  for a, b in zip(_params(trial[CANCELLED]), _params(trial[LEFT_ALONE])):
    np.testing.assert_array_equal(a, b)

  # a rerun skips every trial and submits nothing
  assert [t.status for t in slurm.submit_unfinished(trials(), submitted)] == ['skipped'] * 2
