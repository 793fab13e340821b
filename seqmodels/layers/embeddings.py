"""Embeddings: tokens, segments (BERT's sentence A/B), learned positions (GPT/BERT) and sinusoidal
positions (Vaswani et al. 2017: PE(pos, 2i) = sin(pos / 10000^(2i/D)), PE(pos, 2i+1) = cos(pos /
10000^(2i/D))); and the output layers: tied (Press & Wolf 2017), the token embedding used as softmax
weights, or a matrix of their own."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


def sinusoidal_positions(L: int, D: int) -> np.ndarray:
  """The paper's fixed position encodings, float32 [L, D] (sines in even columns, cosines in odd
  ones)."""
  pos_Lx1 = np.arange(L, dtype=np.float64)[:, None]
  inv_freq = 1.0 / 10000 ** (np.arange(0, D, 2, dtype=np.float64) / D)
  pe_LxD = np.zeros((L, D), np.float64)
  pe_LxD[:, 0::2] = np.sin(pos_Lx1 * inv_freq)
  pe_LxD[:, 1::2] = np.cos(pos_Lx1 * inv_freq[:D // 2])
  return pe_LxD.astype(np.float32)


class PositionEmbedding(nn.Module):
  """Adds position vectors to x_BxTxD: 'learned' (a [L, D] parameter) or 'sinusoidal' (fixed).

  `offset` (a scalar, traced is fine) shifts the positions: token t of x is at position offset + t,
  which is what one decoding step with a KV cache needs.
  """
  L: int
  kind: str = 'learned'
  init: Any = nn.initializers.normal(0.02)

  @nn.compact
  def __call__(self, x_BxTxD, offset=0):
    T, D = x_BxTxD.shape[-2:]
    if self.kind == 'learned':
      table_LxD = self.param('pos', self.init, (self.L, D), jnp.float32)
    elif self.kind == 'sinusoidal':
      table_LxD = jnp.asarray(sinusoidal_positions(self.L, D))
    else:
      raise ValueError(f'Unknown position embedding {self.kind!r}: choose learned or sinusoidal.')
    pos_TxD = jax.lax.dynamic_slice_in_dim(table_LxD, offset, T, axis=0)
    return (x_BxTxD + pos_TxD).astype(x_BxTxD.dtype)


class SegmentEmbedding(nn.Module):
  """BERT's segment (sentence A = 0 / sentence B = 1) embeddings, added to x_BxTxD."""
  num_segments: int = 2
  init: Any = nn.initializers.normal(0.02)

  @nn.compact
  def __call__(self, x_BxTxD, segments_BxT):
    table = self.param('segment', self.init, (self.num_segments, x_BxTxD.shape[-1]), jnp.float32)
    return (x_BxTxD + table[segments_BxT]).astype(x_BxTxD.dtype)


def tied_logits(embed: nn.Embed, x_BxTxD) -> jax.Array:
  """logits_BxTxV = x @ E^T, float32, with the embedding E of an `nn.Embed` that has embedded some
  tokens already.

  The matmul runs in x's dtype (bfloat16 where the model computes in it: flax's `Embed.attend` would
  promote to the float32 parameters, the slow path for a layer that is a third of a GPT-2's FLOPs)
  and accumulates and returns float32, so the softmax sees unrounded logits.
  """
  return jnp.einsum('btd,vd->btv', x_BxTxD, embed.embedding.astype(x_BxTxD.dtype),
                    preferred_element_type=jnp.float32)


class OutputLayer(nn.Module):
  """The untied output layer: logits = x @ W + b, float32, with nn.Dense's parameters ('kernel' [E,
  V], 'bias' [V]: the same names, shapes and initial values, so a checkpoint of either reads as the
  other).

  The matmul runs in `dtype` and accumulates and returns float32, as `tied_logits`. On CPU the
  weight gradient x^T g is computed with x^T made an array first: XLA:CPU's dot contracting the
  leading axis of both operands took 42.7 ms for the word LM's 700 x 200 x 22,328 dW, and 23.5 ms
  once x^T is an array of its own (PyTorch: 24.2 ms).
  """
  features: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x_BxTxE):
    kernel_ExV = self.param('kernel', nn.initializers.lecun_normal(),
                            (x_BxTxE.shape[-1], self.features), jnp.float32)
    bias_V = self.param('bias', nn.initializers.zeros, (self.features,), jnp.float32)
    matmul = _matmul_materialised_xt if jax.default_backend() == 'cpu' else _matmul
    return matmul(x_BxTxE.astype(self.dtype), kernel_ExV.astype(self.dtype)) + bias_V


def _matmul(x_NxE, w_ExV):
  return jnp.einsum('...e,ev->...v', x_NxE, w_ExV, preferred_element_type=jnp.float32)


@jax.custom_vjp
def _matmul_materialised_xt(x_NxE, w_ExV):
  """_matmul, whose gradient forms x^T as an array before x^T g (OutputLayer's docstring:
  XLA:CPU)."""
  return _matmul(x_NxE, w_ExV)


def _matmul_fwd(x_NxE, w_ExV):
  return _matmul(x_NxE, w_ExV), (x_NxE, w_ExV)


def _matmul_bwd(residuals, g_NxV):
  x_NxE, w_ExV = residuals
  g_NxV = g_NxV.astype(x_NxE.dtype)
  dx_NxE = jnp.einsum('...v,ev->...e', g_NxV, w_ExV, preferred_element_type=jnp.float32).astype(
      x_NxE.dtype)
  xt_ExN = jax.lax.optimization_barrier(x_NxE.reshape(-1, x_NxE.shape[-1]).T)
  dw_ExV = jnp.dot(xt_ExN, g_NxV.reshape(-1, g_NxV.shape[-1]), preferred_element_type=jnp.float32)
  return dx_NxE, dw_ExV.astype(w_ExV.dtype)


_matmul_materialised_xt.defvjp(_matmul_fwd, _matmul_bwd)
