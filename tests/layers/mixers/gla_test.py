"""GLA and RetNet (seqmodels/layers/mixers/gla.py): the training form is the papers' recurrence,
every form computes it (gradients too), the initialisation is fla's, bad sizes are refused."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqmodels.layers.mixers import MIXERS, gla
from seqmodels.layers.mixers.base import MixerConfig

B, T = 2, 7  # T not a multiple of the chunk: the chunked form pads


def _numpy(tree):
  return jax.tree.map(lambda a: np.asarray(a, np.float64), tree)


def _rotate(x_BxTxHxK, positions_T):
  """Rotary positions (Su et al. 2021), rotate-half: dimensions i and i + K/2 turn by p theta_i."""
  K = x_BxTxHxK.shape[-1]
  theta = 10000.0 ** (-2.0 * np.arange(K // 2) / K)
  angle = positions_T[:, None, None] * theta  # [T, 1, K/2]
  x1, x2 = x_BxTxHxK[..., :K // 2], x_BxTxHxK[..., K // 2:]
  return np.concatenate([x1 * np.cos(angle) - x2 * np.sin(angle),
                         x2 * np.cos(angle) + x1 * np.sin(angle)], -1)


def _recurrence(p, x_BxTxD, H, retnet):
  """The papers' equations a step at a time in numpy float64: (y_BxTxD, S_T)."""
  D = x_BxTxD.shape[-1]
  K, V = D // (2 * H), D // H
  Bx, Tx = x_BxTxD.shape[:2]
  heads = lambda name, width: (x_BxTxD @ p[name]['kernel']).reshape(Bx, Tx, H, width)
  q, k, v, g = heads('q', K) / np.sqrt(K), heads('k', K), heads('v', V), heads('g', V)
  if retnet:
    positions = np.arange(Tx, dtype=np.float64)
    q, k = _rotate(q, positions), _rotate(k, positions)
    gamma_H = 1.0 - 2.0 ** (-5.0 - np.arange(H))
    alpha = np.broadcast_to(gamma_H[None, None, :, None], (Bx, Tx, H, K))
  else:
    logit = (x_BxTxD @ p['gate_down']['kernel']) @ p['gate_up']['kernel'] + p['gate_up']['bias']
    alpha = (1.0 / (1.0 + np.exp(-logit))).reshape(Bx, Tx, H, K) ** (1.0 / 16)
  S = np.zeros((Bx, H, K, V))
  o = np.zeros((Bx, Tx, H, V))
  for t in range(Tx):
    S = alpha[:, t, :, :, None] * S + k[:, t, :, :, None] * v[:, t, :, None, :]
    o[:, t] = np.einsum('bhk,bhkv->bhv', q[:, t], S)
  o = o / np.sqrt(np.mean(o ** 2, -1, keepdims=True) + 1e-5) * p['norm_scale']
  o = o * g / (1.0 + np.exp(-g))
  return o.reshape(Bx, Tx, D) @ p['out']['kernel'], S


def _setup(retnet, *, D=8, H=2, dtype=jnp.float64, **fields):
  cfg = MixerConfig(D=D, H=H, chunk=4, dtype=dtype, **fields)
  mixer = gla.GLA(cfg, retnet=retnet)
  x = jnp.asarray(np.random.default_rng(0).normal(size=(B, T, D)), dtype)
  params = mixer.init(jax.random.PRNGKey(0), x)['params']
  # Off the init, so the gate's bias and the norm's scale are exercised.
  leaves, tree = jax.tree.flatten(params)
  rng = np.random.default_rng(1)
  params = jax.tree.unflatten(tree, [jnp.asarray(rng.normal(0, 0.5, a.shape), dtype)
                                     for a in leaves])
  return mixer, cfg, params, x


@pytest.mark.parametrize('retnet', [False, True])
def test_every_form_equals_the_papers_recurrence_in_float64(retnet):
  with jax.enable_x64(True):
    mixer, cfg, params, x = _setup(retnet)
    want_y, want_S = _recurrence(_numpy(params), np.asarray(x), cfg.H, retnet)
    # RetNet's rotary positions are computed in float32 (seqmodels.layers.attention.rotary).
    tol = 1e-6 if retnet else 1e-10
    for scan in ('sequential', 'chunked'):
      m = gla.GLA(dataclasses.replace(cfg, scan=scan), retnet=retnet)
      y = m.apply({'params': params}, x)
      chex.assert_shape(y, (B, T, cfg.D))
      assert y.dtype == jnp.float64
      np.testing.assert_allclose(y, want_y, rtol=tol, atol=tol)
      # The final state, through the cache: a prefill of the whole sequence from a zero state.
      cache = m.init(jax.random.PRNGKey(0), x, decode_position=0)['cache']
      chex.assert_shape(cache['state'], (B, cfg.H, cfg.D // (2 * cfg.H), cfg.D // cfg.H))
      y_prefill, mutated = m.apply({'params': params, 'cache': cache}, x, decode_position=0,
                                   mutable=['cache'])
      np.testing.assert_allclose(y_prefill, want_y, rtol=tol, atol=tol)
      np.testing.assert_allclose(mutated['cache']['state'], want_S, rtol=tol, atol=tol)


@pytest.mark.parametrize('retnet', [False, True])
def test_sequential_and_chunked_forms_agree_with_their_gradients(retnet):
  with jax.enable_x64(True):
    mixer, cfg, params, x = _setup(retnet)

    def loss(scan):
      m = gla.GLA(dataclasses.replace(cfg, scan=scan), retnet=retnet)
      return lambda p, x: jnp.sum(jnp.sin(m.apply({'params': p}, x)))

    (seq, g_seq), (chk, g_chk) = (jax.jit(jax.value_and_grad(loss(s), argnums=(0, 1)))(params, x)
                                  for s in ('sequential', 'chunked'))
    np.testing.assert_allclose(seq, chk, rtol=1e-10)
    for a, b in zip(jax.tree.leaves(g_seq), jax.tree.leaves(g_chk)):
      np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)


def test_a_step_from_the_cache_continues_a_prefill():
  # RetNet's rotary positions start at decode_position: a prefill and steps give the training form.
  for retnet in (False, True):
    mixer, cfg, params, x = _setup(retnet, dtype=jnp.float32, scan='chunked')
    want = mixer.apply({'params': params}, x)
    cache = mixer.init(jax.random.PRNGKey(0), x, decode_position=0)['cache']
    decode = jax.jit(lambda cache, x, p: mixer.apply({'params': params, 'cache': cache}, x,
                                                     decode_position=p, mutable=['cache']))
    y, mutated = decode(cache, x[:, :3], 0)
    ys = [y]
    for t in range(3, T):
      y, mutated = decode(mutated['cache'], x[:, t:t + 1], t)
      ys.append(y)
    np.testing.assert_allclose(jnp.concatenate(ys, 1), want, rtol=1e-5, atol=1e-5)


def test_the_gate_starts_as_a_slow_decay_in_zero_to_one():
  # fla's init, bias 0 and small logits: alpha = sigmoid(logit)^(1/16) near 0.5^(1/16) ~ 0.958.
  cfg = MixerConfig(D=64, H=4)
  x = jax.random.normal(jax.random.PRNGKey(1), (4, 32, 64))
  params = gla.GLA(cfg).init(jax.random.PRNGKey(0), x[:1, :1])['params']
  gate = params['gate_up']
  logit = x @ params['gate_down']['kernel'] @ gate['kernel'] + gate['bias']
  alpha = jnp.exp(jax.nn.log_sigmoid(logit) / gla.GATE_NORMALIZER)
  assert bool(jnp.all((alpha > 0) & (alpha < 1)))
  assert abs(float(jnp.mean(alpha)) - 0.5 ** (1 / 16)) < 0.01 and float(jnp.min(alpha)) > 0.9
  np.testing.assert_array_equal(gate['bias'], 0.0)


@pytest.mark.parametrize('retnet', [False, True])
def test_projections_start_xavier_uniform_with_fla_gain_and_the_output_as_out_init(retnet):
  D, H, N = 64, 4, 3
  cfg = MixerConfig(D=D, H=H, N=N)
  params = gla.GLA(cfg, retnet=retnet).init(jax.random.PRNGKey(0), jnp.zeros((1, 4, D)))['params']
  names = ['q', 'k', 'v', 'g'] + ([] if retnet else ['gate_down', 'gate_up'])
  assert sorted(params) == sorted(names + ['norm_scale', 'out'])
  for name in names:
    w = np.asarray(params[name]['kernel'])
    fan_in, fan_out = w.shape
    bound = 2 ** -2.5 * np.sqrt(6 / (fan_in + fan_out))
    assert 0.9 * bound < np.abs(w).max() <= bound, name  # uniform(-bound, bound)
    np.testing.assert_allclose(w.std(), bound / np.sqrt(3), rtol=0.15, err_msg=name)
  np.testing.assert_allclose(np.std(params['out']['kernel']), 0.02 / np.sqrt(2 * N), rtol=0.1)
  np.testing.assert_array_equal(params['norm_scale'], 1.0)
  chex.assert_shape([params['q']['kernel'], params['v']['kernel']], [(D, D // 2), (D, D)])


def test_retention_decays_are_one_minus_two_to_minus_five_minus_h():
  gamma = np.exp(np.asarray(gla.retention_log_gamma(4, jnp.float32), np.float64))
  np.testing.assert_allclose(gamma, [1 - 1 / 32, 1 - 1 / 64, 1 - 1 / 128, 1 - 1 / 256], rtol=1e-6)


@pytest.mark.parametrize('mixer', ['gla', 'retnet'])
def test_state_bytes_are_the_caches_bytes(mixer):
  cfg = MixerConfig(D=16, H=2)
  cache = MIXERS[mixer].module(cfg).init(jax.random.PRNGKey(0), jnp.zeros((3, 2, 16)),
                                         decode_position=0)['cache']
  assert list(cache) == ['state']
  assert MIXERS[mixer].state_bytes(cfg, 3, 2) == cache['state'].size * 4 == 3 * 2 * 4 * 8 * 4
  assert MIXERS[mixer].recurrent


@pytest.mark.parametrize('mixer, fields, message', [
    ('gla', dict(D=12, H=4), 'gla: heads H=4 must divide the key width D / 2 = 6'),
    ('retnet', dict(D=10, H=2), 'retnet: heads H=2 must divide the key width D / 2 = 5'),
    ('retnet', dict(D=12, H=2), 'retnet: rotary positions need an even key width per head'),
    ('gla', dict(D=8, H=2, scan='associative'),
     "gla has no 'associative' scan form: set scan to auto, sequential or chunked"),
])
def test_bad_sizes_and_forms_are_refused_in_one_line(mixer, fields, message):
  cfg = MixerConfig(**fields)
  with pytest.raises(ValueError, match=message) as error:
    MIXERS[mixer].module(cfg).init(jax.random.PRNGKey(0), jnp.zeros((1, 2, cfg.D)))
  assert '\n' not in str(error.value)
