"""Embeddings: tokens, segments (BERT's sentence A/B), learned positions (GPT/BERT) and sinusoidal positions
(Vaswani et al. 2017: PE(pos, 2i) = sin(pos / 10000^(2i/D)), PE(pos, 2i+1) = cos(pos / 10000^(2i/D))); and the
tied output layer (Press & Wolf 2017), the token embedding used as softmax weights."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


def sinusoidal_positions(L: int, D: int) -> np.ndarray:
  """The paper's fixed position encodings, float32 [L, D] (sines in even columns, cosines in odd ones)."""
  pos_Lx1 = np.arange(L, dtype=np.float64)[:, None]
  inv_freq = 1.0 / 10000 ** (np.arange(0, D, 2, dtype=np.float64) / D)
  pe_LxD = np.zeros((L, D), np.float64)
  pe_LxD[:, 0::2] = np.sin(pos_Lx1 * inv_freq)
  pe_LxD[:, 1::2] = np.cos(pos_Lx1 * inv_freq[:D // 2])
  return pe_LxD.astype(np.float32)


class PositionEmbedding(nn.Module):
  """Adds position vectors to x_BxTxD: 'learned' (a [L, D] parameter) or 'sinusoidal' (fixed).

  `offset` (a scalar, traced is fine) shifts the positions: token t of x is at position offset + t, which is
  what one decoding step with a KV cache needs.
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
  """logits_BxTxV = x @ E^T, float32, with the embedding E of an `nn.Embed` that has embedded some tokens already.

  The matmul runs in x's dtype (bfloat16 where the model computes in it: flax's `Embed.attend` would promote
  to the float32 parameters, the slow path for a layer that is a third of a GPT-2's FLOPs) and accumulates and
  returns float32, so the softmax sees unrounded logits.
  """
  return jnp.einsum('btd,vd->btv', x_BxTxD, embed.embedding.astype(x_BxTxD.dtype),
                    preferred_element_type=jnp.float32)
