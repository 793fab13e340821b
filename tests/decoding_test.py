"""Decoding: greedy = beam search with one beam; beam search finds the best sequence; sampling
respects its filters."""

import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np

from seqmodels import decoding

EOS = 2


def _markov_step(table_VxVxV):
  """A second-order model: log p(next | prev, last) = table[prev, last]; `prev` lives in the cache
  [B]."""
  table = jnp.asarray(table_VxVxV, jnp.float32)

  def step_fn(last_B, cache, t):
    logits_BxV = table[cache['prev'], last_B]
    return logits_BxV, {'prev': last_B, 'steps': cache['steps'] + 1}

  return step_fn


def _random_table(seed, V):
  return np.log(np.random.default_rng(seed).dirichlet(np.ones(V) * 0.5, size=(V, V)))


def _cache(first_B):
  return {'prev': jnp.zeros_like(first_B), 'steps': jnp.zeros(())}  # rank-0 leaf: passed through


def _best_by_enumeration(table, first, max_len, alpha):
  """Exhaustive search over all sequences that end in EOS within max_len (plus full-length ones)."""
  V = table.shape[0]
  best, best_seq = -np.inf, None
  for n in range(1, max_len + 1):
    for seq in itertools.product(range(V), repeat=n):
      if EOS in seq[:-1] or (seq[-1] != EOS and n < max_len):
        continue
      prev, last, logp = 0, first, 0.0
      for tok in seq:
        logp += table[prev, last, tok] - np.log(np.exp(table[prev, last]).sum())
        prev, last = last, tok
      score = logp / ((5 + n) / 6) ** alpha
      if score > best:
        best, best_seq = score, list(seq) + [0] * (max_len - n)
  return best_seq, best


def test_greedy_equals_beam_search_with_one_beam_and_pads_after_eos():
  V, L = 6, 7
  step_fn = _markov_step(_random_table(0, V))

  @jax.jit
  def run(first_B):
    return (decoding.greedy(step_fn, _cache(first_B), first_B, L, eos_id=EOS),
            decoding.beam_search(step_fn, _cache(first_B), first_B, L, 1, length_penalty=0.0,
                                 eos_id=EOS)[0],
            decoding.greedy(step_fn, _cache(first_B), first_B, L),
            decoding.beam_search(step_fn, _cache(first_B), first_B, L, 1)[0],
            decoding.beam_search(step_fn, _cache(first_B), first_B, L, 3, eos_id=EOS)[0])

  g, b, g_no_eos, b_no_eos, beams = run(jnp.array([1, 3, 4, 5, 1, 0], jnp.int32))
  chex.assert_shape(g, (6, L))
  chex.assert_shape(b, (6, 1, L))
  chex.assert_shape(beams, (6, 3, L))
  np.testing.assert_array_equal(g, b[:, 0])
  # without EOS the length penalty cannot matter
  np.testing.assert_array_equal(g_no_eos, b_no_eos[:, 0])
  assert np.any(g == EOS) and np.any(g_no_eos == EOS)  # EOS ends rows only when eos_id is given
  for row in np.concatenate([np.asarray(g), np.asarray(beams).reshape(-1, L)]):
    if EOS in row:
      assert np.all(row[list(row).index(EOS) + 1:] == 0)


def test_beam_search_finds_the_best_sequence_where_greedy_does_not():
  # From BOS(1): a(3) 0.55, b(4) 0.45; after a: EOS 0.4; after b: EOS 0.95. Greedy takes a (0.22 in
  # the end), the best sequence is b EOS (0.4275).
  V = 5
  p = np.full((V, V, V), 1e-6)
  p[:, 1, [3, 4]] = [0.55, 0.45]
  p[:, 3, [EOS, 3, 4]] = [0.4, 0.3, 0.3]
  p[:, 4, [EOS, 3, 4]] = [0.95, 0.025, 0.025]
  p[:, [0, EOS], 0] = 1.0
  table = np.log(p / p.sum(-1, keepdims=True))
  step_fn = _markov_step(table)
  first_B = jnp.array([1], jnp.int32)
  greedy = decoding.greedy(step_fn, _cache(first_B), first_B, 4, eos_id=EOS)
  np.testing.assert_array_equal(greedy[0], [3, EOS, 0, 0])
  tokens, scores = decoding.beam_search(step_fn, _cache(first_B), first_B, 4, 2, length_penalty=0.0,
                                        eos_id=EOS)
  np.testing.assert_array_equal(tokens[0, 0], [4, EOS, 0, 0])
  np.testing.assert_allclose(scores[0, 0], np.log(0.45 * 0.95), rtol=1e-4)
  assert scores[0, 0] >= scores[0, 1]


def test_wide_beam_search_matches_exhaustive_search():
  V, L = 4, 3
  table = _random_table(3, V)
  step_fn = _markov_step(table)
  first_B = jnp.array([1, 3], jnp.int32)
  run = jax.jit(lambda f: [decoding.beam_search(step_fn, _cache(f), f, L, V ** (L - 1),
                                                length_penalty=alpha, eos_id=EOS)
                           for alpha in (0.0, 0.6)])
  for alpha, (tokens, scores) in zip((0.0, 0.6), run(first_B)):
    for b, first in enumerate([1, 3]):
      seq, score = _best_by_enumeration(table, first, L, alpha)
      np.testing.assert_array_equal(tokens[b, 0], seq)
      np.testing.assert_allclose(scores[b, 0], score, rtol=1e-4)


def test_top_k_and_top_p_never_sample_outside_the_allowed_set():
  probs = np.array([0.5, 0.2, 0.15, 0.1, 0.05])
  logits_BxV = jnp.broadcast_to(jnp.log(probs), (2, 5))
  for kwargs, allowed in [({'top_k': 2}, {0, 1}), ({'top_p': 0.6}, {0, 1}),
                          ({'top_p': 0.8}, {0, 1, 2}), ({'top_k': 3, 'top_p': 0.95}, {0, 1, 2}),
                          ({'top_p': 0.3}, {0})]:
    kept = np.asarray(decoding.filter_logits(logits_BxV, **kwargs)[0] > decoding.NEG_INF / 2)
    assert set(np.flatnonzero(kept).tolist()) == allowed, kwargs
  step_fn = lambda last_B, cache, t: (jnp.broadcast_to(jnp.log(probs), (last_B.shape[0], 5)), cache)
  first_B = jnp.zeros((1000,), jnp.int32)
  run = jax.jit(
      lambda r: (decoding.sample(step_fn, None, first_B, 2, r, top_k=2),
                 decoding.sample(step_fn, None, first_B, 2, r, temperature=2.0, top_p=0.8)))
  top_k, top_p = run(jax.random.PRNGKey(0))
  assert set(np.unique(top_k).tolist()) == {0, 1}
  # The nucleus is taken after the temperature: at T=2 p ~ sqrt(probs), and 0.8 of it needs four
  # tokens.
  assert set(np.unique(top_p).tolist()) == {0, 1, 2, 3}


def test_sampling_at_temperature_zero_is_greedy():
  step_fn = _markov_step(_random_table(2, 6))
  first_B = jnp.array([1, 2, 3, 4, 5], jnp.int32)
  run = jax.jit(lambda f, r: [decoding.greedy(step_fn, _cache(f), f, 6, eos_id=EOS)] + [
      decoding.sample(step_fn, _cache(f), f, 6, r, temperature=t, eos_id=EOS) for t in (0.0, 1e-4)])
  greedy, *sampled = run(first_B, jax.random.PRNGKey(1))
  for s in sampled:
    np.testing.assert_array_equal(s, greedy)
