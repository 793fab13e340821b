"""Causal multi-head attention as a mixer: the one attention of seqmodels/layers/attention.py (cuDNN
on GPU where it applies), with rotary positions and a local window as options, and its KV cache for
decoding."""

from __future__ import annotations

import flax.linen as nn

from seqmodels.layers.attention import MultiHeadAttention
from seqmodels.layers.mixers.base import MixerConfig, out_init


class Attention(nn.Module):
  """x_BxTxD -> y_BxTxD, each position attending to itself and the ones before (the last `window` of
  them)."""
  cfg: MixerConfig

  @nn.compact
  def __call__(self, x_BxTxD, *, train: bool = False, decode_position=None):
    del train
    c = self.cfg
    return MultiHeadAttention(c.H, dtype=c.dtype, use_bias=c.use_bias, out_init=out_init(c),
                              rope=c.rope, rope_base=c.rope_base, rope_fraction=c.rope_fraction,
                              window=c.window, kv_heads=c.kv_heads,
                              qkv_bias=c.use_bias and c.qkv_bias,
                              name='attn')(x_BxTxD, causal=True, decode_position=decode_position)


def state_bytes(cfg: MixerConfig, batch: int, length: int) -> int:
  """The KV cache: keys and values of every position decoded so far (of the window, when local),
  for each key/value head."""
  kept = min(length, cfg.window) if cfg.window else length
  return 2 * batch * kept * (cfg.kv_heads or cfg.H) * (cfg.D // cfg.H) * 4


def flops(cfg: MixerConfig, T: int) -> float:
  """q k^T and the weighted values over all T keys, 4 T D a token: a local window is a mask, and
  the masked scores are computed too (PaLM's 12 L H Q T counts them so, for training)."""
  return 4.0 * T * cfg.D
