"""Tests of core.Data's batching contract: process splits, exact resume, epochs, eval padding,
streams, caching."""

import itertools

import chex
import numpy as np
import pytest

from seqmodels import errors
from seqmodels.data import core
from seqmodels.data import registry
from seqmodels.data import tasks


def _ids_data(num_examples: int) -> core.Data:
  """A Data whose train/validation examples are just their index, to track rows."""
  examples = core.Examples(num_examples, lambda indices: {
      'id': indices.astype(np.int32), 'weights': np.ones((len(indices), 2), np.float32)})
  return core.Data('lm', 1, 2, {'train': examples, 'validation': examples})


def _take(batches, n):
  return list(itertools.islice(batches, n))


def test_two_processes_concatenated_equal_one_process_with_the_global_batch(reverse_data):
  single = _take(reverse_data.train_batches(batch_size=6, start_step=0, seed=5), 10)
  halves = [_take(reverse_data.train_batches(batch_size=3, start_step=0, seed=5, process_index=p,
                                             process_count=2), 10) for p in range(2)]
  for step in range(10):  # 10 steps of 6 rows span epochs of 40 examples.
    chex.assert_trees_all_equal(
        single[step], {k: np.concatenate([halves[0][step][k], halves[1][step][k]])
                       for k in single[step]})


def test_resuming_at_step_k_continues_the_same_batches(reverse_data):
  full = _take(reverse_data.train_batches(batch_size=4, start_step=0, seed=1), 15)
  resumed = _take(reverse_data.train_batches(batch_size=4, start_step=9, seed=1), 6)
  chex.assert_trees_all_equal(full[9:], resumed)
  multi = _take(reverse_data.train_batches(batch_size=2, start_step=9, seed=1, process_index=1,
                                           process_count=2), 6)
  chex.assert_trees_all_equal([{k: v[2:] for k, v in b.items()} for b in full[9:]], multi)


def test_train_stream_visits_every_example_once_per_epoch_reshuffled():
  data = _ids_data(12)
  ids = np.concatenate([b['id'] for b in _take(data.train_batches(batch_size=4, start_step=0,
                                                                  seed=0), 9)])
  epochs = ids.reshape(3, 12)
  for epoch in epochs:
    assert sorted(epoch.tolist()) == list(range(12))
  assert len({tuple(e) for e in epochs}) == 3  # A new permutation each epoch.
  again = np.concatenate([b['id'] for b in _take(data.train_batches(batch_size=4, start_step=0,
                                                                    seed=0), 9)])
  np.testing.assert_array_equal(ids, again)
  other = np.concatenate([b['id'] for b in _take(data.train_batches(batch_size=4, start_step=0,
                                                                    seed=1), 3)])
  assert not np.array_equal(ids[:12], other)


@pytest.mark.parametrize('process_count,batch_size', [(1, 4), (2, 3), (3, 2)])
def test_eval_covers_each_example_once_across_processes_with_zero_weight_padding(
    process_count, batch_size):
  data = _ids_data(11)
  per_process = [list(data.eval_batches(batch_size=batch_size, process_index=p,
                                        process_count=process_count))
                 for p in range(process_count)]
  assert len({len(batches) for batches in per_process}) == 1  # Same number of steps everywhere.
  seen = []
  for batches in per_process:
    for batch in batches:
      chex.assert_shape(batch['weights'], (batch_size, 2))
      real = batch['weights'][:, 0] == 1
      assert np.all(batch['weights'][~real] == 0)
      seen += batch['id'][real].tolist()
  assert sorted(seen) == list(range(11))


def test_eval_batches_are_the_split_in_order_and_stop_at_max_batches(reverse_data):
  batches = list(reverse_data.eval_batches(batch_size=4, split='validation'))
  assert len(batches) == 3  # 11 examples -> 4 + 4 + 3 and one padding row.
  for index in range(11):
    ex = tasks.seq_example('reverse', seed=0, split='validation', index=index, min_len=1,
                           max_len=6, num_symbols=5)
    expected = tasks.format_seq_example(ex['inputs'], ex['targets'], max_len=6)
    chex.assert_trees_all_equal({k: v[index % 4] for k, v in batches[index // 4].items()},
                                expected)
  assert not batches[-1]['weights'][-1].any()
  assert len(list(reverse_data.eval_batches(batch_size=4, max_batches=2))) == 2
  with pytest.raises(ValueError, match='No split'):
    reverse_data.eval_batches(batch_size=4, split='dev')


def test_streamed_splits_batch_exactly_like_cached_ones(reverse_cfg, reverse_data, monkeypatch):
  monkeypatch.setattr(core, 'MAX_CACHED_EXAMPLES', 0)
  streamed = registry.load(reverse_cfg)
  kwargs = dict(batch_size=7, start_step=3, seed=2, process_index=1, process_count=2)
  chex.assert_trees_all_equal(_take(reverse_data.train_batches(**kwargs), 8),
                              _take(streamed.train_batches(**kwargs), 8))
  chex.assert_trees_all_equal(list(reverse_data.eval_batches(batch_size=4)),
                              list(streamed.eval_batches(batch_size=4)))


def test_stream_batches_read_every_stream_in_order_and_score_each_eval_token_once():
  data = core.Data('lm', 200, 4, tokens={'train': np.arange(103), 'validation': np.arange(57)})
  # Training: 4 streams (2 rows x 2 processes) of 103 // 4 = 25 tokens, (25 - 1) // 4 = 6 windows an
  # epoch.
  both = [list(itertools.islice(data.stream_batches(batch_size=2, process_index=p, process_count=2),
                                8)) for p in range(2)]
  for step in range(8):
    k = step % 6
    inputs = np.concatenate([both[0][step]['inputs'], both[1][step]['inputs']])
    np.testing.assert_array_equal(inputs, 25 * np.arange(4)[:, None] + 4 * k + np.arange(4))
    np.testing.assert_array_equal(both[1][step]['targets'],
                                  25 * np.arange(2, 4)[:, None] + 4 * k + 1 + np.arange(4))
    np.testing.assert_array_equal(both[0][step]['reset'], [float(k == 0)] * 2)
  resumed = next(data.stream_batches(batch_size=2, start_step=7, process_index=1, process_count=2))
  chex.assert_trees_all_equal(resumed, both[1][7])
  assert data.steps_per_epoch(4, streams=True) == 6  # train.num_epochs counts these epochs
  # Evaluation: 2 streams of 28 tokens, ceil(27 / 4) = 7 windows, the last one with 3 targets: every
  # token but the streams' first (0 and 28) and the one left over (56) is scored once.
  batches = list(data.stream_batches(batch_size=2, split='validation'))
  assert len(batches) == 7 and 'reset' not in batches[0]
  scored = np.concatenate([b['targets'][b['weights'] > 0] for b in batches])
  np.testing.assert_array_equal(np.sort(scored), [t for t in range(57) if t not in (0, 28, 56)])
  np.testing.assert_array_equal(batches[-1]['weights'], [[1, 1, 1, 0]] * 2)
  assert len(list(data.stream_batches(batch_size=2, split='validation', max_batches=3))) == 3
  with pytest.raises(errors.DataError,
                     match=r'its 103 tokens in 32 streams \(config.train.batch_size\) are 3 '
                     r'tokens each, fewer than one window of config.data.seq_len \+ 1 = 5 tokens'):
    next(data.stream_batches(batch_size=32))
  with pytest.raises(ValueError, match="the 'test' split is not running text"):
    next(data.stream_batches(batch_size=2, split='test'))
