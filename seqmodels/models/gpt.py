"""GPT (Radford et al. 2018/2019): decoder-only Transformer LM with learned positions and tied embeddings."""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from seqmodels.layers.transformer import Block


@dataclasses.dataclass(frozen=True)
class GPTConfig:
  V: int            # vocabulary size
  L: int            # context length (number of learned positions)
  D: int = 128      # width
  N: int = 4        # blocks
  H: int = 4        # heads
  F: int = 512      # FFN width
  dropout: float = 0.0
  dtype: Any = jnp.float32  # compute dtype; parameters are float32


class GPT(nn.Module):
  """tokens_BxT -> logits_BxTxV (float32); GPT-2 init: N(0, 0.02), residual projections / sqrt(2N)."""
  cfg: GPTConfig

  @nn.compact
  def __call__(self, tokens_BxT, *, train: bool = False):
    c = self.cfg
    T = tokens_BxT.shape[1]
    init = nn.initializers.normal(0.02)
    embed = nn.Embed(c.V, c.D, embedding_init=init, name='embed')
    pos_LxD = self.param('pos', init, (c.L, c.D), jnp.float32)
    x_BxTxD = (embed(tokens_BxT) + pos_LxD[:T]).astype(c.dtype)
    x_BxTxD = nn.Dropout(c.dropout, deterministic=not train)(x_BxTxD)
    for n in range(c.N):
      x_BxTxD = Block(c.H, c.F, causal=True, pre_ln=True, activation='gelu', dropout=c.dropout, dtype=c.dtype,
                      out_init=nn.initializers.normal(0.02 / (2 * c.N) ** 0.5), name=f'block{n}')(
                          x_BxTxD, train=train)
    x_BxTxD = nn.LayerNorm(dtype=c.dtype, name='ln_f')(x_BxTxD)
    return embed.attend(x_BxTxD).astype(jnp.float32)
