"""Normalisations of the residual stream: LayerNorm (Ba et al. 2016) and RMSNorm (Zhang & Sennrich
2019), the latter also as Gemma writes it (x-hat times 1 + scale, the scale initialised to 0)."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

NORMS = ('layernorm', 'rmsnorm', 'rmsnorm1p')
EPS = 1e-6  # every norm's epsilon unless its config says otherwise


class RMSNorm(nn.Module):
  """x / sqrt(mean(x^2) + eps) * scale, computed in float32 and returned in `dtype`.

  groups > 1 normalises each of `groups` equal slices of the features on its own (Mamba-2's gated
  norm with n_groups); one_plus multiplies by 1 + scale, the scale initialised to 0 (Gemma's, so
  its checkpoints' weights are the parameter as they are)."""
  eps: float = EPS
  dtype: Any = jnp.float32
  groups: int = 1
  one_plus: bool = False

  @nn.compact
  def __call__(self, x_BxTxD: jax.Array) -> jax.Array:
    init = nn.initializers.zeros if self.one_plus else nn.initializers.ones
    scale_D = self.param('scale', init, (x_BxTxD.shape[-1],), jnp.float32)
    x = x_BxTxD.astype(jnp.float32)
    x = x.reshape(*x.shape[:-1], self.groups, -1)
    x = (x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + self.eps)).reshape(
        x_BxTxD.shape)
    return (x * (1.0 + scale_D if self.one_plus else scale_D)).astype(self.dtype)


def make_norm(kind: str, *, dtype: Any, use_bias: bool = True, eps: float = EPS,
              name: str | None = None) -> nn.Module:
  """The norm named `kind` (NORMS); `use_bias` gives LayerNorm its bias (RMSNorm has none)."""
  if kind == 'layernorm':
    return nn.LayerNorm(epsilon=eps, dtype=dtype, use_bias=use_bias, name=name)
  if kind in ('rmsnorm', 'rmsnorm1p'):
    return RMSNorm(eps=eps, dtype=dtype, one_plus=kind == 'rmsnorm1p', name=name)
  raise ValueError(f'unknown norm {kind!r}: choose one of {NORMS}')
