"""Transformer blocks (Vaswani et al. 2017): encoder block (self-attention + FFN) and decoder block
(masked self-attention + encoder-decoder attention + FFN), each sublayer with Add & Norm.

Post-LN (the paper: x = LN(x + f(x))) or pre-LN (GPT-2: x = x + f(LN(x))).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from seqmodels.layers.attention import MultiHeadAttention
from seqmodels.layers.mlp import Mlp

class Block(nn.Module):
  """One Transformer block: self-attention (causal for decoders) then FFN, residual + LayerNorm
  each."""
  H: int
  F: int
  causal: bool = False
  pre_ln: bool = True
  activation: str = 'gelu'
  dropout: float = 0.0
  dtype: Any = jnp.float32
  out_init: Any = nn.initializers.normal(0.02)  # GPT-2 scales residual projections by 1/sqrt(2N)
  norm_eps: float = 1e-6  # the LayerNorms' epsilon (GPT-2: 1e-5, BERT: 1e-12)

  @nn.compact
  def __call__(self, x_BxTxD, lengths_B=None, *, train: bool = False, decode_position=None):
    """`lengths_B`: real (unpadded) tokens per row; `decode_position`: see MultiHeadAttention (KV
    cache)."""
    attn = MultiHeadAttention(self.H, dtype=self.dtype, out_init=self.out_init, name='attn')
    mlp = Mlp(self.F, self.activation, dtype=self.dtype, out_init=self.out_init, name='mlp')
    sublayers = [
        (lambda y: attn(y, causal=self.causal, q_lengths_B=lengths_B, kv_lengths_B=lengths_B,
                        decode_position=decode_position), 'ln_attn'),
        (lambda y: mlp(y, train=train), 'ln_mlp'),
    ]
    return add_and_norm(self, x_BxTxD, sublayers, train)


def add_and_norm(block: nn.Module, x_BxTxD, sublayers, train: bool):
  """Residual + LayerNorm around each (f, ln_name): post-LN x = LN(x + f(x)), or pre-LN x = x +
  f(LN(x))."""
  drop = lambda y: nn.Dropout(block.dropout, deterministic=not train)(y)
  ln = lambda name: nn.LayerNorm(epsilon=getattr(block, 'norm_eps', 1e-6), dtype=block.dtype,
                                 name=name, parent=block)
  for f, ln_name in sublayers:
    if block.pre_ln:
      x_BxTxD = x_BxTxD + drop(f(ln(ln_name)(x_BxTxD)))
    else:
      x_BxTxD = ln(ln_name)(x_BxTxD + drop(f(x_BxTxD)))
  return x_BxTxD


class DecoderBlock(nn.Module):
  """Decoder block: masked self-attention, encoder-decoder attention (queries from the decoder, keys
  and values from the top encoder layer, only its real tokens), then FFN; residual + LayerNorm
  around each."""
  H: int
  F: int
  pre_ln: bool = False
  activation: str = 'relu'
  dropout: float = 0.0
  dtype: Any = jnp.float32
  out_init: Any = nn.initializers.normal(0.02)

  @nn.compact
  def __call__(self, y_BxTxD, memory_BxSxD, src_lengths_B=None, tgt_lengths_B=None, *,
               train: bool = False, decode_position=None):
    self_attn = MultiHeadAttention(self.H, dtype=self.dtype, out_init=self.out_init,
                                   name='self_attn')
    cross_attn = MultiHeadAttention(self.H, dtype=self.dtype, out_init=self.out_init,
                                    name='cross_attn')
    mlp = Mlp(self.F, self.activation, dtype=self.dtype, out_init=self.out_init, name='mlp')
    sublayers = [
        (lambda y: self_attn(y, causal=True, q_lengths_B=tgt_lengths_B, kv_lengths_B=tgt_lengths_B,
                             decode_position=decode_position), 'ln_self_attn'),
        (lambda y: cross_attn(y, memory_BxSxD, kv_lengths_B=src_lengths_B), 'ln_cross_attn'),
        (lambda y: mlp(y, train=train), 'ln_mlp'),
    ]
    return add_and_norm(self, y_BxTxD, sublayers, train)
