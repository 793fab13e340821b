"""Transformer blocks (Vaswani et al. 2017): self-attention + position-wise FFN, each with Add & Norm.

Post-LN (the paper: x = LN(x + f(x))) or pre-LN (GPT-2: x = x + f(LN(x))).
"""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from seqmodels.layers.attention import MultiHeadAttention

ACTIVATIONS: dict[str, Callable] = {'relu': jax.nn.relu, 'gelu': jax.nn.gelu}


class Mlp(nn.Module):
  """Position-wise FFN: Linear(D -> F) - activation - Linear(F -> D)."""
  F: int
  activation: str = 'gelu'
  dtype: Any = jnp.float32
  kernel_init: Any = nn.initializers.normal(0.02)
  out_init: Any = nn.initializers.normal(0.02)

  @nn.compact
  def __call__(self, x_BxTxD, *, train: bool = False):
    D = x_BxTxD.shape[-1]
    h_BxTxF = nn.Dense(self.F, dtype=self.dtype, kernel_init=self.kernel_init, name='fc')(x_BxTxD)
    h_BxTxF = ACTIVATIONS[self.activation](h_BxTxF)
    return nn.Dense(D, dtype=self.dtype, kernel_init=self.out_init, name='proj')(h_BxTxF)


class Block(nn.Module):
  """One Transformer block: self-attention (causal for decoders) then FFN, residual + LayerNorm each."""
  H: int
  F: int
  causal: bool = False
  pre_ln: bool = True
  activation: str = 'gelu'
  dropout: float = 0.0
  dtype: Any = jnp.float32
  out_init: Any = nn.initializers.normal(0.02)  # GPT-2 scales residual projections by 1/sqrt(2N)

  @nn.compact
  def __call__(self, x_BxTxD, lengths_B=None, *, train: bool = False):
    drop = lambda y: nn.Dropout(self.dropout, deterministic=not train)(y)
    ln = lambda name: nn.LayerNorm(dtype=self.dtype, name=name)
    attn = MultiHeadAttention(self.H, dtype=self.dtype, out_init=self.out_init, name='attn')
    mlp = Mlp(self.F, self.activation, dtype=self.dtype, out_init=self.out_init, name='mlp')
    sublayers = [
        (lambda y: attn(y, causal=self.causal, q_lengths_B=lengths_B, kv_lengths_B=lengths_B), 'ln_attn'),
        (lambda y: mlp(y, train=train), 'ln_mlp'),
    ]
    for f, ln_name in sublayers:
      if self.pre_ln:
        x_BxTxD = x_BxTxD + drop(f(ln(ln_name)(x_BxTxD)))
      else:
        x_BxTxD = ln(ln_name)(x_BxTxD + drop(f(x_BxTxD)))
    return x_BxTxD
