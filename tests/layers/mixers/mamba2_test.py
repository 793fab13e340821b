"""Mamba-2 (layers/mixers/mamba2.py): the paper's recurrence, its forms, its inits, its refusals."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqmodels.layers.mixers import MIXERS
from seqmodels.layers.mixers import mamba2
from seqmodels.layers.mixers.base import MixerConfig

B, T = 2, 11  # T not a multiple of the chunk: the chunked form pads


def _cfg(**fields) -> MixerConfig:
  return MixerConfig(**{'D': 6, 'H': 3, 'd_state': 5, 'expand': 2, 'conv': 3, 'chunk': 4, **fields})


def _silu(a):
  return a / (1.0 + np.exp(-a))


def _reference(p, u_BxTxD, c: MixerConfig):
  """Mamba-2 from the paper's equations, a step at a time in numpy float64: (y_BxTxD, h_BxHxPxN)."""
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), p)
  E, H, N, W = c.expand * c.D, c.H, c.d_state, c.conv
  P = E // H
  proj = u_BxTxD @ p['in_proj']['kernel']
  z, xbc, dt_raw = proj[..., :E], proj[..., E:2 * E + 2 * N], proj[..., 2 * E + 2 * N:]
  padded = np.concatenate([np.zeros((B, W - 1, xbc.shape[-1])), xbc], axis=1)
  kernel = p['conv_kernel']
  conv = np.stack([sum(kernel[j] * padded[:, t + j] for j in range(W)) for t in range(T)], 1)
  xbc = _silu(conv + p['conv_bias'])
  x, b, cc = xbc[..., :E].reshape(B, T, H, P), xbc[..., E:E + N], xbc[..., E + N:]
  dt = np.log1p(np.exp(dt_raw + p['dt_bias']))  # softplus
  A = -np.exp(p['A_log'])
  h = np.zeros((B, H, P, N))
  y = np.zeros((B, T, H, P))
  for t in range(T):
    for i in range(H):
      h[:, i] = (np.exp(dt[:, t, i] * A[i])[:, None, None] * h[:, i]
                 + dt[:, t, i, None, None] * x[:, t, i, :, None] * b[:, t, None, :])
      y[:, t, i] = np.einsum('bpn,bn->bp', h[:, i], cc[:, t]) + p['D'][i] * x[:, t, i]
  g = y.reshape(B, T, E) * _silu(z)
  g = g / np.sqrt(np.mean(g * g, -1, keepdims=True) + mamba2.NORM_EPS) * p['norm']['scale']
  return g @ p['out_proj']['kernel'], h


def _float64_params(c: MixerConfig, u):
  """The mixer's parameters in float64, each moved off its init so that none hides a term."""
  params = mamba2.Mamba2(c).init(jax.random.PRNGKey(0), u)['params']
  leaves, tree = jax.tree.flatten(params)
  rng = np.random.default_rng(1)
  leaves = [np.asarray(a, np.float64) * rng.uniform(0.5, 1.5, a.shape) + rng.normal(0, 0.1, a.shape)
            for a in leaves]
  params = jax.tree.unflatten(tree, leaves)
  params['in_proj']['kernel'] = params['in_proj']['kernel'] * 10  # inputs of size ~1 to the SSM
  return params


def test_every_form_computes_the_papers_recurrence_with_the_same_gradients():
  with jax.enable_x64(True):
    u = np.random.default_rng(0).normal(size=(B, T, 6))
    c = _cfg(dtype=jnp.float64)
    params = _float64_params(c, u)
    want_y, want_h = _reference(params, u, c)
    grads = []
    for form in mamba2.FORMS:
      m = mamba2.Mamba2(_cfg(dtype=jnp.float64, scan=form))
      y = m.apply({'params': params}, u)
      chex.assert_shape(y, (B, T, 6))
      # The gated RMSNorm (layers/norms.py) computes in float32 whatever the input: ~1e-7 relative.
      np.testing.assert_allclose(y, want_y, rtol=1e-5, atol=1e-6)
      # From a zeroed cache, the whole sequence as a prefill: the outputs, and the final state.
      cache = m.init(jax.random.PRNGKey(0), u, decode_position=0)['cache']
      y_prefill, mutated = m.apply({'params': params, 'cache': cache}, u, decode_position=0,
                                   mutable=['cache'])
      np.testing.assert_allclose(y_prefill, y, rtol=1e-12, atol=1e-12)
      chex.assert_shape(mutated['cache']['ssm_state'], (B, 3, 4, 5))
      np.testing.assert_allclose(mutated['cache']['ssm_state'], want_h, rtol=1e-10, atol=1e-12)
      loss = lambda p, u, m=m: jnp.sum(jnp.sin(m.apply({'params': p}, u)))
      grads.append(jax.grad(loss, argnums=(0, 1))(params, u))
    for a, b in zip(*map(jax.tree.leaves, grads)):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_decoding_a_token_at_a_time_continues_a_prefill():
  c = _cfg()
  u = jnp.asarray(np.random.default_rng(2).normal(size=(B, T, 6)), jnp.float32)
  m = mamba2.Mamba2(c)
  variables = m.init(jax.random.PRNGKey(3), u, decode_position=0)
  params, cache = variables['params'], jax.tree.map(jnp.zeros_like, variables['cache'])
  want = m.apply({'params': params}, u)
  y, mutated = m.apply({'params': params, 'cache': cache}, u[:, :4], decode_position=0,
                       mutable=['cache'])
  step = jax.jit(lambda cache, u_Bx1xD, t: m.apply({'params': params, 'cache': cache}, u_Bx1xD,
                                                   decode_position=t, mutable=['cache']))
  steps = [y]
  for t in range(4, T):
    y, mutated = step(mutated['cache'], u[:, t:t + 1], t)
    steps.append(y)
  np.testing.assert_allclose(jnp.concatenate(steps, 1), want, rtol=1e-5, atol=1e-6)


def test_initialisation_follows_the_reference():
  c = _cfg(D=256, H=512, N=3)  # 512 heads of one channel: a sample of each per-head init
  params = mamba2.Mamba2(c).init(jax.random.PRNGKey(0), jnp.zeros((1, 2, 256)))['params']
  A = np.exp(params['A_log'])  # A = -exp(A_log) ~ -U[1, 16]
  assert A.min() >= 1.0 and A.max() <= 16.0
  assert abs(A.mean() - 8.5) < 0.6 and abs(A.std() - 15 / 12 ** .5) < 0.4
  dt = np.asarray(jax.nn.softplus(params['dt_bias']))  # log dt ~ U[log 1e-3, log 0.1]
  assert dt.min() >= 1e-3 * (1 - 1e-5) and dt.max() <= 0.1 * (1 + 1e-5)
  assert abs(np.log(dt).mean() - np.log(1e-2)) < 0.15
  assert abs(np.log(dt).std() - np.log(100) / 12 ** .5) < 0.15
  # The bias is the inverse softplus of dt = max(exp(U), 1e-4), U drawn from the same key.
  key = jax.random.PRNGKey(7)
  u = jax.random.uniform(key, (512,), jnp.float32, np.log(1e-3), np.log(0.1))
  dt_bias = mamba2.dt_bias_init(key, (512,))
  np.testing.assert_allclose(jax.nn.softplus(dt_bias), np.exp(u), rtol=1e-5)
  np.testing.assert_array_equal(params['D'], np.ones(512))
  np.testing.assert_array_equal(params['norm']['scale'], np.ones(512))
  np.testing.assert_array_equal(params['conv_bias'], np.zeros(512 + 2 * 5))
  assert abs(np.std(params['in_proj']['kernel']) - 0.02) < 1e-3  # the backbone's projections
  assert abs(np.std(params['out_proj']['kernel']) - 0.02 / 6 ** .5) < 5e-4  # 0.02 / sqrt(2N)
  assert 'bias' not in params['in_proj'] and 'bias' not in params['out_proj']


def test_state_bytes_are_the_bytes_of_the_cache():
  c = _cfg()
  u = jnp.zeros((B, T, 6))
  cache = mamba2.Mamba2(c).init(jax.random.PRNGKey(0), u, decode_position=0)['cache']
  assert sorted(cache) == ['conv_state', 'ssm_state']
  chex.assert_shape(cache['conv_state'], (B, 2, 12 + 2 * 5))  # last conv - 1 inputs of [x, B, C]
  assert sum(a.nbytes for a in jax.tree.leaves(cache)) == MIXERS['mamba2'].state_bytes(c, B, T)


def test_bad_sizes_and_forms_are_refused_in_one_line():
  u = jnp.zeros((1, 2, 6))
  with pytest.raises(ValueError) as heads:
    mamba2.Mamba2(_cfg(H=5)).init(jax.random.PRNGKey(0), u)
  assert str(heads.value) == 'mamba2: inner width expand * D = 12 does not split into H = 5 heads'
  with pytest.raises(ValueError) as form:
    mamba2.Mamba2(_cfg(scan='associative')).init(jax.random.PRNGKey(0), u)
  want = "mamba2 has no 'associative' scan form: set scan to auto, sequential or chunked"
  assert str(form.value) == want
