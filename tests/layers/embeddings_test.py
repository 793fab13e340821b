"""Tests for seqmodels/layers/embeddings.py: the tied output layer's logits and where its matmul
runs; the untied output layer is nn.Dense's function and parameters, on both of its paths."""

import flax.linen as nn
import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from seqmodels.layers.embeddings import OutputLayer, tied_logits
from seqmodels.models import gpt


class _Tied(nn.Module):
  @nn.compact
  def __call__(self, tokens_BxT, dtype):
    embed = nn.Embed(11, 8)
    return tied_logits(embed, embed(tokens_BxT).astype(dtype))


def _logit_dots(jaxpr, V: int) -> list:
  """The dot_general equations of a jaxpr (and its sub-jaxprs) whose output's last axis is the
  vocabulary."""
  found = []
  for eqn in jaxpr.eqns:
    if eqn.primitive.name == 'dot_general' and eqn.outvars[0].aval.shape[-1] == V:
      found.append(eqn)
    for sub in jax.extend.core.jaxprs_in_params(eqn.params):
      found += _logit_dots(sub, V)
  return found


def test_tied_logits_are_x_times_the_embedding_transposed_in_float32():
  tokens_BxT = jnp.asarray([[1, 4, 10], [0, 2, 2]])
  params = _Tied().init(jax.random.key(0), tokens_BxT, jnp.float32)['params']
  E_VxD = np.asarray(params['Embed_0']['embedding'], np.float64)
  expected = E_VxD[np.asarray(tokens_BxT)] @ E_VxD.T
  np.testing.assert_allclose(_Tied().apply({'params': params}, tokens_BxT, jnp.float32), expected,
                             rtol=1e-5)
  bf16 = _Tied().apply({'params': params}, tokens_BxT, jnp.bfloat16)
  assert bf16.dtype == jnp.float32
  np.testing.assert_allclose(bf16, expected, rtol=0.05, atol=0.05)


def test_gpt_in_bfloat16_computes_its_output_layer_in_bfloat16_with_float32_logits():
  cfg = gpt.GPTConfig(V=37, L=8, D=16, N=1, H=2, dtype=jnp.bfloat16)
  model = gpt.GPT(cfg)
  tokens_BxT = jnp.zeros((2, 8), jnp.int32)
  params = model.init(jax.random.key(0), tokens_BxT)['params']
  jaxpr = jax.make_jaxpr(lambda p: model.apply({'params': p}, tokens_BxT))(params).jaxpr
  (dot,) = _logit_dots(jaxpr, 37)
  assert [v.aval.dtype for v in dot.invars] == [jnp.bfloat16, jnp.bfloat16]
  assert dot.outvars[0].aval.dtype == jnp.float32


# 'gpu': the plain path, taken where XLA is not XLA:CPU
@pytest.mark.parametrize('backend', ['cpu', 'gpu'])
def test_output_layer_is_nn_dense_with_its_parameters_and_gradients(backend, monkeypatch):
  monkeypatch.setattr(jax, 'default_backend', lambda: backend)
  rng = np.random.default_rng(0)
  x_BxTxE = jnp.asarray(rng.normal(size=(3, 5, 16)), jnp.float32)
  targets_BxT = jnp.asarray(rng.integers(0, 40, (3, 5)))
  dense, out = nn.Dense(40), OutputLayer(40)
  params = dense.init(jax.random.key(1), x_BxTxE)
  # checkpoints fit both
  jax.tree.map(np.testing.assert_array_equal, out.init(jax.random.key(1), x_BxTxE), params)
  params = jax.tree.map(lambda p: p + 0.1, params)  # a bias that is not zero

  def loss(model):
    return lambda p, x: optax.softmax_cross_entropy_with_integer_labels(model.apply(p, x),
                                                                        targets_BxT).mean()

  (ref, ref_grads), (got, got_grads) = (
      jax.jit(jax.value_and_grad(loss(m), argnums=(0, 1)))(params, x_BxTxE) for m in (dense, out))
  np.testing.assert_allclose(got, ref, rtol=1e-6)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), got_grads,
               ref_grads)
  # a decoder step's [B, E] input, in bfloat16: float32 logits
  bf16 = OutputLayer(40, dtype=jnp.bfloat16)
  logits, dx = jax.value_and_grad(lambda x: bf16.apply(params, x).sum())(
      x_BxTxE[0].astype(jnp.bfloat16))
  assert logits.dtype == jnp.float32 and dx.shape == (5, 16) and dx.dtype == jnp.bfloat16
  np.testing.assert_allclose(dx, jnp.broadcast_to(params['params']['kernel'].sum(1), (5, 16)),
                             rtol=0.02)
