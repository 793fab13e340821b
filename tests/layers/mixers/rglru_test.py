"""Griffin's recurrent block (seqmodels/layers/mixers/rglru.py): the paper's equations step by step,
every scan form the same function, recurrentgemma's initialisations, and Griffin's hybrid."""

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs.base import get_base_config
from seqmodels.layers.mixers import MIXERS, MixerConfig, rglru
from seqmodels.models import lm, registry

B, T, D, H, W = 2, 7, 8, 2, 3  # W: the convolution's width


def _gelu(x):
  """GeLU, the tanh approximation (jax.nn.gelu's default, as recurrentgemma calls it)."""
  return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def _block_diagonal(u_BxTxE, w_HxIxJ, b_HxJ):
  heads = [u_BxTxE[..., h * w_HxIxJ.shape[1]:(h + 1) * w_HxIxJ.shape[1]] @ w_HxIxJ[h] + b_HxJ[h]
           for h in range(w_HxIxJ.shape[0])]
  return np.concatenate(heads, -1)


def _paper(p, x_BxTxD):
  """(out, h_T) of the recurrent block from the paper's equations, a step at a time in float64."""
  p = jax.tree.map(lambda v: np.asarray(v, np.float64), p)
  dense = lambda x, name: x @ p[name]['kernel'] + p[name]['bias']
  y = _gelu(dense(x_BxTxD, 'linear_y'))
  v = dense(x_BxTxD, 'linear_x')
  width = p['conv_kernel'].shape[0]
  u = np.stack([p['conv_bias'] + sum(p['conv_kernel'][width - 1 - k] * v[:, t - k]
                                     for k in range(width) if t - k >= 0)
                for t in range(v.shape[1])], 1)
  r = _sigmoid(_block_diagonal(u, p['gate_a_kernel'], p['gate_a_bias']))
  i = _sigmoid(_block_diagonal(u, p['gate_x_kernel'], p['gate_x_bias']))
  log_a = np.log(_sigmoid(p['Lambda']))
  h, hs = np.zeros_like(u[:, 0]), []
  for t in range(u.shape[1]):
    a_t = np.exp(8.0 * r[:, t] * log_a)
    if t == 0:  # a sequence's first step: h = i u
      h = i[:, t] * u[:, t]
    else:
      h = a_t * h + np.sqrt(1.0 - a_t ** 2) * (i[:, t] * u[:, t])
    hs.append(h)
  return dense(y * np.stack(hs, 1), 'linear_out'), h


def _mixer(scan='sequential', dtype=jnp.float64, **fields):
  cfg = MixerConfig(**{'D': D, 'H': H, 'conv': W, 'use_bias': True, 'N': 2, **fields}, scan=scan,
                    dtype=dtype)
  return rglru.RGLRU(cfg, name='mixer')


def _random_params(x):
  """The mixer's parameters, every one random (biases too) and float64; a over (0.27, 0.99)."""
  shapes = _mixer().init(jax.random.PRNGKey(0), x)['params']
  rng = np.random.default_rng(0)
  p = jax.tree.map(lambda v: rng.normal(0.0, 0.5, v.shape), shapes)
  p['Lambda'] = rng.uniform(-1.0, 4.5, D)
  return p


def test_every_form_computes_the_papers_recurrence_outputs_and_final_state():
  with jax.enable_x64(True):
    x = np.random.default_rng(1).normal(size=(B, T, D))
    p = _random_params(x)
    want_out, want_h = _paper(p, x)
    for form in rglru.FORMS:
      mixer = _mixer(form)
      out = mixer.apply({'params': p}, x)
      assert out.shape == (B, T, D) and out.dtype == jnp.float64
      np.testing.assert_allclose(out, want_out, rtol=1e-10, atol=1e-12)
      cache = mixer.init(jax.random.PRNGKey(0), x, decode_position=0)['cache']
      out, mutated = mixer.apply({'params': p, 'cache': cache}, x, decode_position=0,
                                 mutable=['cache'])
      np.testing.assert_allclose(out, want_out, rtol=1e-10, atol=1e-12)
      np.testing.assert_allclose(mutated['cache']['h'], want_h, rtol=1e-10, atol=1e-12)


def test_the_forms_agree_on_gradients():
  with jax.enable_x64(True):
    x = np.random.default_rng(2).normal(size=(B, T, D))
    p = _random_params(x)
    loss = lambda form: lambda p, x: jnp.sum(jnp.sin(_mixer(form).apply({'params': p}, x)))
    grads = [jax.grad(loss(form), argnums=(0, 1))(p, x) for form in rglru.FORMS]
    for a, b in zip(*map(jax.tree.leaves, grads)):
      assert np.all(np.isfinite(a))
      np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_decoding_a_prefill_then_steps_continues_the_training_form():
  with jax.enable_x64(True):
    x = np.random.default_rng(3).normal(size=(B, T, D))
    p = _random_params(x)
    mixer = _mixer('associative')
    full = mixer.apply({'params': p}, x)
    cache = mixer.init(jax.random.PRNGKey(0), x, decode_position=0)['cache']
    for cuts in ([0, 1, 2, 3, 4, 5, 6, 7], [0, 3, 5, 6, 7]):  # steps, and prefills then steps
      state, outs = cache, []
      for start, stop in zip(cuts[:-1], cuts[1:]):
        out, mutated = mixer.apply({'params': p, 'cache': state}, x[:, start:stop],
                                   decode_position=start, mutable=['cache'])
        state, outs = mutated['cache'], outs + [out]
      np.testing.assert_allclose(np.concatenate(outs, 1), full, rtol=1e-10, atol=1e-12)


def test_lambda_puts_a_on_recurrentgemmas_ring_and_a_to_the_c_in_its_range():
  a = np.asarray(jax.nn.sigmoid(rglru.ring_init(jax.random.PRNGKey(0), (8192,))), np.float64)
  assert a.min() >= 0.9 - 1e-6 and a.max() <= 0.999 + 1e-6
  # Uniform by the ring's area: a^2 ~ U[0.9^2, 0.999^2] (mean 0.904, std 0.052).
  np.testing.assert_allclose(np.mean(a ** 2), (0.81 + 0.998001) / 2, atol=0.003)
  np.testing.assert_allclose(np.std(a ** 2), (0.998001 - 0.81) / np.sqrt(12), rtol=0.03)
  # The decay of a step is a^(c r_t): a^8 in [0.9^8, 0.999^8] = [0.430, 0.992] where r_t = 1, and
  # a^4 in [0.656, 0.996] at the gates' init (r_t = sigmoid(0) = 1/2 on average).
  a8 = a ** 8
  assert 0.9 ** 8 - 1e-5 <= a8.min() < 0.45 and 0.98 < a8.max() <= 0.999 ** 8 + 1e-5


def test_the_projections_and_gates_are_initialised_as_recurrentgemma():
  E, heads, N = 256, 8, 3
  cfg = MixerConfig(D=E, H=heads, N=N)
  p = rglru.RGLRU(cfg).init(jax.random.PRNGKey(1), jnp.zeros((1, 2, E)))['params']
  std = lambda v: float(np.std(np.asarray(v)))
  a = jax.nn.sigmoid(p['Lambda'])  # rglru.ring_init: on the ring [0.9, 0.999]
  assert p['Lambda'].shape == (E,) and a.min() >= 0.9 - 1e-6 and a.max() <= 0.999 + 1e-6
  for gate in ('gate_a', 'gate_x'):  # block-diagonal [H, E/H, E/H], std 1/sqrt(E) as its JAX source
    assert p[f'{gate}_kernel'].shape == (heads, E // heads, E // heads)
    np.testing.assert_allclose(std(p[f'{gate}_kernel']), E ** -0.5, rtol=0.03)
    np.testing.assert_array_equal(p[f'{gate}_bias'], 0.0)
  for name in ('linear_x', 'linear_y'):  # lecun normal, untruncated
    np.testing.assert_allclose(std(p[name]['kernel']), E ** -0.5, rtol=0.03)
  np.testing.assert_allclose(std(p['linear_out']['kernel']), 0.02 / np.sqrt(2 * N), rtol=0.03)
  np.testing.assert_array_equal(p['conv_bias'], 0.0)  # base.causal_conv's init, with its bias
  assert not any('bias' in p[name] for name in ('linear_x', 'linear_y', 'linear_out'))  # use_bias


def test_the_normalisations_gradient_is_bounded_where_a_reaches_one():
  grad = jax.grad(rglru.sqrt_bounded_grad)
  assert float(grad(0.0)) == pytest.approx(rglru.MAX_SQRT_GRAD)
  assert float(grad(0.25)) == pytest.approx(1.0)  # the true derivative where it is below the bound
  assert float(rglru.sqrt_bounded_grad(0.25)) == 0.5


def test_state_bytes_are_the_caches():
  mixer = _mixer(dtype=jnp.float32)
  cache = mixer.init(jax.random.PRNGKey(0), jnp.zeros((B, T, D)), decode_position=0)['cache']
  assert {k: v.shape for k, v in cache.items()} == {'h': (B, D), 'conv_state': (B, W - 1, D)}
  assert sum(v.size * 4 for v in cache.values()) == rglru.state_bytes(mixer.cfg, B, T)
  assert MIXERS['rglru'].recurrent and MIXERS['rglru'].state_bytes is rglru.state_bytes


def test_auto_is_sequential_on_cpu_and_bad_sizes_or_forms_are_named():
  assert rglru.scan_form('auto') == 'sequential'
  x = jnp.zeros((1, 2, D))
  with pytest.raises(ValueError, match='rglru: heads H=3 must divide the lru width E=8'):
    rglru.RGLRU(MixerConfig(D=D, H=3)).init(jax.random.PRNGKey(0), x)
  with pytest.raises(ValueError, match="rglru has no 'chunked' scan form"):
    rglru.RGLRU(MixerConfig(D=D, H=H, scan='chunked')).init(jax.random.PRNGKey(0), x)


def test_griffin_decodes_past_its_local_window_as_its_training_form():
  c = get_base_config()
  c.model.name, c.model.width, c.model.layers, c.model.heads = 'lm', 16, 3, 2
  c.model.pattern, c.model.window = 'rglru,rglru,attention', 4
  V, L = 13, 12
  data = types.SimpleNamespace(vocab_size=V, seq_len=L, kind='lm', meta={})
  model = registry.build(c.model, data, jnp.float32)
  assert model.cfg.mixers == ('rglru', 'rglru', 'attention') and model.cfg.mixer.window == 4
  tokens = jnp.asarray(np.random.default_rng(4).integers(0, V, (B, L)))
  params = model.init(jax.random.PRNGKey(0), tokens)['params']
  full_BxLxV = model.apply({'params': params}, tokens)
  assert full_BxLxV.shape == (B, L, V) and bool(jnp.all(jnp.isfinite(full_BxLxV)))
  step = jax.jit(lambda cache, tokens, p: model.apply({'params': params, 'cache': cache}, tokens,
                                                      decode_position=p, mutable=['cache']))
  logits, mutated = step(lm.init_cache(model, B), tokens[:, :2], 0)
  outs = [logits]
  for t in range(2, L):  # 10 steps: past the window of 4
    logits, mutated = step(mutated['cache'], tokens[:, t:t + 1], t)
    outs.append(logits)
  np.testing.assert_allclose(jnp.concatenate(outs, 1), full_BxLxV, rtol=1e-4, atol=1e-4)
