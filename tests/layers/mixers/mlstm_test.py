"""The mLSTM mixer computes the paper's stabilised recurrence in every form, decodes it from its
cache, and starts from the reference's initialisation."""

import dataclasses
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqmodels.layers.mixers import mlstm
from seqmodels.layers.mixers.base import MixerConfig


def _log_sigmoid(x):
  return -np.logaddexp(0.0, -x)


def _silu(x):
  return x / (1.0 + np.exp(-x))


def _paper_memory(q, k, v, i, log_f, C, n, m):
  """Beck et al. 2024, eqs. of the stabilised mLSTM, a step at a time in numpy float64."""
  q, k, v, i, log_f, C, n, m = (np.asarray(a, np.float64) for a in (q, k, v, i, log_f, C, n, m))
  P = k.shape[-1]
  hs = []
  for t in range(q.shape[1]):
    m_new = np.maximum(log_f[:, t] + m, i[:, t])
    f_gate, i_gate = np.exp(log_f[:, t] + m - m_new), np.exp(i[:, t] - m_new)
    k_t = k[:, t] / np.sqrt(P)
    C = f_gate[..., None, None] * C + i_gate[..., None, None] * k_t[..., None] * v[:, t, :, None, :]
    n = f_gate[..., None] * n + i_gate[..., None] * k_t
    denominator = np.maximum(np.abs(np.einsum('bhk,bhk->bh', q[:, t], n)), np.exp(-m_new)) + 1e-6
    hs.append(np.einsum('bhk,bhkv->bhv', q[:, t], C) / denominator[..., None])
    m = m_new
  return np.stack(hs, 1), (C, n, m)


def _paper_layer(p, x, cfg):
  """The whole layer from its parameters, in numpy float64 (convolution and memory step by step)."""
  p = jax.tree.map(lambda a: np.asarray(a, np.float64), p)
  B, T, _ = x.shape
  E, P = cfg.expand * cfg.D, cfg.expand * cfg.D // cfg.H
  xm, z = np.split(x @ p['up']['kernel'] + p['up']['bias'], 2, axis=-1)
  W = cfg.conv
  padded = np.concatenate([np.zeros((B, W - 1, E)), xm], 1)
  conv = sum(p['conv_kernel'][j] * padded[:, j:j + T] for j in range(W)) + p['conv_bias']
  c = _silu(conv)
  block = lambda name, a: np.einsum('btni,nio->btno', a.reshape(B, T, E // 4, 4),
                                    p[f'{name}_kernel']).reshape(B, T, E) + p[f'{name}_bias']
  q, k, v = block('q', c), block('k', c), block('v', xm)
  qkv = np.concatenate([q, k, v], -1)
  i = qkv @ p['igate']['kernel'] + p['igate']['bias']
  log_f = _log_sigmoid(qkv @ p['fgate']['kernel'] + p['fgate']['bias'])
  heads = lambda a: a.reshape(B, T, cfg.H, P)
  zeros = (np.zeros((B, cfg.H, P, P)), np.zeros((B, cfg.H, P)), np.zeros((B, cfg.H)))
  h, state = _paper_memory(heads(q), heads(k), heads(v), i, log_f, *zeros)
  h = (h - h.mean(-1, keepdims=True)) / np.sqrt(h.var(-1, keepdims=True) + 1e-5)
  h = h.reshape(B, T, E) * p['norm_scale']
  y = ((h + p['skip'] * c) * _silu(z)) @ p['down']['kernel'] + p['down']['bias']
  return y, state


memory = jax.jit(mlstm.mlstm_memory, static_argnames=('form', 'chunk'))


def _memory_inputs(rng, B=2, T=11, H=2, P=3, gate_scale=3.0):
  q, k, v = (rng.normal(size=(B, T, H, P)) for _ in range(3))
  i = gate_scale * rng.normal(size=(B, T, H))
  log_f = _log_sigmoid(gate_scale * rng.normal(size=(B, T, H)) + 2.0)
  state = (rng.normal(size=(B, H, P, P)), rng.normal(size=(B, H, P)), rng.normal(size=(B, H)))
  return q, k, v, i, log_f, state


def test_every_form_of_the_memory_is_the_papers_stabilised_recurrence_with_equal_gradients():
  with jax.enable_x64(True):
    q, k, v, i, log_f, state = _memory_inputs(np.random.default_rng(0))
    want_h, want_state = _paper_memory(q, k, v, i, log_f, *state)
    for form, chunk in [('sequential', 1), ('chunked', 4), ('chunked', 16)]:  # T = 11: padded
      h, final = memory(q, k, v, i, log_f, state, form=form, chunk=chunk)
      assert h.dtype == jnp.float64
      chex.assert_shape(h, q.shape)
      np.testing.assert_allclose(h, want_h, rtol=1e-10, atol=1e-10)
      for got, want in zip(final, want_state):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    loss = lambda form: lambda *xs: jnp.sum(jnp.sin(mlstm.mlstm_memory(
        *xs[:5], xs[5:], form=form, chunk=4)[0]))
    grads = [jax.jit(jax.grad(loss(form), argnums=tuple(range(8))))(q, k, v, i, log_f, *state)
             for form in ('sequential', 'chunked')]
    for a, b in zip(*grads):
      np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)


def test_input_gates_past_float32s_exp_range_are_stabilised():
  rng = np.random.default_rng(1)
  q, k, v, i, log_f, _ = _memory_inputs(rng, T=9)
  i = i + 100.0 * (rng.uniform(size=i.shape) < 0.3)  # exp(100) overflows float32
  state = (np.zeros((2, 2, 3, 3)), np.zeros((2, 2, 3)), np.zeros((2, 2)))
  want_h, _ = _paper_memory(q, k, v, i, log_f, *state)
  f32 = lambda a: jnp.asarray(a, jnp.float32)
  for form in ('sequential', 'chunked'):
    h, _ = memory(*map(f32, (q, k, v, i, log_f)), tuple(map(f32, state)), form=form, chunk=4)
    assert np.isfinite(h).all()
    np.testing.assert_allclose(h, want_h, rtol=1e-4, atol=1e-5)


def _random_layer(cfg, rng, B=2, T=9):
  x = rng.normal(size=(B, T, cfg.D))
  params = jax.eval_shape(lambda: mlstm.MLSTM(cfg).init(jax.random.PRNGKey(0), x))['params']
  # Random parameters, not the initialisation (zero gate weights, unit scales): every one matters.
  params = jax.tree.map(lambda a: 0.3 * rng.normal(size=a.shape), params)
  return params, x


def test_the_layer_in_every_form_and_decoding_is_the_papers_layer():
  with jax.enable_x64(True):
    cfg = MixerConfig(D=8, H=2, expand=2, conv=3, chunk=4, use_bias=True, dtype=jnp.float64)
    params, x = _random_layer(cfg, np.random.default_rng(2))
    want_y, want_state = _paper_layer(params, x, cfg)
    for scan in ('sequential', 'chunked'):
      module = mlstm.MLSTM(dataclasses.replace(cfg, scan=scan))
      y = jax.jit(module.apply)({'params': params}, x)
      chex.assert_shape(y, x.shape)
      np.testing.assert_allclose(y, want_y, rtol=1e-10, atol=1e-10)
      # A prefill of 4, then a token at a time, from the zeroed cache.
      shapes = jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), x, decode_position=0))
      cache = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), shapes['cache'])
      ys, decode = [], jax.jit(functools.partial(module.apply, mutable=['cache']))
      for start, stop in [(0, 4)] + [(t, t + 1) for t in range(4, x.shape[1])]:
        y_t, mutated = decode({'params': params, 'cache': cache}, x[:, start:stop],
                              decode_position=start)
        cache = mutated['cache']
        ys.append(y_t)
      np.testing.assert_allclose(np.concatenate(ys, 1), want_y, rtol=1e-10, atol=1e-10)
      for got, want in zip(cache['memory'], want_state):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_the_sequential_and_chunked_layers_have_the_same_gradients():
  with jax.enable_x64(True):
    cfg = MixerConfig(D=8, H=2, chunk=4, dtype=jnp.float64)
    params, x = _random_layer(cfg, np.random.default_rng(3), T=10)
    grad = lambda scan: jax.jit(jax.grad(lambda p, x: jnp.sum(jnp.sin(mlstm.MLSTM(
        dataclasses.replace(cfg, scan=scan)).apply({'params': p}, x))), argnums=(0, 1)))(params, x)
    for a, b in zip(jax.tree.leaves(grad('sequential')), jax.tree.leaves(grad('chunked'))):
      np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_initialisation_is_the_references():
  D, N = 64, 3
  cfg = MixerConfig(D=D, H=128, N=N)  # E = 128 heads of one unit: 128 input-gate biases to sample
  p = jax.jit(mlstm.MLSTM(cfg).init)(jax.random.PRNGKey(0), jnp.zeros((1, 4, D)))['params']
  np.testing.assert_allclose(p['fgate']['bias'], np.linspace(3.0, 6.0, 128), rtol=1e-6)
  for gate in ('igate', 'fgate'):
    np.testing.assert_array_equal(p[gate]['kernel'], 0.0)
  assert abs(np.std(p['igate']['bias']) - 0.1) < 0.025 and abs(np.mean(p['igate']['bias'])) < 0.04
  small = (2 / (5 * D)) ** 0.5  # small_init of the width D, for the up and the q, k, v projections
  for name, w in [('up', p['up']['kernel']), *((n, p[f'{n}_kernel']) for n in 'qkv')]:
    assert abs(np.std(w) / small - 1) < 0.1 and abs(np.mean(w)) < 0.1 * small, name
  chex.assert_shape([p['q_kernel'], p['k_kernel'], p['v_kernel']], (128 // 4, 4, 4))
  assert abs(np.std(p['down']['kernel']) / (0.02 / (2 * N) ** 0.5) - 1) < 0.1  # base.out_init
  np.testing.assert_array_equal(p['skip'], 1.0)
  np.testing.assert_array_equal(p['norm_scale'], 1.0)


def test_state_bytes_are_the_caches_bytes():
  cfg = MixerConfig(D=16, H=4, conv=4)
  cache = jax.eval_shape(lambda: mlstm.MLSTM(cfg).init(jax.random.PRNGKey(0), jnp.zeros((3, 7, 16)),
                                                        decode_position=0))['cache']
  chex.assert_shape(cache['memory'], [(3, 4, 8, 8), (3, 4, 8), (3, 4)])
  nbytes = sum(a.size * a.dtype.itemsize for a in jax.tree.leaves(cache))
  assert mlstm.state_bytes(cfg, 3, 7) == nbytes


def test_auto_runs_sequentially_on_cpu():
  assert jax.default_backend() == 'cpu' and mlstm.form_of('auto') == 'chunked'


@pytest.mark.parametrize('fields, message', [
    (dict(D=8, H=3), r'inner width expand \* D = 16 does not split into H = 3 heads'),
    (dict(D=3, H=2), r'inner width expand \* D = 6 is not a multiple of the q/k/v block size 4'),
    (dict(D=8, H=2, scan='associative'),
     r"mlstm has no 'associative' scan form: set scan to auto, sequential or chunked"),
])
def test_bad_sizes_and_forms_are_refused_in_one_line(fields, message):
  with pytest.raises(ValueError, match=message):
    mlstm.MLSTM(MixerConfig(**fields)).init(jax.random.PRNGKey(0), jnp.zeros((1, 2, fields['D'])))
