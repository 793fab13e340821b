"""A real 2-process run (jax.distributed over loopback, gloo CPU collectives) trains to the
1-process result."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import jax
import numpy as np
import pytest

from seqmodels.train import checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLAGS = ['--config=experiments/configs/copy.py', '--config.model.width=32',
         '--config.model.layers=1', '--config.data.max_len=6', '--config.data.num_symbols=4',
         '--config.data.num_train=256', '--config.data.num_validation=32',
         '--config.train.num_steps=8', '--config.train.batch_size=8', '--config.train.log_every=4',
         '--config.train.eval_every=8', '--config.train.checkpoint_every=8',
         '--config.model.dropout=0.1']


def _env(devices_per_process: int) -> dict:
  env = dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=ROOT)
  env['XLA_FLAGS'] = f'--xla_force_host_platform_device_count={devices_per_process}'
  return env


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _tails(outs) -> str:
  """Both processes' stderr tails: when one fails, the other's error is often only the symptom."""
  return '\n'.join(f'--- process {i} stderr:\n{err[-2500:]}' for i, (_, err) in enumerate(outs))


def _finish(procs, timeout: int = 300) -> list[tuple[str, str]]:
  """Each process's (stdout, stderr), read as they run (a full pipe would stall a process); a hang
  kills them all and fails with both stderr tails, not a timeout."""
  outs = [('', '')] * len(procs)
  def read(i):
    outs[i] = procs[i].communicate()
  readers = [threading.Thread(target=read, args=(i,), daemon=True) for i in range(len(procs))]
  for r in readers:
    r.start()
  deadline = time.monotonic() + timeout
  for r in readers:
    r.join(max(0.0, deadline - time.monotonic()))
  hung = [i for i, p in enumerate(procs) if p.poll() is None]
  for i in hung:
    procs[i].kill()
  for r in readers:
    r.join()
  assert not hung, f'process {hung} still running after {timeout} s\n{_tails(outs)}'
  return outs


def _launch(flags: list[list[str]], port: int) -> list[subprocess.Popen]:
  """Process i of 2 runs launch.py with flags[i], joined through the coordinator on
  127.0.0.1:port."""
  return [subprocess.Popen(
      [sys.executable, 'launch.py', *flags[i],
       f'--config.distributed.coordinator_address=127.0.0.1:{port}',
       '--config.distributed.num_processes=2', f'--config.distributed.process_id={i}'],
      cwd=ROOT, env=_env(1), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
      text=True) for i in range(2)]


def _final_params(workdir):
  """The parameters of the step-8 checkpoint, restored onto one device from the array metadata orbax
  keeps."""
  _, state = checkpoint.restore_saved(str(workdir), 8,
                                      jax.sharding.SingleDeviceSharding(jax.devices()[0]))
  return state['params']


def test_two_processes_train_to_the_same_parameters_as_one(tmp_path):
  # also the best evaluation's checkpoint and the test split's evaluation, which every process takes
  # part in
  flags = [*FLAGS, f'--config.data.data_dir={tmp_path / "tfds"}', '--config.train.keep_best=True',
           '--config.train.test_eval=True', '--config.data.num_test=24']
  one = subprocess.run([sys.executable, 'launch.py', *flags, f'--workdir={tmp_path / "one"}'],
                       cwd=ROOT, env=_env(2), capture_output=True, text=True, timeout=300)
  assert one.returncode == 0, one.stderr[-3000:]
  procs = _launch([[*flags, f'--workdir={tmp_path / "two"}']] * 2, _free_port())
  outs = _finish(procs)
  assert [p.returncode for p in procs] == [0, 0], _tails(outs)
  assert 'process 1 of 2 joined' in outs[1][1]
  p1, p2 = _final_params(tmp_path / 'one'), _final_params(tmp_path / 'two')
  for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(p2)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  (_, best1), (_, best2) = (checkpoint.restore_saved(str(tmp_path / w), 8, device, which='best')
                            for w in ('one', 'two'))
  for a, b in zip(jax.tree.leaves(best1['params']), jax.tree.leaves(best2['params'])):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)
  test1, test2 = (json.loads((tmp_path / w / 'summary.json').read_text())['test']
                  for w in ('one', 'two'))
  assert test1['parameters'] == test2['parameters'] == 'best'
  assert test1['loss'] == pytest.approx(test2['loss'], rel=1e-5)


def test_a_process_that_fails_stops_the_other_at_once_with_its_reason(tmp_path):
  """Process 1 finds a workdir of another run; process 0, at the data barrier, fails with that
  reason."""
  data_dir = f'--config.data.data_dir={tmp_path / "tfds"}'
  other = tmp_path / 'other'
  other.mkdir()
  (other / 'config.json').write_text(json.dumps({'seed': 0, 'model': {'name': 'gru'}}))
  # a finished run (not one that saved nothing)
  (other / 'summary.json').write_text(json.dumps({'status': 'done'}))
  t0 = time.monotonic()
  procs = _launch([[*FLAGS, data_dir, f'--workdir={tmp_path / "run"}'],
                   [*FLAGS, data_dir, f'--workdir={other}']],
                  _free_port())
  outs = _finish(procs, timeout=120)
  assert [p.returncode for p in procs] == [1, 1], _tails(outs)
  last = [err.strip().splitlines()[-1] for _, err in outs]
  assert last[1].startswith(
      f'error: workdir {other} holds a run with a different config (config.model.name: '
      "'gru' there, 'lstm' now)"), _tails(outs)
  assert last[0].startswith(
      f'error: process 1 of 2 failed: WorkdirError: workdir {other} holds'), _tails(outs)
  assert time.monotonic() - t0 < 60, ('the barrier waited for its timeout instead of '
                                      'hearing of the failure')


def test_sigterm_to_one_process_stops_both_at_the_same_step_with_one_checkpoint(tmp_path):
  """Preemption of one host: JAX's coordination service has every process reach the same sync step
  and save."""
  long_run = {'num_steps': 1000000, 'checkpoint_every': 1000000, 'eval_every': 1000000,
              'log_every': 1000}
  flags = [f for f in FLAGS if f.split('=')[0].removeprefix('--config.train.') not in long_run]
  flags += ([f'--config.train.{k}={v}' for k, v in long_run.items()] +
            [f'--config.data.data_dir={tmp_path / "tfds"}'])
  work = tmp_path / 'run'
  procs = _launch([[*flags, f'--workdir={work}']] * 2, _free_port())
  deadline = time.monotonic() + 120
  while (not (work / 'config.json').exists() and time.monotonic() < deadline and
         procs[0].poll() is None):
    time.sleep(0.2)
  time.sleep(2)  # into the training steps
  procs[1].send_signal(signal.SIGTERM)
  outs = _finish(procs, timeout=120)
  assert [p.returncode for p in procs] == [143, 143], _tails(outs)
  stopped = [re.search(r'error: stopped early at step (\d+)', err) for _, err in outs]
  assert all(stopped), _tails(outs)
  steps = {int(m.group(1)) for m in stopped}
  assert len(steps) == 1 and checkpoint.saved_steps(str(work)) == list(steps), (steps, _tails(outs))


_JOIN = """
import sys, time
import jax
from seqmodels import errors
from seqmodels.train import sharding
jax.config.update('jax_cpu_collectives_implementation', 'gloo')
jax.distributed.initialize(sys.argv[1], 2, int(sys.argv[2]))
"""


def _run_joined(script: str) -> list[tuple[str, str]]:
  """`script` after _JOIN in two processes joined over loopback: their (stdout, stderr), both exit
  codes 0."""
  port = _free_port()
  procs = [subprocess.Popen([sys.executable, '-c', _JOIN + script, f'127.0.0.1:{port}', str(i)],
                            cwd=ROOT, env=_env(1), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True) for i in range(2)]
  outs = _finish(procs, timeout=120)
  assert [p.returncode for p in procs] == [0, 0], _tails(outs)
  return outs


_FAILURE = """
sharding.wait_for_all_processes('a first step')
if jax.process_index() == 1:
  sharding.announce_failure('ValueError: no such file')
else:
  try:
    sharding.wait_for_all_processes('a second step')
  except errors.PeerFailedError as e:
    print('raised', e)
# still paired: the failure took the barrier's place in the order
sharding.wait_for_all_processes('the next trial')
print('paired')
"""


def test_an_announced_failure_is_raised_at_the_barrier_it_replaces():
  outs = _run_joined(_FAILURE)
  assert 'raised process 1 of 2 failed: ValueError: no such file' in outs[0][0], outs[0][0]
  assert all('paired' in out for out, _ in outs), outs


_BARRIER = """
if jax.process_index() == 1:
  time.sleep(3)  # e.g. building a dataset the other host found built
t0 = time.time()
sharding.wait_for_all_processes('a test')
print('waited', time.time() - t0)
"""


def test_wait_for_all_processes_holds_each_process_until_the_slowest_arrives():
  outs = _run_joined(_BARRIER)
  waited = [float(out.split('waited')[-1]) for out, _ in outs]
  assert waited[0] > 2.5 and waited[1] < 2.5, waited
