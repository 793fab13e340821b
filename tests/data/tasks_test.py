"""Tests that each synthetic task generator matches its definition and is reproducible, that its
TFDS builder writes it back exactly, and that its rows are formatted as defined."""

import sys

import chex
import ml_collections
import numpy as np
import pytest
import tensorflow_datasets as tfds

from seqmodels.data import core
from seqmodels.data import registry
from seqmodels.data import tasks

PAD, BOS, SEP, EOS = core.PAD, core.BOS, core.SEP, core.EOS

LENGTHS = {'min_len': 3, 'max_len': 9}


def _cfg(data_dir, **overrides) -> ml_collections.ConfigDict:
  cfg = dict(name='reverse', min_len=1, max_len=6, num_symbols=5, num_train=40, num_validation=11,
             num_test=5, seed=0, path='', seq_len=8, stride=0, data_dir=str(data_dir))
  return ml_collections.ConfigDict({**cfg, **overrides})


SIZES = {'num_train': 20, 'num_validation': 6, 'num_test': 4}


def _prepare(builder_cls, data_dir, **kwargs):
  builder = builder_cls(data_dir=str(data_dir), file_format='array_record', **kwargs)
  builder.download_and_prepare()
  return builder


@pytest.mark.parametrize('task', tasks.SEQ_TASKS)
def test_seq_targets_follow_task_definition(task):
  for index in range(200):
    ex = tasks.seq_example(task, seed=0, split='train', index=index, num_symbols=5, **LENGTHS)
    inputs_S, targets_S = ex['inputs'], ex['targets']
    chex.assert_rank([inputs_S, targets_S], 1)
    assert inputs_S.dtype == targets_S.dtype == np.int32
    assert 3 <= len(inputs_S) <= 9 and len(targets_S) == len(inputs_S)
    assert inputs_S.min() >= 0 and inputs_S.max() < 5
    expected_S = {'copy': inputs_S, 'reverse': inputs_S[::-1], 'sort': np.sort(inputs_S)}[task]
    np.testing.assert_array_equal(targets_S, expected_S)


def test_sort_targets_are_nondecreasing_permutations():
  for index in range(50):
    ex = tasks.seq_example('sort', seed=1, split='test', index=index, num_symbols=7, **LENGTHS)
    assert np.all(np.diff(ex['targets']) >= 0)
    np.testing.assert_array_equal(np.bincount(ex['targets'], minlength=7),
                                  np.bincount(ex['inputs'], minlength=7))


def test_lengths_and_symbols_cover_their_ranges():
  exs = [tasks.seq_example('copy', seed=0, split='train', index=i, num_symbols=4, **LENGTHS)
         for i in range(500)]
  assert {len(ex['inputs']) for ex in exs} == set(range(3, 10))
  assert set(np.concatenate([ex['inputs'] for ex in exs]).tolist()) == {0, 1, 2, 3}


def test_adding_has_one_marker_per_half_and_target_is_their_sum():
  for index in range(300):
    ex = tasks.adding_example(seed=0, split='validation', index=index, **LENGTHS)
    values_T, markers_T, target = ex['values'], ex['markers'], ex['target']
    length = len(values_T)
    assert 3 <= length <= 9 and markers_T.shape == (length,)
    assert values_T.dtype == np.float32 and markers_T.dtype == np.int32
    assert np.all((values_T >= 0) & (values_T < 1))
    assert set(np.unique(markers_T).tolist()) == {0, 1}
    first, second = np.flatnonzero(markers_T)  # Exactly two markers.
    assert first < length // 2 <= second
    assert target.dtype == np.float32
    assert target == values_T[first] + values_T[second]


@pytest.mark.parametrize('task', tasks.TASKS)
def test_examples_are_deterministic_in_seed_split_and_index(task):
  make = lambda seed, split, index: tasks.example(task, seed=seed, split=split, index=index,
                                                   num_symbols=50, min_len=20, max_len=30)
  chex.assert_trees_all_equal(make(3, 'train', 7), make(3, 'train', 7))
  first = make(3, 'train', 7)
  key = 'inputs' if task in tasks.SEQ_TASKS else 'values'
  for other in (make(4, 'train', 7), make(3, 'test', 7), make(3, 'train', 8)):
    assert not np.array_equal(first[key], other[key])


@pytest.mark.parametrize('task', tasks.TASKS)
def test_synthetic_builder_writes_array_record_that_reads_back_as_generated(task, tmp_path):
  config = tasks.synthetic_config(task, min_len=2, max_len=7, num_symbols=5, seed=3, **SIZES)
  builder_cls = tasks.synthetic_builder_cls(task)
  builder = _prepare(builder_cls, tmp_path, config=config)
  files = sorted(p.name for p in builder.data_path.iterdir())
  assert [f for f in files if 'array_record' in f] == [
      f'{builder_cls.name}-{split}.array_record-00000-of-00001'
      for split in ('test', 'train', 'validation')]
  for split, n in (('train', 20), ('validation', 6), ('test', 4)):
    source = tfds.data_source(f'{builder_cls.name}/{config.name}', split=split, data_dir=tmp_path)
    assert len(source) == n
    for index in range(n):
      expected = tasks.example(task, seed=3, split=split, index=index, min_len=2, max_len=7,
                               num_symbols=5)
      chex.assert_trees_all_equal(dict(source[index]), expected)
  assert 'tensorflow' not in sys.modules


def test_synthetic_config_names_encode_every_parameter():
  base = dict(min_len=1, max_len=8, num_symbols=4, seed=0, num_train=10, num_validation=2,
              num_test=2)
  names = {tasks.synthetic_config('copy', **base).name,
           tasks.synthetic_config('reverse', **base).name}
  for field in base:
    names.add(tasks.synthetic_config('copy', **{**base, field: base[field] + 1}).name)
  assert len(names) == 2 + len(base)
  assert tasks.synthetic_config('copy', **base).name == 'copy_sym4_len1-8_n10-2-2_seed0'


def test_seq_example_is_bos_inputs_sep_targets_eos_with_weights_on_the_answer():
  ex = tasks.format_seq_example(np.array([0, 2, 1]), np.array([1, 2, 0]), max_len=4)
  #        positions: 0    1  2  3  4    5  6  7  8    9   10
  seq = np.array([BOS, 4, 6, 5, SEP, 5, 6, 4, EOS, PAD, PAD])
  np.testing.assert_array_equal(ex['inputs'], seq[:-1])
  np.testing.assert_array_equal(ex['targets'], seq[1:])
  np.testing.assert_array_equal(ex['weights'], [0, 0, 0, 0, 1, 1, 1, 1, 0, 0])
  chex.assert_shape([ex['inputs'], ex['targets'], ex['weights']], (2 * 4 + 2,))
  assert ex['inputs'].dtype == np.int32 and ex['weights'].dtype == np.float32


def test_weighted_targets_of_lm_batches_are_exactly_the_answer_and_eos(reverse_data):
  batch = next(reverse_data.train_batches(batch_size=16, start_step=0, seed=0))
  # T = 2 * max_len + 2.
  chex.assert_shape([batch['inputs'], batch['targets'], batch['weights']], (16, 14))
  for targets_T, weights_T in zip(batch['targets'], batch['weights']):
    answer = targets_T[weights_T == 1]
    assert answer[-1] == EOS and np.all(answer[:-1] >= core.NUM_SPECIALS)
    sep = list(targets_T).index(SEP)
    np.testing.assert_array_equal(answer[:-1], targets_T[:sep][::-1])  # Reversed question.
  assert reverse_data.vocab_size == 5 + 4 and reverse_data.kind == 'lm'


def test_adding_batches_are_padded_with_mask_and_target(tmp_path):
  cfg = _cfg(tmp_path, name='adding', min_len=2, max_len=7)
  registry.prepare(cfg)
  data = registry.load(cfg)
  assert (data.kind, data.vocab_size, data.seq_len) == ('regression', 0, 7)
  batch = next(data.eval_batches(batch_size=4))
  chex.assert_shape([batch['values'], batch['markers'], batch['mask']], (4, 7))
  chex.assert_shape(batch['target'], (4,))
  for index in range(4):
    ex = tasks.adding_example(seed=0, split='validation', index=index, min_len=2, max_len=7)
    n = len(ex['values'])
    np.testing.assert_array_equal(batch['values'][index, :n], ex['values'])
    np.testing.assert_array_equal(batch['markers'][index, :n], ex['markers'])
    np.testing.assert_array_equal(batch['mask'][index], np.arange(7) < n)
    assert batch['target'][index] == ex['target']
  assert all(v.dtype == np.float32 for v in batch.values())


def test_decode_renders_symbols_and_specials(reverse_data):
  assert reverse_data.decode(np.array([BOS, 4, 6, SEP, 6, 4, EOS,
                                       PAD])) == '<bos> 0 2 <sep> 2 0 <eos>'
