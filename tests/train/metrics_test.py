"""Tests for seqmodels/train/metrics.py: the JSONL record, TensorBoard scalars, and a start-up
without PyTorch."""

import json
import math
import mmap
import os
import subprocess
import sys

from seqmodels.train.metrics import MetricWriter, PeakMemory

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_writer_appends_jsonl_rows_and_tensorboard_event_files(tmp_path):
  writer = MetricWriter(str(tmp_path))
  writer.write(10, 'train', {'loss': 2.5, 'lr': 1e-3})
  # kept in JSONL, skipped for TensorBoard
  writer.write(20, 'eval', {'loss': float('nan'), 'x': float('inf')})
  writer.close()
  strict = lambda name: (_ for _ in ()).throw(ValueError(f'{name} is not JSON'))
  # strict JSON
  rows = [json.loads(line, parse_constant=strict) for line in open(tmp_path / 'metrics.jsonl')]
  assert [(r['step'], r['split'], r['loss']) for r in rows[:1]] == [(10, 'train', 2.5)]
  assert rows[1]['step'] == 20 and (rows[1]['loss'], rows[1]['x']) == ('NaN', 'Infinity')
  # float() reads them back
  assert math.isnan(float(rows[1]['loss'])) and float(rows[1]['x']) == math.inf
  events = os.listdir(tmp_path / 'tensorboard')
  assert events and all(e.startswith('events.out.tfevents') for e in events)
  assert os.path.getsize(tmp_path / 'tensorboard' / events[0]) > 0


_FAKE_TORCH = """
import sys
sys.path.insert(0, sys.argv[1])  # holds a package named torch that prints when imported
from seqmodels.train.metrics import MetricWriter
MetricWriter(sys.argv[2]).close()
print('after writer:', 'torch' in sys.modules)
import torch
print('then:', torch.__name__)
"""


def test_writer_does_not_import_an_installed_torch_but_leaves_it_importable(tmp_path):
  (tmp_path / 'torch').mkdir()
  (tmp_path / 'torch' / '__init__.py').write_text("print('torch imported')\n")
  (tmp_path / 'run').mkdir()
  out = subprocess.run([sys.executable, '-c', _FAKE_TORCH, str(tmp_path), str(tmp_path / 'run')],
                       cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True,
                       text=True, timeout=120)
  assert out.returncode == 0, out.stderr[-2000:]
  assert out.stdout.split() == ['after', 'writer:', 'False', 'torch', 'imported', 'then:',
                                'torch'], out.stdout


def test_peak_memory_is_each_runs_own_not_the_processes_so_far():
  """An in-process sweep's later trial reports its own peak, not an earlier trial's larger one."""
  size = 256 * 2**20
  first = PeakMemory()
  buffer = mmap.mmap(-1, size)  # an earlier trial's memory, resident, then returned to the system
  buffer.write(b'x' * size)
  buffer.close()
  earlier = first.bytes()
  later = PeakMemory().bytes()  # the next run starts: its peak is what is resident now
  assert earlier - later > size // 2


def test_a_resumed_writer_drops_the_records_logged_after_its_step(tmp_path):
  writer = MetricWriter(str(tmp_path))
  for step in (2, 4, 6):
    writer.write(step, 'train', {'loss': float(step)})
  writer.write(4, 'eval', {'loss': 1.0})
  writer.close()
  with open(tmp_path / 'metrics.jsonl', 'a') as f:
    f.write('{"step": 8, "spl')  # torn by a kill mid-write
  writer = MetricWriter(str(tmp_path), resume_step=4)  # the last checkpoint was step 4's
  writer.write(6, 'train', {'loss': 0.5})
  writer.close()
  rows = [json.loads(line) for line in open(tmp_path / 'metrics.jsonl')]
  assert ([(r['step'], r['split'], r['loss']) for r in rows] ==
          [(2, 'train', 2.0), (4, 'train', 4.0), (4, 'eval', 1.0), (6, 'train', 0.5)])
  MetricWriter(str(tmp_path), resume_step=0).close()  # a run that starts over keeps nothing
  assert (tmp_path / 'metrics.jsonl').read_text() == ''
