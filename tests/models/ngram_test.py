"""Tests for seqmodels/models/ngram.py: normalisation, unigram smoothing, periodic data,
sparsity."""

import numpy as np
import pytest

from seqmodels.models import ngram

V = 11


def _markov_stream(n, seed=0, vocab=V):
  """A random first-order Markov chain with peaked transitions: structure for the model, yet sparse
  n-grams."""
  # one chain for every seed
  trans = np.random.default_rng(123).dirichlet(np.full(vocab, 0.3), size=vocab)
  rng = np.random.default_rng(seed)
  out = np.zeros(n, np.int64)
  for i in range(1, n):
    out[i] = rng.choice(vocab, p=trans[out[i - 1]])
  return out


def _batch(stream, B, T):
  """Rows of T+1 tokens cut from `stream`: inputs are the first T, targets the next T."""
  rows = stream[:B * (T + 1)].reshape(B, T + 1)
  return {'inputs': rows[:, :-1].astype(np.int32), 'targets': rows[:, 1:].astype(np.int32),
          'weights': np.ones((B, T), np.float32)}


@pytest.mark.parametrize('order,discount', [(1, None), (2, 0.75), (3, None), (4, None)])
def test_distribution_sums_to_one_for_seen_and_unseen_contexts(order, discount):
  train = _markov_stream(400)
  lm = ngram.fit(train, order, V, discount=discount)
  seen = _batch(_markov_stream(300, seed=1), 4, 20)
  # Contexts made of token 10 repeated and a token never in training (id 10 removed) are unseen at
  # every order.
  lm_missing = ngram.fit(np.where(train == 10, 0, train), order, V, discount=discount)
  unseen = {'inputs': np.full((2, 6), 10, np.int32), 'targets': np.full((2, 6), 10, np.int32),
            'weights': np.ones((2, 6), np.float32)}
  for model, batch in ((lm, seen), (lm_missing, unseen), (lm_missing, seen)):
    dist = model.distribution(batch)
    np.testing.assert_allclose(dist.sum(-1), 1.0, atol=1e-12)
    assert (dist > 0).all()
    picked = np.take_along_axis(dist, batch['targets'][..., None].astype(np.int64), -1)[..., 0]
    np.testing.assert_allclose(model.prob(batch), picked, rtol=1e-12)
  if order > 1:
    assert lm_missing.unseen_context_fraction(unseen)[2] == 1.0


def test_unigram_is_absolutely_discounted_counts_interpolated_with_uniform():
  train = np.array([0, 0, 0, 1, 1, 2, 0, 1, 4, 4])  # token 3 never occurs
  D = 0.5
  lm = ngram.fit(train, 1, 5, discount=D)
  counts = np.bincount(train, minlength=5).astype(float)
  expected = np.maximum(counts - D, 0) / counts.sum() + D * (counts > 0).sum() / counts.sum() / 5
  batch = {'inputs': np.zeros((1, 5), np.int32), 'targets': np.arange(5, dtype=np.int32)[None],
           'weights': np.ones((1, 5), np.float32)}
  np.testing.assert_allclose(lm.prob(batch)[0], expected, rtol=1e-12)
  np.testing.assert_allclose(lm.nll(batch)[0], -np.log(expected), rtol=1e-12)


def test_trigram_on_a_periodic_sequence_reaches_near_zero_loss():
  # Period 6 with repeated tokens, so one previous token is ambiguous (after 0 comes 1 or 2) but two
  # are not.
  period = np.array([0, 1, 0, 2, 3, 3])
  train = np.tile(period, 500)
  test = _batch(np.tile(period, 40)[1:], 4, 50)
  test['weights'][:, :2] = 0.0  # the first two targets of a row lack a full 2-token context
  sums3 = ngram.fit(train, 3, V).eval_sums(test)
  sums2 = ngram.fit(train, 2, V).eval_sums(test)
  assert sums3['nll'] / sums3['tokens'] < 0.01
  assert sums3['correct'] == sums3['tokens'] and sums3['sequences_correct'] == 4
  assert sums2['nll'] / sums2['tokens'] > 0.1  # a bigram cannot resolve the ambiguity


def test_eval_sums_match_weighted_nll_and_argmax_accuracy():
  lm = ngram.fit(_markov_stream(500), 3, V)
  batch = _batch(_markov_stream(400, seed=2), 5, 16)
  batch['weights'][1, 10:] = 0.0
  sums = lm.eval_sums(batch)
  nll = lm.nll(batch)
  right = lm.distribution(batch).argmax(-1) == batch['targets']
  assert sums.keys() >= {'nll', 'tokens', 'correct'}
  np.testing.assert_allclose(sums['nll'], (nll * batch['weights']).sum())
  assert sums['tokens'] == batch['weights'].sum()
  assert sums['correct'] == (right * batch['weights']).sum()


def test_contexts_do_not_cross_rows():
  lm = ngram.fit(_markov_stream(500), 3, V)
  batch = _batch(_markov_stream(400, seed=3), 3, 8)
  one_row = {k: v[1:2] for k, v in batch.items()}
  np.testing.assert_allclose(lm.nll(batch)[1], lm.nll(one_row)[0])


def test_unseen_context_fraction_grows_with_order():
  lm = ngram.fit(_markov_stream(2000), 6, V)
  frac = lm.unseen_context_fraction(_batch(_markov_stream(2000, seed=4), 20, 40))
  assert sorted(frac) == [2, 3, 4, 5, 6]
  assert frac[2] == 0.0  # every token occurs in training
  values = [frac[k] for k in sorted(frac)]
  assert all(a < b for a, b in zip(values[1:], values[2:]))
  assert values[-1] > 0.3


def test_modified_discounts_are_estimated_from_counts_of_counts():
  lm = ngram.fit(_markov_stream(3000), 3, V)
  for tab in lm.tables:
    d1, d2, d3 = tab.discounts
    assert 0 < d1 <= 1 and 0 < d2 <= 2 and 0 < d3 <= 3


def test_tokens_outside_the_vocabulary_are_rejected():
  with pytest.raises(ValueError, match='vocab_size'):
    ngram.fit(np.array([0, 1, 12]), 2, V)


def test_bigram_beats_unigram_on_first_order_markov_data():
  train, test = _markov_stream(3000), _batch(_markov_stream(1000, seed=5), 10, 50)
  loss = lambda n: (lambda s: s['nll'] / s['tokens'])(ngram.fit(train, n, V).eval_sums(test))
  assert loss(2) < loss(1) - 0.3


@pytest.mark.parametrize('order,discount,vocab',
                         [(1, None, V), (2, 0.5, V), (3, None, V), (4, None, 40)])
def test_sparse_argmax_is_the_dense_distributions_argmax(order, discount, vocab):
  rng = np.random.default_rng(order)
  # half the vocabulary never seen: ties at the unigram floor
  train = rng.integers(0, vocab // 2, 3000)
  lm = ngram.fit(train, order, vocab, discount=discount)
  batch = _batch(np.concatenate([_markov_stream(300, seed=5), rng.integers(0, vocab, 300)]), 12, 40)
  np.testing.assert_array_equal(lm.argmax(batch), lm.distribution(batch).argmax(-1))
