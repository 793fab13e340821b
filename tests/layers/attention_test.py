"""Source attention (Bahdanau additive, Luong general/dot): weights are a distribution that ignores
padding."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqmodels.layers.attention import SOURCE_SCORES, SourceAttention, masked_softmax

B, T, S, E = 2, 3, 6, 8


def _inputs(seed=0):
  rng = np.random.default_rng(seed)
  h = jnp.asarray(rng.normal(size=(B, S, E)), jnp.float32)
  s = jnp.asarray(rng.normal(size=(B, T, E)), jnp.float32)
  mask = jnp.arange(S)[None, :] < jnp.array([[S], [3]])
  return h, s, mask


def _run(score, h, s, mask):
  attn = SourceAttention(score, A=E)
  params = attn.init(jax.random.PRNGKey(0), h, method=lambda m, h: m(s, m.keys(h), h, mask))
  def apply(h):
    keys = attn.apply(params, h, method=SourceAttention.keys)
    return attn.apply(params, s, keys, h, mask)
  return params, apply


@pytest.mark.parametrize('score', SOURCE_SCORES)
def test_weights_sum_to_one_and_padding_gets_none(score):
  h, s, mask = _inputs()
  _, apply = _run(score, h, s, mask)
  context, weights = apply(h)
  chex.assert_shape(context, (B, T, E))
  chex.assert_shape(weights, (B, T, S))
  np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-6)
  assert np.all(np.asarray(weights)[1, :, 3:] == 0.0)
  # Whatever sits in the padded positions, the context is the same.
  h_noise = h.at[1, 3:].set(100.0)
  context2, weights2 = apply(h_noise)
  np.testing.assert_allclose(context2, context, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(weights2, weights, rtol=1e-6, atol=1e-7)


def test_scores_follow_their_formulas():
  h, s, mask = _inputs(1)
  params, apply = _run('additive', h, s, mask)
  p = params['params']
  scores = jnp.einsum('btsa,a->bts',
                      jnp.tanh((h @ p['w1']['kernel'])[:, None] +
                               (s @ p['w2']['kernel'] + p['w2']['bias'])[:, :, None]),
                      p['v'])  # v^T tanh(W1 h + W2 s)
  np.testing.assert_allclose(apply(h)[1], masked_softmax(scores, mask), rtol=1e-5, atol=1e-6)
  params, apply = _run('general', h, s, mask)
  W = params['params']['w']['kernel']
  np.testing.assert_allclose(apply(h)[1],
                             masked_softmax(jnp.einsum('bse,eq,btq->bts', h, W, s), mask),
                             rtol=1e-5, atol=1e-6)  # h^T W s
  _, apply = _run('dot', h, s, mask)
  np.testing.assert_allclose(apply(h)[1], masked_softmax(jnp.einsum('bse,bte->bts', h, s), mask),
                             rtol=1e-5, atol=1e-6)
