"""Tests for seqmodels/analysis/gradient_flow.py: vanishing gradients in a tanh RNN, none through
attention."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from seqmodels.analysis import gradient_flow
from seqmodels.layers.recurrent import Recurrent
from seqmodels.layers.transformer import Block

B, T, D, H = 2, 12, 4, 8


def _normal(seed, shape, scale=1.0):
  """N(0, scale^2) float32 from NumPy: jax.random would compile a threefry kernel per shape (slow on
  CPU)."""
  return jnp.asarray(scale * np.random.default_rng(seed).normal(size=shape), jnp.float32)


def _x(b=B, t=T, d=D):
  return _normal(0, (b, t, d))


def _readout(d):
  """Per-example loss at the last step, [B], of a model output y_BxTxH or (y_BxTxH, final
  states)."""
  v = _normal(7, (d,))
  return lambda out: (out[0] if isinstance(out, tuple) else out)[:, -1] @ v


def _small_rnn():
  """A one-layer tanh RNN whose recurrent matrix has spectral norm 0.5: gradients shrink by >= 2x
  per step."""
  model = Recurrent('rnn', H)
  shapes = jax.eval_shape(model.init, jax.random.key(0), _x())['params']['layer0']
  q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(H, H)))
  p = {'wx': _normal(1, shapes['wx'].shape), 'b': jnp.zeros(shapes['b'].shape),
       'wh': jnp.asarray(0.5 * q, jnp.float32)}
  return model, {'params': {'layer0': p}}


def test_tanh_rnn_gradient_norm_decays_with_distance_from_last_step():
  model, v = _small_rnn()
  norms = gradient_flow.perturbation_gradient_norms(model, v, _readout(H), _x())
  assert list(norms) == ['layer0/h']
  n = np.asarray(norms['layer0/h'])
  chex.assert_shape(n, (T,))
  assert (np.diff(n) > 0).all()  # strictly larger the closer to the last step
  assert n[0] < 1e-3 * n[-1]
  assert gradient_flow.decay_rate(n) < np.log(0.5)


def test_perturbation_gradient_is_full_backprop_through_time():
  """dL/dh_t = (dL/dh_{t+1} * (1 - h_{t+1}^2)) W_h^T, from dL/dh_{T-1} = v: checked per example."""
  model, v = _small_rnn()
  x = _x()
  readout_v = _normal(7, (H,))
  h, _ = model.apply(v, x)
  _, state = model.apply(v, x, mutable='perturbations')
  g = jax.grad(lambda p: jnp.sum(model.apply({**v, **p}, x)[0][:, -1] @ readout_v))(state)
  g = np.asarray(g['perturbations']['layer0']['h'], np.float64)
  wh, h = np.asarray(v['params']['layer0']['wh'], np.float64), np.asarray(h, np.float64)
  expected = np.zeros_like(g)
  expected[:, -1] = np.asarray(readout_v)
  for t in range(T - 2, -1, -1):
    expected[:, t] = (expected[:, t + 1] * (1 - h[:, t + 1] ** 2)) @ wh.T
  np.testing.assert_allclose(g, expected, rtol=1e-4, atol=1e-7)


class _Blocks(nn.Module):
  """Two causal pre-LN Transformer blocks over given vectors."""

  @nn.compact
  def __call__(self, x_BxTxD):
    for n in range(2):
      x_BxTxD = Block(2, 4 * H, causal=True, name=f'block{n}')(x_BxTxD)
    return x_BxTxD


def _random_variables(model, x):
  """Kernels N(0, 1/fan_in), LayerNorm scales 1, biases 0, in the shapes init makes (without
  compiling init)."""
  shapes = jax.eval_shape(model.init, jax.random.key(0), x)
  paths, tree = jax.tree_util.tree_flatten_with_path(shapes)

  def value(i, path, s):
    name = str(path[-1].key)
    if name == 'kernel':
      fan_in = np.prod(s.shape[:-2]) if 'out' in str(path) else s.shape[0]
      return _normal(i, s.shape, 1 / np.sqrt(fan_in))
    return jnp.ones(s.shape) if name == 'scale' else jnp.zeros(s.shape)

  return jax.tree.unflatten(tree, [value(i, p, s) for i, (p, s) in enumerate(paths)])


def test_attention_gradient_norm_does_not_decay_with_distance():
  x = _x(d=H)
  model = _Blocks()
  v = _random_variables(model, x)
  norms = gradient_flow.perturbation_gradient_norms(model, v, _readout(H), x,
                                                    perturb_outputs_of=(Block,))
  assert sorted(norms) == ['block0/output', 'block1/output']
  chex.assert_shape(list(norms.values()), (T,))
  n = np.asarray(norms['block0/output'])
  assert abs(gradient_flow.decay_rate(n)) < 0.1
  assert n[0] > 0.3 * n[-2] > 0
  # Nothing above block1 mixes positions: only the last position's output reaches the loss.
  np.testing.assert_array_equal(norms['block1/output'][:-1], 0.0)


def test_step_gradient_norms_of_a_running_mean_are_uniform():
  """L_b = v . mean_t h[b, t]: dL_b/dh_{b,t} = v / T at every t, whatever h is."""
  v = _normal(7, (H,))
  norms = gradient_flow.step_gradient_norms(lambda h: h.mean(1) @ v, _x(d=H))
  chex.assert_shape(norms, (T,))
  np.testing.assert_allclose(norms, np.full(T, np.linalg.norm(v) / T), rtol=1e-5)


def test_model_without_perturbation_site_is_rejected_with_a_hint():
  x = _x(d=H)
  model = _Blocks()
  v = _random_variables(model, x)
  try:
    gradient_flow.perturbation_gradient_norms(model, v, _readout(H), x)
  except ValueError as e:
    assert 'perturb_outputs_of' in str(e)
  else:
    raise AssertionError('expected a ValueError')


def test_rows_of_different_lengths_are_averaged_by_their_distance_from_their_own_end():
  """Row 0 ends at position 3, row 1 at 1: entry k of the mean is distance 3 - k from both rows'
  ends; distances 3 and 2 only row 0 reaches, and past their ends (padding) both rows count."""
  norms_BxT = np.array([[8.0, 4.0, 2.0, 1.0, 0.0], [6.0, 3.0, 0.0, 0.0, 0.0]])
  mean_T, latest = gradient_flow.aligned_mean(norms_BxT, np.array([3, 1]))
  assert latest == 3
  np.testing.assert_allclose(mean_T, [8.0, 4.0, (2 + 6) / 2, (1 + 3) / 2, 0.0])
  same, at = gradient_flow.aligned_mean(norms_BxT, np.array([4, 4]))  # one length: the plain mean
  assert at == 4
  np.testing.assert_allclose(same, norms_BxT.mean(0))


def test_the_loss_reads_each_row_at_its_own_position():
  logits_BxTxV = np.log(np.array([[[0.5, 0.5], [0.9, 0.1]], [[0.2, 0.8], [0.5, 0.5]]], np.float32))
  batch = {'targets': np.array([[0, 0], [1, 1]]), 'weights': np.array([[1.0, 1.0], [1.0, 0.0]])}
  loss_B = gradient_flow._loss_at('lm', np.array([1, 0]))(batch)(logits_BxTxV)
  np.testing.assert_allclose(loss_B, -np.log([0.9, 0.8]), rtol=1e-5)
  at_one = gradient_flow._loss_at('lm', 1)(batch)(logits_BxTxV)
  np.testing.assert_allclose(at_one, [-np.log(0.9), 0.0], rtol=1e-5)  # row 1 has no target there
  every = gradient_flow._loss_at('lm', None)(batch)(logits_BxTxV)
  # whole_sequence
  np.testing.assert_allclose(every, [-np.log(0.5) - np.log(0.9), -np.log(0.8)], rtol=1e-5)


def test_every_mixer_of_the_backbone_is_measured_at_its_blocks_outputs():
  import types
  from experiments.configs.base import get_base_config
  from seqmodels.models import lm, registry
  c = get_base_config()
  c.model.name, c.model.pattern, c.model.width, c.model.layers = 'lm', 'mamba,attention', 16, 2
  c.model.heads, c.model.d_state = 2, 4
  data = types.SimpleNamespace(vocab_size=7, seq_len=6, kind='lm', meta={})
  model = registry.build(c.model, data, jnp.float32)
  tokens = jnp.asarray(np.random.default_rng(0).integers(0, 7, (2, 6)))
  params = model.init(jax.random.PRNGKey(0), tokens)['params']
  loss = lambda logits_BxTxV: jax.nn.logsumexp(logits_BxTxV[:, -1], -1)  # read at the last position
  norms = gradient_flow.perturbation_gradient_norms(model, {'params': params}, loss, tokens,
                                                    perturb_outputs_of=(lm.Block,))
  assert sorted(norms) == ['block0/output', 'block1/output']
  chex.assert_shape(norms['block0/output'], (6,))
  # through block1's mixer, every position counts
  assert np.all(np.asarray(norms['block0/output']) > 0)
  # the top block's output reaches only its own position's logits
  top_T = np.asarray(norms['block1/output'])
  assert np.all(top_T[:-1] == 0) and top_T[-1] > 0
