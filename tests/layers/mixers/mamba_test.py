"""Mamba-1 computes the paper's selective scan in every form, decodes from its cache, and starts
from the reference's initialisation."""

import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqmodels.layers.mixers import MIXERS, MixerConfig, mamba

B, T = 2, 7


def _mamba_numpy(p, u, h0=None, past=None):
  """The paper's equations a step at a time, numpy float64: (out, h_T, the conv's last inputs)."""
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), p)
  Bsz, T, D = u.shape
  E, N = p['A_log'].shape
  K, R = p['conv_kernel'].shape[0], p['dt_proj']['kernel'].shape[0]
  silu = lambda v: v / (1 + np.exp(-v))
  xz = np.asarray(u, np.float64) @ p['in_proj']['kernel']
  xs = np.concatenate([np.zeros((Bsz, K - 1, E)) if past is None else past, xz[..., :E]], 1)
  h = np.zeros((Bsz, E, N)) if h0 is None else np.asarray(h0, np.float64)
  A = -np.exp(p['A_log'])
  out = np.zeros((Bsz, T, D))
  for t in range(T):
    x = silu(np.einsum('bke,ke->be', xs[:, t:t + K], p['conv_kernel']) + p['conv_bias'])
    dbc = x @ p['x_proj']['kernel']
    dt = np.log1p(np.exp(dbc[:, :R] @ p['dt_proj']['kernel'] + p['dt_proj']['bias']))  # softplus
    b_t, c_t = dbc[:, R:R + N], dbc[:, R + N:]
    h = np.exp(dt[..., None] * A) * h + (dt * x)[..., None] * b_t[:, None, :]
    y = np.einsum('ben,bn->be', h, c_t) + p['D'] * x
    out[:, t] = (y * silu(xz[:, t, E:])) @ p['out_proj']['kernel']
  return out, h, xs[:, T:]


def _setup(scan='sequential', dtype=jnp.float64, **fields):
  # chunks of 3 steps: the fused form carries h across chunks and pads the last
  cfg = MixerConfig(D=8, d_state=3, expand=2, conv=4, scan=scan, dtype=dtype, chunk=3, **fields)
  u = jnp.asarray(np.random.default_rng(0).normal(size=(B, T, cfg.D)), dtype)
  params = jax.jit(mamba.Mamba(cfg).init)(jax.random.PRNGKey(0), u)['params']
  params = jax.tree.map(lambda a: a.astype(dtype), params)
  # A spread of decays and of dt, so that the scan's terms all matter.
  params['dt_proj']['bias'] = params['dt_proj']['bias'] + 1.0
  return cfg, u, params


@pytest.mark.parametrize('form', mamba.FORMS)
def test_training_form_equals_the_papers_recurrence_in_float64(form):
  with jax.enable_x64(True):
    cfg, u, params = _setup(form)
    out = jax.jit(mamba.Mamba(cfg).apply)({'params': params}, u)
    chex.assert_shape(out, (B, T, cfg.D))
    assert out.dtype == jnp.float64
    np.testing.assert_allclose(out, _mamba_numpy(params, u)[0], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize('form', mamba.FORMS)
def test_a_prefill_then_steps_carry_the_state_and_the_conv_inputs(form):
  with jax.enable_x64(True):
    cfg, u, params = _setup(form)
    model = mamba.Mamba(cfg)
    cache = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), u, decode_position=0)['cache'])
    cache = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), cache)
    step = jax.jit(lambda cache, x, p: model.apply({'params': params, 'cache': cache}, x,
                                                   decode_position=p, mutable=['cache']))
    chex.assert_shape(cache['ssm_state'], (B, 2 * cfg.D, cfg.d_state))
    chex.assert_shape(cache['conv_state'], (B, cfg.conv - 1, 2 * cfg.D))
    outs, P = [], 3
    for start, stop in [(0, P)] + [(t, t + 1) for t in range(P, T)]:
      out, mutated = step(cache, u[:, start:stop], start)
      outs.append(out)
      cache = mutated['cache']
    want, h_T, last_inputs = _mamba_numpy(params, u)
    np.testing.assert_allclose(jnp.concatenate(outs, 1), want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cache['ssm_state'], h_T, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cache['conv_state'], last_inputs, rtol=1e-10, atol=1e-12)


def test_every_scan_form_gives_the_same_gradients():
  with jax.enable_x64(True):
    _, u, params = _setup()
    grads = []
    for form in mamba.FORMS:
      cfg = MixerConfig(D=8, d_state=3, expand=2, conv=4, scan=form, dtype=jnp.float64, chunk=3)
      loss = lambda p, x: jnp.sum(jnp.sin(mamba.Mamba(cfg).apply({'params': p}, x)))
      grads.append(jax.jit(jax.grad(loss, argnums=(0, 1)))(params, u))
    for other in grads[1:]:
      for a, b in zip(jax.tree.leaves(grads[0]), jax.tree.leaves(other)):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    assert mamba.scan_form('auto') == 'chunked'


def test_a_bfloat16_compute_dtype_gives_bfloat16_within_3_percent_of_float32():
  cfg32, u, params = _setup(dtype=jnp.float32)
  cfg16 = MixerConfig(D=8, d_state=3, expand=2, conv=4, dtype=jnp.bfloat16)
  want = jax.jit(mamba.Mamba(cfg32).apply)({'params': params}, u)
  got = jax.jit(mamba.Mamba(cfg16).apply)({'params': params}, u.astype(jnp.bfloat16))
  assert got.dtype == jnp.bfloat16
  np.testing.assert_allclose(got.astype(jnp.float32), want, atol=0.03 * float(jnp.abs(want).max()))


def test_initialisation_is_the_references():
  cfg = MixerConfig(D=64, N=3)  # d_state 16, expand 2: E = 128, dt_rank = 4
  E, N, R = 128, 16, 4
  p = jax.jit(mamba.Mamba(cfg).init)(jax.random.PRNGKey(0), jnp.zeros((1, 4, cfg.D)))['params']
  assert mamba.dt_rank(64) == 4 and mamba.dt_rank(65) == 5
  chex.assert_shape([p['in_proj']['kernel'], p['x_proj']['kernel'], p['dt_proj']['kernel'],
                     p['out_proj']['kernel'], p['conv_kernel']],
                    [(64, 2 * E), (E, R + 2 * N), (R, E), (E, 64), (cfg.conv, E)])
  assert 'bias' not in p['in_proj'] and 'bias' not in p['x_proj'] and 'bias' not in p['out_proj']
  np.testing.assert_array_equal(p['conv_bias'], 0.0)
  # S4D-real: A = -(n + 1) on every channel; the skip D is one.
  s4d_real = np.log(np.broadcast_to(np.arange(1, N + 1), (E, N)))
  np.testing.assert_allclose(p['A_log'], s4d_real, rtol=1e-6)
  np.testing.assert_array_equal(p['D'], 1.0)
  # dt = softplus(bias) ~ log-uniform on [0.001, 0.1]; the kernel uniform on +-dt_rank^-0.5.
  dt = np.asarray(jax.nn.softplus(p['dt_proj']['bias']), np.float64)
  assert dt.min() >= 0.001 * (1 - 1e-5) and dt.max() <= 0.1 * (1 + 1e-5)
  assert dt.min() < 0.0015 and dt.max() > 0.07  # spread over the range
  assert abs(np.mean(np.log(dt)) - np.log(0.01)) < 0.5  # the log-uniform's middle
  k = np.abs(p['dt_proj']['kernel'])
  assert k.max() <= R ** -0.5 and k.max() > 0.9 * R ** -0.5
  assert abs(np.std(p['out_proj']['kernel']) / (0.02 / 6 ** 0.5) - 1) < 0.05  # base.out_init, N = 3


def test_state_bytes_count_the_cache():
  cfg = MixerConfig(D=8, d_state=3, expand=2, conv=4)
  x = jnp.zeros((B, T, cfg.D))
  cache = jax.eval_shape(lambda: mamba.Mamba(cfg).init(jax.random.PRNGKey(0), x, decode_position=0))
  cache = cache['cache']
  want = sum(np.prod(leaf.shape) * 4 for leaf in jax.tree.leaves(cache))
  assert MIXERS['mamba'].state_bytes(cfg, B, T) == want == B * 16 * (3 + 3) * 4
  assert MIXERS['mamba'].state_bytes(cfg, B, 10 * T) == want


@pytest.mark.parametrize('fields, message', [
    (dict(scan='fused'),
     "mamba has no 'fused' scan form: set scan to auto, sequential, associative or chunked"),
    (dict(d_state=0), 'mamba needs D, d_state, expand and conv >= 1: got 8, 0, 2, 4'),
    (dict(conv=0), 'mamba needs D, d_state, expand and conv >= 1: got 8, 16, 2, 0'),
])
def test_bad_sizes_and_forms_are_refused(fields, message):
  cfg = MixerConfig(D=8, **fields)
  with pytest.raises(ValueError, match='^' + re.escape(message)):
    jax.eval_shape(mamba.Mamba(cfg).init, jax.random.PRNGKey(0), jnp.zeros((1, 3, 8)))
