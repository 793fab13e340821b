"""Faults that must lose no work: a second writer on a workdir, kill -9, a double interrupt, a full
or read-only disk. Each ends in an exact resume or one line, never a hang (every subprocess under a
timeout)."""

import builtins
import errno
import json
import os
import signal
import subprocess
import sys
import time

import jax
import pytest

from experiments.configs import copy
from seqmodels import errors, sweep
from seqmodels.train import checkpoint, lock, loop, metrics, workdir
from tests.train.loop_test import _assert_trees_equal, tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = dict(os.environ, JAX_PLATFORMS='cpu', XLA_FLAGS='--xla_force_host_platform_device_count=2')


def _flags(tmp_path, steps: int) -> list[str]:
  return ['--config=experiments/configs/copy.py', '--config.model.width=32',
          '--config.model.layers=1', f'--config.train.num_steps={steps}',
          '--config.train.checkpoint_every=20', '--config.train.log_every=5',
          '--config.train.eval_every=100000', '--config.train.eval_batches=1',
          '--config.data.num_train=256', f'--config.data.data_dir={tmp_path / "tfds"}',
          f'--workdir={tmp_path / "run"}']


def _start(flags) -> subprocess.Popen:
  return subprocess.Popen([sys.executable, 'launch.py', *flags], cwd=ROOT, env=ENV,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(condition, p: subprocess.Popen, what: str, timeout: float = 180) -> None:
  deadline = time.time() + timeout
  while not condition():
    if p.poll() is not None:
      raise AssertionError(f'the run ended before {what}: {p.stderr.read()[-3000:]}')
    assert time.time() < deadline, f'no {what} in {timeout} s'
    time.sleep(0.1)


def _checkpoints(tmp_path) -> list[str]:
  d = tmp_path / 'run' / 'checkpoints'
  return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def test_a_second_launch_is_refused_and_a_killed_holder_leaves_a_run_that_resumes(tmp_path):
  flags = _flags(tmp_path, 100000)
  first = _start(flags)
  try:
    _wait_for(lambda: '20' in _checkpoints(tmp_path), first, 'first checkpoint')
    second = subprocess.run([sys.executable, 'launch.py', *flags], cwd=ROOT, env=ENV,
                            capture_output=True, text=True, timeout=120)
    assert second.returncode == 1, second.stderr[-3000:]
    last = second.stderr.strip().splitlines()[-1]
    assert last.startswith(f'error: {tmp_path / "run"} is in use by pid {first.pid} on host '), last
    assert 'Traceback' not in second.stderr
    assert not (tmp_path / 'run' / 'failed.json').exists()  # the refused launch wrote nothing there
  finally:
    first.send_signal(signal.SIGKILL)  # mid-run, maybe mid-save
    first.wait(timeout=60)
  saved = [int(s) for s in _checkpoints(tmp_path) if s.isdigit()]
  # the kernel freed the killed holder's lock
  assert saved and lock.holder(str(tmp_path / 'run')) is None
  # The same config, resumed in this process for 3 steps: from the last checkpoint the kill left.
  c = sweep.apply(copy.get_config(),
                  {f.split('=')[0].removeprefix('--config.'): _value(f.split('=')[1]) for f in flags
                   if f.startswith('--config.')})
  resumed = loop.train_and_evaluate(c, str(tmp_path / 'run'), stop_after=3)
  assert resumed['status'] == 'preempted' and resumed['step'] == max(saved) + 3
  records = [json.loads(line)
             for line in (tmp_path / 'run' / 'metrics.jsonl').read_text().splitlines()]
  steps = [r['step'] for r in records if r['split'] == 'train']
  assert steps == sorted(set(steps)), 'one writer: each step logged once'


def _value(text: str):
  try:
    return int(text)
  except ValueError:
    return text


def test_a_double_interrupt_ends_at_once_and_the_run_resumes(tmp_path):
  flags = _flags(tmp_path, 100000)
  p = _start(flags)
  _wait_for(lambda: '20' in _checkpoints(tmp_path), p, 'first checkpoint')
  p.send_signal(signal.SIGINT)
  time.sleep(0.01)
  p.send_signal(signal.SIGINT)
  _, err = p.communicate(timeout=30)  # no hang: seconds, not a kill -9
  last = err.strip().splitlines()[-1]
  if p.returncode == 128 + signal.SIGINT:  # the second arrived during the save
    assert last.startswith('error: SIGINT again: stopped at once'), last
  else:  # the save was done before the second arrived
    assert p.returncode == 143 and 'rerun the same command to resume' in last, err[-3000:]
  steps = [int(s) for s in _checkpoints(tmp_path) if s.isdigit()]
  assert steps
  step, state = checkpoint.restore_saved(
      str(tmp_path / 'run'), sharding=jax.sharding.SingleDeviceSharding(jax.devices()[0]))
  assert int(state['step']) == step == max(steps)  # the last complete checkpoint reads back whole


def _fail_once(monkeypatch, target, name: str, at_call: int, err: OSError):
  """Patches target.name to raise `err` on its at_call-th call (1-based), and pass through
  otherwise."""
  original, calls = getattr(target, name), []

  def patched(*args, **kwargs):
    calls.append(1)
    if len(calls) == at_call:
      raise err
    return original(*args, **kwargs)
  monkeypatch.setattr(target, name, patched)


@pytest.mark.parametrize('what', ['checkpoint', 'metrics'])
def test_a_full_or_read_only_disk_is_one_line_and_the_run_resumes_exactly(
    tmp_path, monkeypatch, what):
  c = tiny_config(tmp_path)  # 12 steps, a checkpoint every 4
  full = loop.train_and_evaluate(c, str(tmp_path / 'full'))
  if what == 'checkpoint':  # the third save (step 12) finds the disk full
    err = OSError(errno.ENOSPC, 'No space left on device')
    _fail_once(monkeypatch, checkpoint.Checkpointer, 'save', 3, err)
  else:  # the fifth metrics record finds the storage read-only
    err = OSError(errno.EROFS, 'Read-only file system', str(tmp_path / 'run' / 'metrics.jsonl'))
    _fail_once(monkeypatch, metrics.MetricWriter, 'write', 5, err)
  with pytest.raises(errors.StorageError) as e:
    loop.train_and_evaluate(c, str(tmp_path / 'run'))
  message = str(e.value)
  assert len(message.splitlines()) == 1 and 'rerun the same command to resume' in message
  assert (f'({err.strerror})' in message and
          'the last complete checkpoint (step 8) is kept' in message if what == 'checkpoint'
          else 'metrics.jsonl failed (Read-only file system)' in message), message
  assert not list((tmp_path / 'run').glob('*.tmp'))  # no temporary file left behind
  monkeypatch.undo()
  resumed = loop.train_and_evaluate(c, str(tmp_path / 'run'))
  _assert_trees_equal(full['state'].params, resumed['state'].params)
  assert resumed['eval']['loss'] == full['eval']['loss']


def test_a_finished_run_on_read_only_storage_is_nothing_to_do(tmp_path, monkeypatch):
  c = tiny_config(tmp_path, steps=4)
  done = loop.train_and_evaluate(c, str(tmp_path / 'run'))
  real_open, real_makedirs = builtins.open, os.makedirs

  def read_only(path, mode='r', *args, **kwargs):
    if any(m in mode for m in 'wax+'):
      raise OSError(errno.EROFS, 'Read-only file system', str(path))
    return real_open(path, mode, *args, **kwargs)
  monkeypatch.setattr(builtins, 'open', read_only)
  monkeypatch.setattr(os, 'remove',
                      lambda path: (_ for _ in ()).throw(OSError(errno.EROFS, 'Read-only', path)))
  monkeypatch.setattr(os, 'makedirs',
                      lambda path, exist_ok=False: real_makedirs(path, exist_ok=exist_ok)
                      if os.path.isdir(path) and exist_ok
                      else (_ for _ in ()).throw(OSError(errno.EROFS, '')))
  again = loop.train_and_evaluate(c, str(tmp_path / 'run'))
  assert again['status'] == 'done' and again['eval'] == json.loads(json.dumps(done['eval']))
  # what launch.py does after: no error on read-only storage
  workdir.clear_failure(str(tmp_path / 'run'))
  # nor here: the line is said anyway
  workdir.record_failure(str(tmp_path / 'run'), RuntimeError('x'))


def test_storage_faults_are_recognised_through_the_errors_that_wrap_them():
  assert errors.storage_fault(OSError(errno.ENOSPC, 'x'))[0] == 'No space left on device'
  wrapped = ValueError('RESOURCE_EXHAUSTED: Error writing "a/b": Failed to write 15792 bytes '
                       'to file 9: No space '
                       "left on device [os_error_code='28']")  # orbax's, from tensorstore
  assert errors.storage_fault(wrapped)[0] == 'No space left on device'
  try:
    try:
      raise OSError(errno.EIO, 'Input/output error')
    except OSError as cause:
      raise RuntimeError('the save failed') from cause
  except RuntimeError as chained:
    assert errors.storage_fault(chained) == errors.STORAGE_FAULTS[errno.EIO]
  assert errors.storage_fault(ValueError('a bad config')) is None


def test_parallel_trials_stop_with_their_launcher_even_after_kill_9(tmp_path):
  sweep_file = tmp_path / 'one.py'
  sweep_file.write_text("def get_sweep():\n  return [{'model.name': 'lstm'}]\n")
  flags = [*_flags(tmp_path, 100000)[:-1], f'--sweep={sweep_file}', '--parallel=1',
           f'--workdir={tmp_path}/sweep']
  launcher = _start(flags)
  trial = tmp_path / 'sweep' / 'model.name=lstm'
  try:
    _wait_for(lambda: (trial / 'checkpoints' / '20').is_dir(), launcher,
              "the trial's first checkpoint")
    assert lock.holder(str(tmp_path / 'sweep'))['pid'] == launcher.pid  # the sweep holds its root
    child = lock.holder(str(trial))['pid']  # and the trial's process its own directory
    assert child != launcher.pid
  finally:
    launcher.send_signal(signal.SIGKILL)
    launcher.wait(timeout=60)
  deadline = time.time() + 60
  # the trial got SIGTERM from the kernel: it saves and stops
  while lock.holder(str(trial)) is not None:
    assert time.time() < deadline, 'the trial outlived its launcher'
    time.sleep(0.2)
  log = (trial / 'log.txt').read_text()
  assert ('SIGTERM received: saving a checkpoint' in log and
          'rerun the same command to resume' in log)
