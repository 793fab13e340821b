"""Mamba-2 as a mixer: the SSD block of Dao & Gu 2024, "Transformers are SSMs" (state-spaces/mamba).

E = expand * D inner channels in H heads of P = E / H, state size N, one B and C for each of G
groups of H / G consecutive heads (n_groups; G = 1 by default):
  z, x, B, C, dt = in_proj(u)                    [E, E, G N, G N, H]
  x, B, C = SiLU(causal_conv([x, B, C]))          depthwise, width `conv`, with bias
  dt = softplus(dt + dt_bias),  A = -exp(A_log)   one scalar a head
  h_t = exp(dt_t A) h_{t-1} + dt_t x_t B_t^T      h: [P, N] a head
  y_t = h_t C_t + D x_t
  out = out_proj(RMSNorm(y * SiLU(z)))           gate, then norm (norm_before_gate=False), over
                                                 each group's E / G channels
The recurrence is linear attention with q = C, k = B, v = dt x and the decay exp(dt A)
(scans.linear_attention): its chunked form (the SSD algorithm) trains, its sequential form decodes.
The decoding state is the convolution's last inputs and h ([B, H, P, N], the reference's ssm_state).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from seqmodels.layers import scans
from seqmodels.layers.mixers import base
from seqmodels.layers.mixers.mamba import dt_bias_init  # Mamba's dt init, per head here
from seqmodels.layers.mixers.base import MixerConfig, cached, causal_conv, out_init
from seqmodels.layers.norms import RMSNorm

FORMS = ('sequential', 'chunked')
A_RANGE = (1.0, 16.0)       # A = -exp(A_log), A_log = log U[1, 16]
NORM_EPS = 1e-5             # the reference's gated RMSNorm


def form(cfg: MixerConfig) -> str:
  """The form for cfg.scan: 'auto' is chunked on every platform.

  Chunked trains faster on CPU too: the sequential form runs T small dependent steps and its
  backward pass keeps every step's [P, N] state, the chunked one each chunk's. Decoding a token at
  a time runs the recurrence.
  """
  return base.scan_form('mamba2', cfg.scan, FORMS, elsewhere='chunked', cpu='chunked')


def a_log_init(key, shape, dtype=jnp.float32):
  """log A for A ~ U[1, 16] a head (the reference's A_init_range)."""
  return jnp.log(jax.random.uniform(key, shape, dtype, *A_RANGE))


class Mamba2(nn.Module):
  """x_BxTxD -> y_BxTxD, from the conv and SSM states the cache holds when decoding."""
  cfg: MixerConfig

  @nn.compact
  def __call__(self, x_BxTxD, *, train: bool = False, decode_position=None):
    del train
    c = self.cfg
    E, H, N, G = c.expand * c.D, c.H, c.d_state, c.groups
    if E % H:
      raise ValueError(f'mamba2: inner width expand * D = {E} does not split into H = {H} heads')
    if H % G:
      raise ValueError(f'mamba2: H = {H} heads do not split into {G} groups')
    P = E // H
    Bsz, T, _ = x_BxTxD.shape
    state_dtype = jnp.promote_types(c.dtype, jnp.float32)  # float32, or float64 in float64 tests
    f32 = lambda a: a.astype(jnp.promote_types(a.dtype, state_dtype))
    proj = nn.Dense(2 * E + 2 * G * N + H, use_bias=c.use_bias, dtype=c.dtype,
                    kernel_init=nn.initializers.normal(0.02), name='in_proj')(x_BxTxD)
    z_BxTxE, xbc_BxTxC, dt_BxTxH = jnp.split(proj, [E, 2 * E + 2 * G * N], axis=-1)
    xbc_BxTxC = jax.nn.silu(causal_conv(self, xbc_BxTxC, c.conv, decode_position, dtype=c.dtype))
    x_BxTxE, b_BxTxGN, c_BxTxGN = jnp.split(xbc_BxTxC, [E, E + G * N], axis=-1)

    a_log_H = self.param('A_log', a_log_init, (H,), jnp.float32)
    dt_bias_H = self.param('dt_bias', dt_bias_init, (H,), jnp.float32)
    d_H = self.param('D', nn.initializers.ones, (H,), jnp.float32)
    dt_BxTxH = jax.nn.softplus(f32(dt_BxTxH) + dt_bias_H)
    x_BxTxHxP = f32(x_BxTxE.reshape(Bsz, T, H, P))
    heads = lambda m_BxTxGN: f32(jnp.repeat(m_BxTxGN.reshape(Bsz, T, G, N), H // G, axis=2))

    how, h0_BxHxNxP = form(c), None
    if decode_position is not None:
      state, created = cached(self, 'ssm_state', lambda: jnp.zeros((Bsz, H, P, N), state_dtype))
      h0_BxHxNxP = f32(jnp.swapaxes(state.value, -1, -2))
      how = 'sequential' if T == 1 else how
    y_BxTxHxP, hT_BxHxNxP = scans.linear_attention(
        heads(c_BxTxGN), heads(b_BxTxGN), x_BxTxHxP * dt_BxTxH[..., None],
        dt_BxTxH * -jnp.exp(a_log_H), h0_BxHxNxP, form=how, chunk=c.chunk)
    if decode_position is not None and not created:
      state.value = jnp.swapaxes(hT_BxHxNxP, -1, -2)
    y_BxTxHxP = y_BxTxHxP + d_H[:, None] * x_BxTxHxP

    y_BxTxE = y_BxTxHxP.reshape(Bsz, T, E) * jax.nn.silu(f32(z_BxTxE))
    y_BxTxE = RMSNorm(eps=c.norm_eps, dtype=c.dtype, groups=G, name='norm')(y_BxTxE)
    return nn.Dense(c.D, use_bias=c.use_bias, dtype=c.dtype, kernel_init=out_init(c),
                    name='out_proj')(y_BxTxE)


def state_bytes(cfg: MixerConfig, batch: int, length: int) -> int:
  """The conv state (the last conv - 1 inputs of [x, B, C]) and h ([H, P, N]: E x N a row)."""
  del length  # a fixed size
  E = cfg.expand * cfg.D
  return batch * 4 * ((cfg.conv - 1) * (E + 2 * cfg.groups * cfg.d_state) + E * cfg.d_state)


def flops(cfg: MixerConfig, T: int) -> float:
  """Linear attention of H heads, keys of N (B, C), values of P = E / H, in the form that runs."""
  E = cfg.expand * cfg.D
  return scans.attention_flops(cfg.H, cfg.d_state, E // cfg.H, T, form=form(cfg), chunk=cfg.chunk,
                               scalar=True)
