"""Tests for seqmodels/layers/minrnn.py: the parallel scan computes the sequential recurrence."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqmodels.layers.minrnn import MinRNNLayer, g, log_g

B, T, D, H = 3, 9, 5, 4
ATOL = 1e-5
LENGTHS = jnp.array([T, 5, 1])
MASK = jnp.arange(T)[None, :] < LENGTHS[:, None]


def _normal(seed, shape, scale=1.0):
  """N(0, scale^2) float32 from NumPy: jax.random would compile a threefry kernel per shape (slow on
  CPU)."""
  return jnp.asarray(scale * np.random.default_rng(seed).normal(size=shape), jnp.float32)


def _setup(cell, log_space=True, reverse=False, t=T, scale=1.0):
  layer = MinRNNLayer(cell, H, log_space=log_space, reverse=reverse)
  x = _normal(0, (B, t, D), scale)
  # Random parameters in the shapes init makes (skips compiling the initializers; keeps the tests
  # fast).
  shapes = jax.eval_shape(layer.init, jax.random.key(1), x[:, :1])
  leaves, tree = jax.tree.flatten(shapes)
  v = jax.tree.unflatten(tree, [_normal(i + 1, l.shape, 0.5) for i, l in enumerate(leaves)])
  return layer, v, x


def test_log_g_is_log_of_g_and_g_is_positive():
  x = jnp.linspace(-30.0, 30.0, 1001)
  assert bool((g(x) > 0).all())
  np.testing.assert_allclose(log_g(x), jnp.log(g(x)), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('cell,log_space,reverse',
                         [('mingru', True, False), ('mingru', False, True), ('minlstm', True, True),
                          ('minlstm', False, False)])
def test_parallel_scan_equals_sequential_scan_with_mask_and_initial_state(cell, log_space, reverse):
  layer, v, x = _setup(cell, log_space, reverse)
  h0 = (_normal(2, (B, H)),)  # any real initial state, negative entries too
  hp, cp = layer.apply(v, x, MASK, h0, parallel=True)
  hs, cs = layer.apply(v, x, MASK, h0, parallel=False)
  chex.assert_shape([hp, hs], (B, T, H))
  np.testing.assert_allclose(hp, hs, atol=ATOL)
  np.testing.assert_allclose(cp[0], cs[0], atol=ATOL)


@pytest.mark.parametrize('cell', ['mingru', 'minlstm'])
def test_step_by_step_inference_equals_parallel_training_pass(cell):
  layer, v, x = _setup(cell)
  hp, (hT,) = layer.apply(v, x, parallel=True)
  carry = (jnp.zeros((B, H)),)
  for t in range(T):
    h, carry = layer.apply(v, x[:, t], carry, method='step')
    np.testing.assert_allclose(h, hp[:, t], atol=ATOL)
  np.testing.assert_allclose(carry[0], hT, atol=ATOL)


def test_padded_steps_leave_state_unchanged_and_output_zero():
  layer, v, x = _setup('minlstm')
  h, (hT,) = layer.apply(v, x, MASK, parallel=True)
  for b, n in enumerate(LENGTHS.tolist()):
    # parallel = sequential is tested above
    h_b, (hT_b,) = layer.apply(v, x[b:b + 1, :n], parallel=False)
    np.testing.assert_allclose(h[b, :n], h_b[0], atol=ATOL)
    np.testing.assert_allclose(h[b, n:], 0.0)
    np.testing.assert_allclose(hT[b], hT_b[0], atol=ATOL)


@pytest.mark.parametrize('cell', ['mingru', 'minlstm'])
def test_gradients_of_parallel_and_sequential_forms_agree(cell):
  layer, v, x = _setup(cell)
  w = _normal(3, (B, T, H))
  loss = lambda v, parallel: (layer.apply(v, x, MASK, parallel=parallel)[0] * w).sum()
  gp = jax.grad(loss)(v, True)
  gs = jax.grad(loss)(v, False)
  chex.assert_trees_all_close(gp, gs, atol=1e-4)
  assert all(bool(jnp.isfinite(a).all()) for a in jax.tree.leaves(gp))


def test_log_space_scan_stays_finite_and_exact_over_long_sequences():
  # Large inputs push gates to saturation: products of many a_t underflow, which log space must
  # survive.
  layer, v, x = _setup('mingru', t=128, scale=10.0)
  hp, _ = layer.apply(v, x, parallel=True)
  hs, _ = layer.apply(v, x, parallel=False)
  assert bool(jnp.isfinite(hp).all())
  np.testing.assert_allclose(hp, hs, rtol=1e-4, atol=1e-4)


def test_perturbation_gradient_is_the_same_in_parallel_and_sequential_forms():
  layer, v, x = _setup('minlstm')
  _, state = layer.apply(v, x, mutable='perturbations')
  loss = lambda p, parallel: layer.apply({**v, **p}, x, parallel=parallel)[0][:, -1].sum()
  gp = jax.grad(loss)(state, True)['perturbations']['h']
  gs = jax.grad(loss)(state, False)['perturbations']['h']
  chex.assert_shape(gp, (B, T, H))
  np.testing.assert_allclose(gp, gs, atol=ATOL)
  assert float(jnp.abs(gp[:, 0]).sum()) > 0  # the last step's loss reaches the first hidden state


def test_the_default_scan_is_sequential_on_cpu_and_parallel_on_accelerators(monkeypatch):
  layer, v, x = _setup('mingru')
  jaxpr = lambda **kw: str(jax.make_jaxpr(lambda v: layer.apply(v, x, **kw))(v))
  assert 'scan[' in jaxpr() and 'scan[' in jaxpr(parallel=False)  # tests run on CPU: lax.scan
  assert 'scan[' not in jaxpr(parallel=True)  # the associative scan is slices and adds, no loop
  monkeypatch.setattr(jax, 'default_backend', lambda: 'gpu')
  assert 'scan[' not in jaxpr()
  assert 'scan[' in jaxpr(parallel=False)
  # the module's own
  assert 'scan[' in str(jax.make_jaxpr(lambda v: layer.clone(parallel=False).apply(v, x))(v))
