"""xLSTM's mLSTM layer (Beck et al. 2024, "xLSTM: Extended Long Short-Term Memory"; NX-AI/xlstm's
mLSTMLayer, the pre-up-projection block): a matrix memory per head, written through an exponential
input gate and decayed by a sigmoid forget gate; E = expand * D inner units in H heads of P = E / H.

  x_m, z = x W_up (D -> 2E);  c = SiLU(conv(x_m));  q, k = c W_q, c W_k;  v = x_m W_v (4x4 blocks)
  i~_t = w_i [q, k, v] + b_i,  f~_t = w_f [q, k, v] + b_f (scalars a head),  log f_t = logsig(f~_t)
  m_t = max(log f_t + m_{t-1}, i~_t),  f'_t = exp(log f_t + m_{t-1} - m_t),  i'_t = exp(i~_t - m_t)
  C_t = f'_t C_{t-1} + i'_t k_t v_t^T,  n_t = f'_t n_{t-1} + i'_t k_t   (k_t scaled by P^-1/2)
  h_t = C_t^T q_t / (max(|n_t . q_t|, exp(-m_t)) + 1e-6)
  y = ((GroupNorm_heads(h) + skip * c) * SiLU(z)) W_down
The stabilised memory is the linear attention of seqmodels/layers/scans.py with log decay log f'_t
and keys i'_t k_t, n_t its column for a value of 1; and m_t, unrolled, is a cumulative max:
F_t + max(m_0, max_{s<=t} i~_s - F_s) with F_t the summed log f. So every form of
`scans.linear_attention` (sequential, chunked) runs the same stabilised recurrence, no exponent
above 0. h does not depend on the stabiliser but through the 1e-6, so xlstm's parallel backend
(a row maximum for m_t) computes it too. Unlike xlstm, E is not rounded up to a multiple of 64.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from seqmodels.layers import scans
from seqmodels.layers.mixers import base
from seqmodels.layers.mixers.base import MixerConfig, cached, causal_conv, out_init

BLOCK = 4  # q, k, v: block-diagonal BLOCK x BLOCK blocks (xlstm's qkv_proj_blocksize)
EPS = 1e-6  # added to the normaliser, as the reference's backends do
NORM_EPS = 1e-5  # of the per-head group norm (the reference's MultiHeadLayerNorm)


def sizes(cfg: MixerConfig) -> tuple[int, int]:
  """(E, P): inner width and head width; a one-line ValueError for sizes the layer cannot split."""
  E = cfg.expand * cfg.D
  if E % cfg.H:
    raise ValueError(f'mlstm: inner width expand * D = {E} does not split into H = {cfg.H} heads')
  if E % BLOCK:
    raise ValueError(f'mlstm: inner width expand * D = {E} is not a multiple of the q/k/v block '
                     f'size {BLOCK}')
  return E, E // cfg.H


def form_of(scan: str) -> str:
  """cfg.scan as a form of `scans.linear_attention`: 'auto' is chunked everywhere. On CPU too: a
  block's forward and backward at width 64, 4 heads, batch 4 took 6.4 / 37 ms chunked against 14 /
  92 ms sequential at T = 128 / 512 (2-core CPU, jax 0.10.2, 2026-12-07)."""
  return base.scan_form('mlstm', scan, scans.ATTENTION_FORMS, elsewhere='chunked', cpu='chunked')


def stabiliser(log_f_BxTxH: jax.Array, i_BxTxH: jax.Array, m0_BxH: jax.Array) -> jax.Array:
  """m_t = max(log f_t + m_{t-1}, i~_t) unrolled: F_t + max(m_0, max_{s<=t} i~_s - F_s)"""
  F_BxTxH = jnp.cumsum(log_f_BxTxH, axis=1)
  return F_BxTxH + jnp.maximum(m0_BxH[:, None], jax.lax.cummax(i_BxTxH - F_BxTxH, axis=1))


def mlstm_memory(q_BxTxHxP, k_BxTxHxP, v_BxTxHxP, i_BxTxH, log_f_BxTxH, state, *, form: str,
                 chunk: int):
  """(h_BxTxHxP, (C_BxHxPxP, n_BxHxP, m_BxH)): the stabilised mLSTM memory continued from `state`
  (C, n, m), in float32 (float64 for float64 inputs), as `scans.linear_attention` of `form`."""
  C0_BxHxPxP, n0_BxHxP, m0_BxH = state
  P = k_BxTxHxP.shape[-1]
  m_BxTxH = stabiliser(log_f_BxTxH, i_BxTxH, m0_BxH)
  m_prev_BxTxH = jnp.concatenate([m0_BxH[:, None], m_BxTxH[:, :-1]], axis=1)
  log_decay_BxTxH = log_f_BxTxH + m_prev_BxTxH - m_BxTxH  # log f'_t <= 0, up to rounding
  k_BxTxHxP = k_BxTxHxP * (jnp.exp(i_BxTxH - m_BxTxH) * P ** -0.5)[..., None]  # i'_t k_t / sqrt(P)
  ones_BxTxHx1 = jnp.ones(v_BxTxHxP.shape[:-1] + (1,), v_BxTxHxP.dtype)
  o_BxTxHxP1, s_BxHxPxP1 = scans.linear_attention(
      q_BxTxHxP, k_BxTxHxP, jnp.concatenate([v_BxTxHxP, ones_BxTxHx1], -1), log_decay_BxTxH,
      jnp.concatenate([C0_BxHxPxP, n0_BxHxP[..., None]], -1), form=form, chunk=chunk)
  qn_BxTxH = o_BxTxHxP1[..., -1]  # n_t . q_t: the output of the value 1
  denominator_BxTxH = jnp.maximum(jnp.abs(qn_BxTxH), jnp.exp(-m_BxTxH)) + EPS
  h_BxTxHxP = o_BxTxHxP1[..., :-1] / denominator_BxTxH[..., None]
  return h_BxTxHxP, (s_BxHxPxP1[..., :-1], s_BxHxPxP1[..., -1], m_BxTxH[:, -1])


def _linspace_init(start: float, stop: float):
  return lambda rng, shape, dtype=jnp.float32: jnp.linspace(start, stop, shape[0], dtype=dtype)


class MLSTM(nn.Module):
  """x_BxTxD -> y_BxTxD of one mLSTM layer; decoding continues from its cache: the convolution's
  last inputs and the memory (C, n, m)."""
  cfg: MixerConfig

  def _blockwise(self, name: str, x_BxTxE: jax.Array, init) -> jax.Array:
    """A block-diagonal projection E -> E of BLOCK x BLOCK blocks (xlstm's LinearHeadwiseExpand)."""
    c = self.cfg
    B, T, E = x_BxTxE.shape
    w_NxIxO = self.param(f'{name}_kernel', init, (E // BLOCK, BLOCK, BLOCK), jnp.float32)
    x_BxTxNxI = x_BxTxE.reshape(B, T, E // BLOCK, BLOCK)
    y_BxTxE = jnp.einsum('btni,nio->btno', x_BxTxNxI, w_NxIxO.astype(c.dtype)).reshape(B, T, E)
    if c.use_bias:
      y_BxTxE = y_BxTxE + self.param(f'{name}_bias', nn.initializers.zeros, (E,),
                                     jnp.float32).astype(c.dtype)
    return y_BxTxE

  @nn.compact
  def __call__(self, x_BxTxD, *, train: bool = False, decode_position=None):
    del train
    c = self.cfg
    E, P = sizes(c)
    H = c.H
    acc = jnp.promote_types(c.dtype, jnp.float32)  # of the gates, memory and norm
    form = form_of(c.scan)
    B, T, _ = x_BxTxD.shape
    small = nn.initializers.normal((2 / (5 * c.D)) ** 0.5)  # the reference's small_init, of D
    dense = lambda n, name, **kw: nn.Dense(n, use_bias=c.use_bias, dtype=c.dtype, name=name, **kw)
    xm_BxTxE, z_BxTxE = jnp.split(dense(2 * E, 'up', kernel_init=small)(x_BxTxD), 2, axis=-1)
    c_BxTxE = nn.silu(causal_conv(self, xm_BxTxE, c.conv, decode_position, dtype=c.dtype))
    q_BxTxE = self._blockwise('q', c_BxTxE, small)
    k_BxTxE = self._blockwise('k', c_BxTxE, small)
    v_BxTxE = self._blockwise('v', xm_BxTxE, small)
    qkv_BxTx3E = jnp.concatenate([q_BxTxE, k_BxTxE, v_BxTxE], -1).astype(acc)
    gate = lambda name, bias_init: nn.Dense(H, kernel_init=nn.initializers.zeros,
                                            bias_init=bias_init, dtype=acc, name=name)(qkv_BxTx3E)
    i_BxTxH = gate('igate', nn.initializers.normal(0.1))
    log_f_BxTxH = jax.nn.log_sigmoid(gate('fgate', _linspace_init(3.0, 6.0)))

    zeros = lambda: (jnp.zeros((B, H, P, P), acc), jnp.zeros((B, H, P), acc),
                     jnp.zeros((B, H), acc))
    state0, cache, created = zeros(), None, True
    if decode_position is not None:
      cache, created = cached(self, 'memory', zeros)
      state0 = cache.value
    heads = lambda y_BxTxE: y_BxTxE.reshape(B, T, H, P)
    h_BxTxHxP, state = mlstm_memory(heads(q_BxTxE), heads(k_BxTxE), heads(v_BxTxE), i_BxTxH,
                                    log_f_BxTxH, state0, form=form, chunk=c.chunk)
    if not created:
      cache.value = state

    # A group norm of each head's P units (the reference's MultiHeadLayerNorm), one scale a unit.
    h_BxTxHxP = h_BxTxHxP.astype(acc)
    h_BxTxHxP = h_BxTxHxP - jnp.mean(h_BxTxHxP, axis=-1, keepdims=True)
    h_BxTxHxP = h_BxTxHxP * jax.lax.rsqrt(jnp.mean(h_BxTxHxP ** 2, -1, keepdims=True) + NORM_EPS)
    scale_E = self.param('norm_scale', nn.initializers.ones, (E,), jnp.float32)
    skip_E = self.param('skip', nn.initializers.ones, (E,), jnp.float32)
    h_BxTxE = (h_BxTxHxP.reshape(B, T, E) * scale_E).astype(c.dtype)
    h_BxTxE = (h_BxTxE + skip_E.astype(c.dtype) * c_BxTxE) * nn.silu(z_BxTxE)
    return dense(c.D, 'down', kernel_init=out_init(c))(h_BxTxE)


def state_bytes(cfg: MixerConfig, batch: int, length: int) -> int:
  """The convolution's last conv - 1 inputs and each head's C [P, P], n [P] and m, in float32."""
  del length  # a fixed size
  E, P = sizes(cfg)
  return 4 * batch * ((cfg.conv - 1) * E + cfg.H * (P * P + P + 1))


def flops(cfg: MixerConfig, T: int) -> float:
  """The memory as linear attention of H heads, keys P and values P + 1 (n rides as a value)."""
  E = cfg.expand * cfg.D
  P = E // cfg.H
  return scans.attention_flops(cfg.H, P, P + 1, T, form=form_of(cfg.scan), chunk=cfg.chunk,
                               scalar=True)
