"""Normalisations of the residual stream: LayerNorm (Ba et al. 2016) and RMSNorm (Zhang & Sennrich
2019)."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

NORMS = ('layernorm', 'rmsnorm')


class RMSNorm(nn.Module):
  """x / sqrt(mean(x^2) + eps) * scale, computed in float32 and returned in `dtype`."""
  eps: float = 1e-6
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x_BxTxD: jax.Array) -> jax.Array:
    scale_D = self.param('scale', nn.initializers.ones, (x_BxTxD.shape[-1],), jnp.float32)
    x = x_BxTxD.astype(jnp.float32)
    x = x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + self.eps)
    return (x * scale_D).astype(self.dtype)


def make_norm(kind: str, *, dtype: Any, use_bias: bool = True,
              name: str | None = None) -> nn.Module:
  """The norm named `kind` (NORMS); `use_bias` gives LayerNorm its bias (RMSNorm has none)."""
  if kind == 'layernorm':
    return nn.LayerNorm(dtype=dtype, use_bias=use_bias, name=name)
  if kind == 'rmsnorm':
    return RMSNorm(dtype=dtype, name=name)
  raise ValueError(f'unknown norm {kind!r}: choose one of {NORMS}')
