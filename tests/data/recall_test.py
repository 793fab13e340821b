"""Tests that the recall tasks follow their definitions (Zoology's MQAR invariants, Mamba's
selective copying and induction heads), are deterministic in their seed, refuse sizes that cannot be
generated in one line, and that a run on one reports recall accuracy at its test lengths."""

import json

import numpy as np
import pytest

from experiments.configs.base import get_base_config
from seqmodels import errors, validation
from seqmodels.data import recall
from seqmodels.report import tables
from seqmodels.train import loop


def _mqar(index, *, seq_len=64, kv_pairs=4, vocab=128, power_a=0.01, random_non_queries=False,
          seed=0):
  return recall.mqar(recall.split_rng(seed, 'train', index), seq_len=seq_len, kv_pairs=kv_pairs,
                     vocab=vocab, power_a=power_a, random_non_queries=random_non_queries)


def test_mqar_keeps_zoologys_invariants():
  V, T, P = 128, 64, 6
  for index in range(100):
    ex = _mqar(index, seq_len=T, kv_pairs=P, vocab=V)
    x, y = ex['inputs'], ex['targets']
    keys, values = x[0:2 * P:2], x[1:2 * P:2]
    assert len(x) == len(y) == T
    assert np.all((1 <= keys) & (keys < V // 2)) and np.all((V // 2 <= values) & (values < V))
    assert len(set(keys)) == P and len(set(values)) == P  # drawn without replacement
    scored = np.flatnonzero(y >= 0)
    assert len(scored) == P  # exactly one scored position per pair
    assert np.all(scored >= 2 * P) and np.all((scored - 2 * P) % 2 == 0)
    # each query is a key of the context, answered by its value; the rest of the tail is 0
    np.testing.assert_array_equal(y[scored], values[[list(keys).index(k) for k in x[scored]]])
    assert sorted(x[scored]) == sorted(keys)
    rest = np.ones(T, bool)
    rest[:2 * P], rest[scored] = False, False
    assert np.all(x[rest] == 0)


def test_mqar_query_gaps_follow_the_power_law():
  # one pair: the gap is one draw from p(g) ~ (g + 1)^(a - 1) over the (T - 2) / 2 slots
  T, n = 16, 2000
  gaps = [(np.flatnonzero(_mqar(i, seq_len=T, kv_pairs=1)['targets'] >= 0)[0] - 2) // 2
          for i in range(n)]
  p = recall.power_law(T // 2 - 1, 0.01)
  freq = np.bincount(gaps, minlength=len(p)) / n
  assert 0.5 * np.abs(freq - p).sum() < 0.04  # total variation
  assert p[0] > 2 * p[-1]  # the distribution is not uniform: nearby queries are likelier
  # a = 1 is uniform
  np.testing.assert_allclose(recall.power_law(7, 1.0), np.full(7, 1 / 7))


def test_mqar_random_non_queries_fill_only_the_zeros():
  plain, noisy = _mqar(3), _mqar(3, random_non_queries=True)
  kept = plain['inputs'] != 0
  np.testing.assert_array_equal(noisy['inputs'][kept], plain['inputs'][kept])
  assert np.any(noisy['inputs'][~kept] != 0)
  np.testing.assert_array_equal(noisy['targets'], plain['targets'])


def test_generators_are_deterministic_in_seed_split_and_index():
  a, b = _mqar(5), _mqar(5)
  np.testing.assert_array_equal(a['inputs'], b['inputs'])
  assert not np.array_equal(a['inputs'], _mqar(5, seed=1)['inputs'])
  assert not np.array_equal(a['inputs'], _mqar(6)['inputs'])


def test_selective_copying_scatters_data_tokens_and_copies_them_in_order():
  T, M, V = 40, 5, 8
  for index in range(50):
    ex = recall.selective_copying(recall.split_rng(0, 'train', index), seq_len=T, copy_tokens=M,
                                  vocab=V)
    x, y = ex['inputs'], ex['targets']
    data = x[:T - M][x[:T - M] != 0]
    assert len(data) == M and np.all((1 <= data) & (data < V - 1))
    assert np.all(x[T - M:] == V - 1)  # the markers
    np.testing.assert_array_equal(np.flatnonzero(y >= 0), np.arange(T - M, T))
    np.testing.assert_array_equal(y[T - M:], data)


def test_induction_heads_recall_the_token_after_the_special_one():
  T, V = 32, 6
  for index in range(50):
    ex = recall.induction_heads(recall.split_rng(0, 'train', index), seq_len=T, vocab=V)
    x, y = ex['inputs'], ex['targets']
    special = np.flatnonzero(x == V - 1)
    assert len(special) == 2 and special[-1] == T - 1 and special[0] <= T - 3
    np.testing.assert_array_equal(np.flatnonzero(y >= 0), [T - 1])
    assert y[-1] == x[special[0] + 1]


def _config(**data):
  c = get_base_config()
  c.data.name, c.data.seq_len, c.data.kv_pairs, c.data.num_symbols = 'mqar', 16, 2, 64
  c.data.num_train, c.data.num_validation, c.data.num_test = 64, 16, 16
  c.model.name, c.model.width, c.model.layers, c.model.heads, c.model.mlp = 'lm', 16, 1, 1, 'none'
  for k, v in data.items():
    *section, field = k.split('.')
    (c[section[0]] if section else c.data)[field] = v
  return c


@pytest.mark.parametrize('overrides, message', [
    ({'kv_pairs': 5}, 'MQAR needs an even length of at least 4 x kv_pairs = 20'),
    ({'eval_lens': '32,6'}, 'eval_lens length 6: MQAR needs an even length of at least 4 x kv'),
    ({'num_symbols': 8}, 'num_symbols=8 is too small for 2 distinct keys'),
    ({'eval_lens': '32,x'}, "eval_lens='32,x' must be positive lengths separated by commas"),
    ({'eval_lens': '32', 'model.position': 'learned'},
     "eval_lens='32' tests at 32 tokens, and model.name='lm' learns positions for "
     'data.seq_len=16 only'),
    ({'eval_lens': '32', 'model.name': 'gpt'}, "model.name='gpt' learns positions"),
    ({'name': 'selective_copying', 'copy_tokens': 9}, 'copy_tokens=9 does not fit length 16'),
    ({'name': 'induction_heads', 'num_symbols': 2}, 'num_symbols=2 leaves the special token'),
])
def test_sizes_that_cannot_be_generated_are_one_line(overrides, message):
  with pytest.raises(errors.ConfigError) as e:
    validation.validate(_config(**overrides))
  assert message in str(e.value) and '\n' not in str(e.value)


def test_a_run_reports_recall_accuracy_at_each_test_length(tmp_path):
  c = _config(eval_lens='16,48', data_dir=str(tmp_path / 'tfds'))
  c.optim.warmup_steps = 2
  c.train.num_steps, c.train.batch_size, c.train.eval_every = 2, 8, 2
  validation.validate(c)
  summary = loop.train_and_evaluate(c, str(tmp_path / 'run'))
  ev = summary['eval']
  assert ev['recall_accuracy'] == ev['accuracy']
  assert {'recall_accuracy_len16', 'recall_accuracy_len48', 'loss_len48'} <= set(ev)
  assert all(0 <= ev[k] <= 1 for k in ev if k.startswith('recall_accuracy'))
  # the training length's split and its len<n> split are different examples of one distribution
  assert ev['loss_len16'] == pytest.approx(ev['loss'], rel=0.5)
  runs = tables.load_runs([str(tmp_path / 'run')])
  assert 'final eval recall accuracy' in tables.markdown_table(runs)
  assert json.loads((tmp_path / 'run' / 'summary.json').read_text())['eval'] == ev
