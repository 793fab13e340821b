"""The per-gate layout of CPU scans (seqmodels/layers/gates.py) computes what the whole-array layout
of GPUs does: the tests run on CPU, so the whole layout is forced here and compared, outputs and
gradients."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqmodels.layers import gates
from seqmodels.layers.minrnn import MinRNNLayer
from seqmodels.layers.recurrent import GATES, scan_recurrence

B, T, H = 3, 6, 4


def _normal(seed, shape, scale=1.0):
  return jnp.asarray(scale * np.random.default_rng(seed).normal(size=shape), jnp.float32)


def _both_layouts(f, monkeypatch):
  """f() with gates split (the CPU layout) and whole (forced), compiled afresh for each."""
  assert gates.split_on_cpu(2)  # the tests run on CPU
  jax.clear_caches()
  split = f()
  monkeypatch.setattr(gates, 'split_on_cpu', lambda n: False)
  jax.clear_caches()
  whole = f()
  monkeypatch.undo()
  jax.clear_caches()
  return split, whole


def test_by_gate_and_joined_are_inverses():
  x = _normal(0, (T, B, 3 * H))
  parts = gates.by_gate(x, 3)
  assert isinstance(parts, tuple) and len(parts) == 3
  np.testing.assert_array_equal(parts[1], x[..., H:2 * H])
  np.testing.assert_array_equal(gates.joined(parts), x)
  assert gates.by_gate(x, 1) is x  # one gate: nothing to split
  assert gates.parts(parts, 3) is parts


@pytest.mark.parametrize('cell', ['lstm', 'gru'])
@pytest.mark.parametrize('hoisted', [False, True])
def test_recurrence_is_the_same_in_both_layouts(cell, hoisted, monkeypatch):
  G = GATES[cell] * H
  xw, wh, bh = _normal(1, (B, T, G)), _normal(2, (H, G), 0.5), _normal(3, (G,), 0.5)
  mask = jnp.asarray(np.arange(T)[None, :] < np.array([T, 4, 1])[:, None], jnp.float32)
  w_out = _normal(4, (B, T, H))

  def loss(xw, wh, bh):
    h, carry = scan_recurrence(cell, xw, wh, bh,
                               (jnp.zeros((B, H)),) * (2 if cell == 'lstm' else 1), mask,
                               hoisted_grad=hoisted)
    return jnp.sum(h * w_out) + sum(jnp.sum(jnp.sin(c)) for c in carry)

  split, whole = _both_layouts(lambda: jax.value_and_grad(loss, argnums=(0, 1, 2))(xw, wh, bh),
                               monkeypatch)
  chex.assert_trees_all_close(split, whole, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('cell', ['mingru', 'minlstm'])
def test_sequential_min_rnn_is_the_same_in_both_layouts(cell, monkeypatch):
  layer = MinRNNLayer(cell, H, parallel=False)
  x = _normal(5, (B, T, 5))
  params = layer.init(jax.random.key(0), x)
  loss = lambda p: jnp.sum(jnp.sin(layer.apply(p, x)[0]))
  split, whole = _both_layouts(lambda: jax.value_and_grad(loss)(params), monkeypatch)
  chex.assert_trees_all_close(split, whole, rtol=1e-5, atol=1e-6)
