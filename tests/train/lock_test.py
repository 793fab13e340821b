"""One writer per workdir: a second holder is refused with its holder named; a dead holder frees
it."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from seqmodels import errors
from seqmodels.train import lock

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_HOLD = """
import sys, time
from seqmodels.train import lock
with lock.WorkdirLock(sys.argv[1]):
  print('held', flush=True)
  time.sleep(600)
"""


def _holding(workdir) -> subprocess.Popen:
  p = subprocess.Popen([sys.executable, '-c', _HOLD, str(workdir)], cwd=ROOT,
                       stdout=subprocess.PIPE, text=True)
  assert p.stdout.readline().strip() == 'held'
  return p


def test_a_second_writer_is_refused_until_the_first_dies_even_by_kill_9(tmp_path):
  p = _holding(tmp_path)
  try:
    with pytest.raises(errors.WorkdirBusyError,
                       match=rf'{tmp_path} is in use by pid {p.pid} on host {socket.gethostname()} '
                       rf'\(-c {tmp_path}.*\): one process writes a workdir at a time'):
      lock.WorkdirLock(str(tmp_path)).acquire()
    assert lock.holder(str(tmp_path))['pid'] == p.pid  # readers see who holds it, without taking it
  finally:
    p.send_signal(signal.SIGKILL)
    p.wait()
  assert lock.holder(str(tmp_path)) is None  # the kernel released the flock of the killed process
  with lock.WorkdirLock(str(tmp_path)):
    assert lock.holder(str(tmp_path))['pid'] == os.getpid()
  assert lock.holder(str(tmp_path)) is None
  assert (tmp_path / lock.LOCK_FILE).read_text() == ''  # released: the file stays, empty


def test_a_holder_on_another_host_counts_while_its_heartbeat_is_fresh(tmp_path):
  record = {'host': 'other-host', 'pid': 7, 'command': 'launch.py', 'heartbeat': time.time()}
  # a shared filesystem whose flock is per host
  (tmp_path / lock.LOCK_FILE).write_text(json.dumps(record))
  with pytest.raises(errors.WorkdirBusyError, match='in use by pid 7 on host other-host'):
    lock.WorkdirLock(str(tmp_path)).acquire()
  record['heartbeat'] = time.time() - lock.STALE_S - 1  # its holder is gone
  (tmp_path / lock.LOCK_FILE).write_text(json.dumps(record))
  with lock.WorkdirLock(str(tmp_path)):
    pass


def test_the_lock_is_released_when_the_body_raises(tmp_path):
  with pytest.raises(RuntimeError):
    with lock.WorkdirLock(str(tmp_path)):
      raise RuntimeError('a failed run')
  with lock.WorkdirLock(str(tmp_path)):
    pass
