"""Tests of the dataset registry: every entry's kind is a train objective, names are unique, an
unknown name is one line, and preparing is safe from many processes at once."""

import os
import subprocess
import sys
import textwrap

import ml_collections
import numpy as np
import pytest

from experiments.configs.base import get_base_config
from seqmodels import errors
from seqmodels.data import registry
from seqmodels.data import tasks
from seqmodels.train import steps


def _cfg(data_dir, **overrides) -> ml_collections.ConfigDict:
  cfg = dict(name='reverse', min_len=1, max_len=6, num_symbols=5, num_train=40, num_validation=11,
             num_test=5, seed=0, path='', seq_len=8, stride=0, data_dir=str(data_dir))
  return ml_collections.ConfigDict({**cfg, **overrides})


def test_every_dataset_is_a_task_kind_the_train_steps_know():
  for name, entry in registry.DATASETS.items():
    assert entry.kind in steps.OBJECTIVES, name
    assert registry.kind(name) == entry.kind
  assert registry.kind('adding') == 'regression' and registry.kind('toy_translation') == 'seq2seq'


def test_each_name_has_one_entry_in_one_family():
  names = [name for family in registry.FAMILIES for name in family.DATASETS]
  assert len(names) == len(set(names)) == len(registry.DATASETS)
  assert ([name for name, entry in registry.DATASETS.items() if entry.streams] ==
          ['text', 'tiny_shakespeare'])
  assert ([name for name, entry in registry.DATASETS.items() if entry.text] ==
          ['text', 'tiny_shakespeare', 'lm1b'])
  assert all(entry.text for entry in registry.DATASETS.values() if entry.streams)


def test_an_unknown_dataset_is_one_line_listing_the_datasets():
  c = get_base_config()
  c.data.name = 'imagenet'
  with pytest.raises(errors.ConfigError) as e:
    registry.check(c)
  names = ', '.join(registry.DATASETS)
  assert str(e.value) == f"config.data.name='imagenet' is not a dataset: choose one of {names}"
  assert names.startswith('copy, reverse, sort, adding, text, ') and '\n' not in str(e.value)
  with pytest.raises(ValueError, match="Unknown data.name 'imagenet'"):
    registry.load(c.data)
  assert registry.local_files(c.data) == [] and registry.tokenizer_name(c.data) == ''


def test_local_files_are_the_existing_files_a_dataset_reads(tmp_path):
  for split in ('train', 'valid'):
    (tmp_path / f'c.{split}.txt').write_text('some text\n')
  cfg = _cfg(tmp_path, name='text', path=str(tmp_path / 'c.{split}.txt'))
  files = [str(tmp_path / 'c.train.txt'), str(tmp_path / 'c.valid.txt')]
  assert registry.local_files(cfg) == files and set(registry.file_digests(cfg)) == set(files)
  cfg.name = 'mlm'
  cfg.source = 'lm1b'  # a TFDS source: no local file
  assert registry.local_files(cfg) == []
  cfg.source = 'shuffled'
  assert registry.local_files(cfg) == files
  assert registry.local_files(_cfg(tmp_path, name='copy')) == []


def test_prepare_twice_is_a_no_op_and_concurrent_prepares_agree(tmp_path):
  cfg = _cfg(tmp_path, name='copy')
  script = textwrap.dedent(f"""
      import ml_collections
      from seqmodels.data import registry
      registry.prepare(ml_collections.ConfigDict({cfg.to_dict()!r}))
  """)
  repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  env = {**os.environ, 'PYTHONPATH': repo}
  procs = [subprocess.Popen([sys.executable, '-c', script], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE) for _ in range(2)]
  outputs = [proc.communicate(timeout=120) for proc in procs]
  for proc, (_, err) in zip(procs, outputs):
    assert proc.returncode == 0, err.decode()[-2000:]
    # TFDS's progress bars on a terminal only, not a pipe
    assert b'examples/s' not in err and b'\r' not in err
  assert sum(b'Downloading and preparing' in out for out, _ in outputs) == 1  # Built once.
  dataset_dir = next((tmp_path / 'synthetic_seq').glob('copy_*/1.0.0'))
  mtimes = {p: p.stat().st_mtime_ns for p in dataset_dir.iterdir()}
  registry.prepare(cfg)
  assert {p: p.stat().st_mtime_ns for p in dataset_dir.iterdir()} == mtimes
  assert not list(tmp_path.glob('synthetic_seq/*/incomplete*'))
  batch = next(registry.load(cfg).eval_batches(batch_size=2))
  ex = tasks.seq_example('copy', seed=0, split='validation', index=0, min_len=1, max_len=6,
                         num_symbols=5)
  n = len(ex['inputs'])
  np.testing.assert_array_equal(batch['targets'][0, n + 1:2 * n + 1], ex['inputs'] + 4)
