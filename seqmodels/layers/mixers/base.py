"""What every sequence mixer shares: its config, and the state it keeps in the 'cache' collection to
decode."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class MixerConfig:
  """The fields a mixer may read (each reads its own): one config for every mixer of a backbone."""
  D: int                       # width of the residual stream
  H: int = 4                   # heads (attention, GLA / RetNet, Mamba-2, mLSTM)
  d_state: int = 16            # N: state size per channel (Mamba), per head (Mamba-2's head state)
  expand: int = 2              # inner width = expand * D (Mamba, Mamba-2, mLSTM), RG-LRU's is D *
                               # expand / 2 ...
  conv: int = 4                # width of the causal depthwise convolution (Mamba, Mamba-2, RG-LRU)
  window: int = 0              # attention: > 0 sees the last `window` positions only (local
                               # attention)
  rope: bool = False           # attention: rotary positions
  chunk: int = 64              # chunked forms (linear attention's, Mamba's fused scan): steps per
                               # chunk
  scan: str = 'auto'           # how a linear recurrence runs: auto | sequential | associative |
                               # chunked
  use_bias: bool = False       # biases of the projections
  N: int = 1                   # blocks of the backbone: residual projections are initialised /
                               # sqrt(2N)
  dtype: Any = jnp.float32     # compute dtype; parameters are float32
  unroll: int = 1              # lax.scan unroll of step-by-step recurrences (a speed knob)
  recurrence: str = 'scan'     # rnn | lstm | gru cells: scan | hoisted | cudnn
  # What pre-trained checkpoints need (seqmodels/hf); the defaults are the plain mixers.
  kv_heads: int = 0            # attention: key/value heads, H / kv_heads queries share one (GQA;
                               # 1: multi-query); 0 means H
  qkv_bias: bool = True        # attention: with use_bias, biases on queries, keys and values too
  rope_base: float = 10000.0   # attention: RoPE's theta
  rope_fraction: float = 1.0   # attention: the share of each head's dims RoPE rotates (the first)
  groups: int = 1              # Mamba-2: groups of heads sharing one B and C (n_groups)
  lru_width: int = 0           # RG-LRU: the recurrence's width; 0 means D
  norm_eps: float = 1e-5       # a mixer's own norm (Mamba-2's gated RMSNorm)


@dataclasses.dataclass(frozen=True)
class Mixer:
  """A mixer's registry entry (seqmodels/layers/mixers/__init__.py)."""
  module: Callable[[MixerConfig], nn.Module]
  # Whether its state has a fixed size, whatever the length: it needs no positions (RoPE is refused
  # on it) and decodes past any length; attention's KV cache grows with the length instead.
  recurrent: bool
  # (config, batch, length) -> the bytes of the state it carries while decoding, in float32.
  state_bytes: Callable[[MixerConfig, int, int], int]
  # (config, length T) -> its forward FLOPs per token beyond 2 per weight (models/size.py):
  # attention's T-dependent term, a scan's per-step work, a chunked form's matmuls.
  flops: Callable[[MixerConfig, int], float] = lambda cfg, T: 0.0


def scan_form(name: str, scan: str, forms: tuple[str, ...], *, elsewhere: str,
              cpu: str = 'sequential') -> str:
  """cfg.scan as one of a mixer's `forms`: 'auto' is `cpu` on CPU and `elsewhere` on GPU/TPU (a
  speed choice per platform; every form computes the same function); a form it lacks is one line."""
  if scan == 'auto':
    return cpu if jax.default_backend() == 'cpu' else elsewhere
  if scan not in forms:
    choices = ', '.join(forms[:-1]) + ' or ' + forms[-1] if len(forms) > 1 else forms[0]
    raise ValueError(f'{name} has no {scan!r} scan form: set scan to auto, {choices}')
  return scan


def out_init(cfg: MixerConfig) -> Any:
  """The init of a projection back into the residual stream: N(0, 0.02 / sqrt(2N)), as GPT-2's."""
  return nn.initializers.normal(0.02 / (2 * cfg.N) ** 0.5)


def cached(module: nn.Module, name: str, init: Callable[[], Any]) -> tuple[Any, bool]:
  """(the 'cache' variable `name`, whether it was just created): a decoding state, zeroed at
  creation."""
  created = not module.has_variable('cache', name)
  return module.variable('cache', name, init), created


def causal_conv(module: nn.Module, x_BxTxC: jax.Array, width: int, decode_position, *,
                use_bias: bool = True, dtype: Any = jnp.float32, name: str = 'conv') -> jax.Array:
  """Causal depthwise 1-D convolution over time (Mamba's, Griffin's): y_t = sum_{j<width} w_j
  x_{t-j} + b.

  Decoding keeps the last width - 1 inputs in the cache ('conv_state': [B, width - 1, C]), so a step
  (or a prefill) continues the sequence exactly. Kernel [width, C]: tap j multiplies x_{t - (width -
  1 - j)}.
  """
  C = x_BxTxC.shape[-1]
  kernel_WxC = module.param(f'{name}_kernel', nn.initializers.lecun_normal(in_axis=0, out_axis=1),
                            (width, C), jnp.float32)
  bias_C = (module.param(f'{name}_bias', nn.initializers.zeros, (C,), jnp.float32) if use_bias
            else None)
  B, T = x_BxTxC.shape[:2]
  past = jnp.zeros((B, width - 1, C), x_BxTxC.dtype)
  if decode_position is not None:
    state, created = cached(module, f'{name}_state',
                            lambda: jnp.zeros((B, width - 1, C), x_BxTxC.dtype))
    if not created:
      past = state.value.astype(x_BxTxC.dtype)
      state.value = (jnp.concatenate([past, x_BxTxC], axis=1)[:, -(width - 1):] if width > 1
                     else state.value)
  xp_BxT_C = jnp.concatenate([past, x_BxTxC], axis=1)  # [B, width - 1 + T, C]
  y = sum(xp_BxT_C[:, j:j + T] * kernel_WxC[j].astype(dtype) for j in range(width))
  return (y + bias_C.astype(dtype)) if bias_C is not None else y
