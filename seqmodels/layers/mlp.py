"""Position-wise feed-forward layers: Linear - activation - Linear (Vaswani et al. 2017), and the
gated variants of Shazeer 2020 (GLU Variants Improve Transformer): SwiGLU and GeGLU, act(x W) * (x
V) then W_2."""

from __future__ import annotations

import functools
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

# gelu is the tanh approximation (GPT-2's gelu_new), gelu_erf the exact one (BERT's)
ACTIVATIONS: dict[str, Callable] = {'relu': jax.nn.relu, 'gelu': jax.nn.gelu,
                                    'gelu_erf': functools.partial(jax.nn.gelu, approximate=False)}
GATED: dict[str, Callable] = {'swiglu': jax.nn.silu, 'geglu': jax.nn.gelu}
MLPS = (*ACTIVATIONS, *GATED)


class Mlp(nn.Module):
  """x_BxTxD -> x_BxTxD through F hidden units: act(x W_fc) W_proj, or gated act(x W_gate) * (x
  W_up) W_proj ('fc' is then [D, 2, F]: gate and up as one matmul)."""
  F: int
  activation: str = 'gelu'
  dtype: Any = jnp.float32
  use_bias: bool = True
  kernel_init: Any = nn.initializers.normal(0.02)
  out_init: Any = nn.initializers.normal(0.02)

  @nn.compact
  def __call__(self, x_BxTxD, *, train: bool = False):
    D = x_BxTxD.shape[-1]
    if self.activation in GATED:
      gate_BxTxF, up_BxTxF = jnp.unstack(nn.DenseGeneral(
          (2, self.F), dtype=self.dtype, use_bias=self.use_bias, kernel_init=self.kernel_init,
          name='fc')(x_BxTxD), axis=-2)
      h_BxTxF = GATED[self.activation](gate_BxTxF) * up_BxTxF
    else:
      h_BxTxF = nn.Dense(self.F, dtype=self.dtype, use_bias=self.use_bias,
                         kernel_init=self.kernel_init, name='fc')(x_BxTxD)
      h_BxTxF = ACTIVATIONS[self.activation](h_BxTxF)
    return nn.Dense(D, dtype=self.dtype, use_bias=self.use_bias, kernel_init=self.out_init,
                    name='proj')(h_BxTxF)
