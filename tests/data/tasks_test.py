"""Tests that each synthetic task generator matches its definition and is reproducible."""

import chex
import numpy as np
import pytest

from seqmodels.data import tasks

LENGTHS = {'min_len': 3, 'max_len': 9}


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
