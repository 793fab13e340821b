"""Gated linear attention (Yang et al. 2024, "Gated Linear Attention Transformers with
Hardware-Efficient Training") and its fixed-decay special case, retention (Sun et al. 2023,
"Retentive Network"), as fla-org/flash-linear-attention's GatedLinearAttention and
MultiScaleRetention layers.

H heads, each of key width K = D / (2H) (fla's expand_k = 0.5) and value width V = D / H:
  q_t = x_t W_q / sqrt(K),  k_t = x_t W_k,  v_t = x_t W_v,  g_t = x_t W_g      ([K], [K], [V], [V])
  gla:    log alpha_t = logsigmoid(x_t W_a1 W_a2 + b) / 16   (rank-16 gate, a decay per key dim)
  retnet: log alpha_t = log(1 - 2^(-5 - h)) in head h (fixed); rotary positions on q_t and k_t
  S_t = diag(alpha_t) S_{t-1} + k_t^T v_t,   o_t = q_t S_t                    (S: [K, V] a head)
  y_t = concat_h(rmsnorm(o_t) * swish(g_t)) W_o
The recurrence is scans.linear_attention: 'chunked' (cfg.chunk steps a chunk) on accelerators,
'sequential' on CPU ('auto'), the same function. Decoding carries S, [B, H, K, V], in the cache.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from seqmodels.layers import scans
from seqmodels.layers.attention import rotary
from seqmodels.layers.mixers import base
from seqmodels.layers.mixers.base import MixerConfig, cached, out_init

FORMS = scans.ATTENTION_FORMS  # sequential | chunked
GATE_RANK = 16  # fla's gate_low_rank_dim
GATE_NORMALIZER = 16  # fla's gate_logit_normalizer: log alpha = logsigmoid(logit) / 16
NORM_EPS = 1e-5  # fla's norm_eps of the layers
# fla's layers initialise their projections xavier-uniform, gain 2^-2.5 (the output: out_init here).
xavier = nn.initializers.variance_scaling(2 ** -5, 'fan_avg', 'uniform')


def form_of(scan: str, name: str) -> str:
  """cfg.scan as a form of scans.linear_attention; 'auto': sequential on CPU, else chunked."""
  return base.scan_form(name, scan, FORMS, elsewhere='chunked')


def head_sizes(cfg: MixerConfig, name: str) -> tuple[int, int]:
  """(K, V): the key and value widths of a head, D / (2H) and D / H."""
  if cfg.H < 1 or cfg.D % (2 * cfg.H):
    raise ValueError(f'{name}: heads H={cfg.H} must divide the key width D / 2 = {cfg.D / 2:g} '
                     f'(D={cfg.D}): choose H and D with D a multiple of 2H')
  return cfg.D // (2 * cfg.H), cfg.D // cfg.H


def retention_log_gamma(H: int, dtype=jnp.float32) -> jax.Array:
  """log gamma_h of RetNet's heads, gamma_h = 1 - 2^(-5 - h): [H]."""
  return jnp.asarray(np.log1p(-np.exp2(-5.0 - np.arange(H))), dtype)


class GLA(nn.Module):
  """x_BxTxD -> y_BxTxD by gated linear attention, or by retention when `retnet`."""
  cfg: MixerConfig
  retnet: bool = False

  @nn.compact
  def __call__(self, x_BxTxD, *, train: bool = False, decode_position=None):
    del train
    c = self.cfg
    kind = 'retnet' if self.retnet else 'gla'
    K, V = head_sizes(c, kind)
    if self.retnet and K % 2:
      raise ValueError(f'retnet: rotary positions need an even key width per head, and '
                       f'D / (2H) = {K}: make D a multiple of 4H')
    form = form_of(c.scan, kind)
    B, T, _ = x_BxTxD.shape
    H = c.H
    f32 = jnp.promote_types(c.dtype, jnp.float32)  # gates, the norm and the state: float32 (or 64)

    def dense(width, name, use_bias=c.use_bias, init=xavier):
      return nn.Dense(width, use_bias=use_bias, dtype=c.dtype, kernel_init=init, name=name)

    q_BxTxHxK = dense(H * K, 'q')(x_BxTxD).reshape(B, T, H, K) * K ** -0.5
    k_BxTxHxK = dense(H * K, 'k')(x_BxTxD).reshape(B, T, H, K)
    v_BxTxHxV = dense(H * V, 'v')(x_BxTxD).reshape(B, T, H, V)
    g_BxTxHxV = dense(H * V, 'g')(x_BxTxD).reshape(B, T, H, V)
    if self.retnet:
      positions_T = (0 if decode_position is None else decode_position) + jnp.arange(T)
      q_BxTxHxK, k_BxTxHxK = rotary(q_BxTxHxK, positions_T), rotary(k_BxTxHxK, positions_T)
      log_decay = jnp.broadcast_to(retention_log_gamma(H, f32), (B, T, H))
    else:
      low_BxTxR = dense(GATE_RANK, 'gate_down', use_bias=False)(x_BxTxD)
      logit_BxTxHxK = dense(H * K, 'gate_up', use_bias=True)(low_BxTxR).reshape(B, T, H, K)
      log_decay = jax.nn.log_sigmoid(logit_BxTxHxK.astype(f32)) / GATE_NORMALIZER

    s0_BxHxKxV, state, created = None, None, True
    if decode_position is not None:
      state, created = cached(self, 'state', lambda: jnp.zeros((B, H, K, V), f32))
      if not created:
        s0_BxHxKxV = state.value
        form = 'sequential' if T == 1 else form  # a step; a prefill runs the training form
    o_BxTxHxV, sT_BxHxKxV = scans.linear_attention(q_BxTxHxK, k_BxTxHxK, v_BxTxHxV, log_decay,
                                                   s0_BxHxKxV, form=form, chunk=c.chunk)
    if not created:
      state.value = sT_BxHxKxV

    # fla's FusedRMSNormGated: per head, rmsnorm(o) * scale, times swish(g).
    scale_V = self.param('norm_scale', nn.initializers.ones, (V,), jnp.float32)
    o = o_BxTxHxV.astype(f32)
    o = o * jax.lax.rsqrt(jnp.mean(o * o, axis=-1, keepdims=True) + NORM_EPS) * scale_V
    o = o * jax.nn.silu(g_BxTxHxV.astype(f32))
    return dense(c.D, 'out', init=out_init(c))(o.astype(c.dtype).reshape(B, T, H * V))


def state_bytes(cfg: MixerConfig, batch: int, length: int) -> int:
  """S of every head, [B, H, D / (2H), D / H] in float32, whatever the length."""
  del length
  return batch * cfg.H * (cfg.D // (2 * cfg.H)) * (cfg.D // cfg.H) * 4


def flops_of(retnet: bool):
  def flops(cfg: MixerConfig, T: int) -> float:
    """Linear attention of H heads, keys D / (2H) and values D / H, in the form that runs."""
    K, V = cfg.D // (2 * cfg.H), cfg.D // cfg.H
    return scans.attention_flops(cfg.H, K, V, T, form=form_of(cfg.scan, 'gla'), chunk=cfg.chunk,
                                 scalar=retnet)
  return flops
