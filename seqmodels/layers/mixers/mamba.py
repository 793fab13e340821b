"""Mamba-1 as a mixer: a selective state space (Gu & Dao 2023, "Mamba: Linear-Time Sequence
Modeling with Selective State Spaces"; state-spaces/mamba's `mamba_simple.Mamba`).

With E = expand * D inner channels, a state of N = d_state per channel and R = ceil(D / 16):
  x, z = in_proj(u)                          D -> 2E
  x = SiLU(causal depthwise conv(x))         width `conv`, with bias
  dt_low, B_t, C_t = x_proj(x)               E -> R + 2N, no bias
  dt = softplus(dt_proj(dt_low))             R -> E, with bias
  h_t = exp(dt_t A) * h_{t-1} + dt_t B_t x_t A = -exp(A_log); h: [E, N]
  y_t = C_t . h_t + D * x_t
  out = out_proj(y * SiLU(z))                E -> D
exp(dt A) is the zero-order hold of A and dt B the Euler step of B, as the reference's
selective_scan_ref discretises. The selective scan runs in float32 whatever the compute dtype (as
the reference's), in one of three forms (cfg.scan) that compute the same function: 'chunked' (what
'auto' picks everywhere: `scans.selective_scan`, fused, chunks of cfg.chunk steps rematerialised in
the backward pass, so the [B, T, E, N] states are never held at once, as the reference's CUDA
kernel never writes them out; on a 2-core CPU the scan's forward and backward at B 8, E 168, N 16,
T 256-512 ran 1.7-4x faster than 'sequential' at chunks of 16-64 steps, and smaller chunks were
faster; on an accelerator it is the form whose memory stays O(T E + T / chunk E N)),
'sequential' (lax.scan over exp(dt A) and dt B x given as [B, T, E, N], as selective_scan_ref's
deltaA and deltaB_u) and 'associative' (lax.associative_scan over the same, [B, T, E, N] at each of
its O(log T) levels).
Decoding keeps the conv's last conv - 1 inputs and h [B, E, N] in the cache.
"""
from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from seqmodels.layers import scans
from seqmodels.layers.mixers import base
from seqmodels.layers.mixers.base import MixerConfig, cached, causal_conv, out_init

FORMS = ('sequential', 'associative', 'chunked')
DT_MIN, DT_MAX, DT_FLOOR = 1e-3, 1e-1, 1e-4  # the reference's dt_min, dt_max, dt_init_floor


def dt_rank(D: int) -> int:
  """The rank of dt's projection, ceil(D / 16) (the reference's dt_rank='auto')."""
  return math.ceil(D / 16)


def scan_form(scan: str) -> str:
  """cfg.scan as one of FORMS; 'auto' is the fused 'chunked' form on every platform."""
  return base.scan_form('mamba', scan, FORMS, elsewhere='chunked', cpu='chunked')


def a_log_init(key, shape, dtype=jnp.float32):
  """S4D-real: A_log[e, n] = log(n + 1), so A = -(n + 1) for every channel e."""
  del key
  E, N = shape
  return jnp.broadcast_to(jnp.log(jnp.arange(1, N + 1, dtype=dtype)), (E, N))


def dt_bias_init(key, shape, dtype=jnp.float32):
  """softplus^-1(dt), dt ~ exp(U[log dt_min, log dt_max]) floored at 1e-4: softplus(bias) = dt."""
  u = jax.random.uniform(key, shape, dtype)
  dt = jnp.maximum(jnp.exp(u * (math.log(DT_MAX) - math.log(DT_MIN)) + math.log(DT_MIN)), DT_FLOOR)
  return dt + jnp.log(-jnp.expm1(-dt))


class Mamba(nn.Module):
  """u_BxTxD -> out_BxTxD by the selective scan, from the state the cache holds when decoding."""
  cfg: MixerConfig

  @nn.compact
  def __call__(self, u_BxTxD, *, train: bool = False, decode_position=None):
    del train
    c = self.cfg
    if min(c.D, c.d_state, c.expand, c.conv) < 1:
      raise ValueError(f'mamba needs D, d_state, expand and conv >= 1: got {c.D}, {c.d_state}, '
                       f'{c.expand}, {c.conv}')
    form = scan_form(c.scan)
    E, N, R = c.expand * c.D, c.d_state, dt_rank(c.D)
    dense = lambda features, name, **kw: nn.Dense(features, dtype=c.dtype, param_dtype=jnp.float32,
                                                  name=name, **kw)
    xz_BxTx2E = dense(2 * E, 'in_proj', use_bias=c.use_bias)(u_BxTxD)
    x_BxTxE, z_BxTxE = jnp.split(xz_BxTx2E, 2, axis=-1)
    x_BxTxE = nn.silu(causal_conv(self, x_BxTxE, c.conv, decode_position, dtype=c.dtype))
    dbc_BxTx_ = dense(R + 2 * N, 'x_proj', use_bias=False)(x_BxTxE)
    dt_BxTxR, b_BxTxN, c_BxTxN = jnp.split(dbc_BxTx_, [R, R + N], axis=-1)
    # dt in float32, as the reference adds its bias in float32: rounded to bfloat16, a bias near
    # log(1e-3) would move dt by up to 2%. The projection has rank R: it costs nothing.
    wide = jnp.promote_types(c.dtype, jnp.float32)
    dt_proj = nn.Dense(E, dtype=wide, param_dtype=jnp.float32, name='dt_proj',
                       kernel_init=_symmetric_uniform(R ** -0.5), bias_init=dt_bias_init)
    A_log_ExN = self.param('A_log', a_log_init, (E, N), jnp.float32)
    D_E = self.param('D', nn.initializers.ones, (E,), jnp.float32)

    # The scan in float32 (float64 stays float64, for the tests), as the reference's.
    f32 = lambda a: a.astype(wide)
    x, b, cc = f32(x_BxTxE), f32(b_BxTxN), f32(c_BxTxN)
    dt_BxTxE = jax.nn.softplus(dt_proj(f32(dt_BxTxR)))
    A_ExN = -jnp.exp(A_log_ExN.astype(x.dtype))
    state, carry = None, False
    if decode_position is not None:
      B = u_BxTxD.shape[0]
      state, created = cached(self, 'ssm_state', lambda: jnp.zeros((B, E, N), x.dtype))
      carry = not created
    h0_BxExN = state.value.astype(x.dtype) if carry else None
    if form == 'chunked':
      y_BxTxE, hT_BxExN = scans.selective_scan(dt_BxTxE, A_ExN, b, cc, x, h0_BxExN,
                                               chunk=c.chunk, inner=_inner(form))
    else:
      dA_BxTxExN = jnp.exp(dt_BxTxE[..., None] * A_ExN)
      dBx_BxTxExN = (dt_BxTxE * x)[..., None] * b[:, :, None, :]
      h_BxTxExN, hT_BxExN = scans.linear_recurrence(dA_BxTxExN, dBx_BxTxExN, h0_BxExN, form=form)
      y_BxTxE = jnp.einsum('bten,btn->bte', h_BxTxExN, cc)
    if carry:
      state.value = hT_BxExN.astype(state.value.dtype)
    y_BxTxE = y_BxTxE + D_E.astype(x.dtype) * x
    y_BxTxE = (y_BxTxE * f32(nn.silu(z_BxTxE))).astype(c.dtype)
    return dense(c.D, 'out_proj', use_bias=c.use_bias, kernel_init=out_init(c))(y_BxTxE)


def _symmetric_uniform(scale: float):
  """U[-scale, scale]: the reference's dt_proj kernel, with scale = dt_rank^-0.5."""
  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -scale, scale)
  return init


def state_bytes(cfg: MixerConfig, batch: int, length: int) -> int:
  """The conv's last conv - 1 inputs [B, conv - 1, E] and the state h [B, E, N], in float32."""
  del length  # a fixed size
  E = cfg.expand * cfg.D
  return batch * E * (cfg.conv - 1 + cfg.d_state) * 4


def flops(cfg: MixerConfig, T: int) -> float:
  """The selective scan over h [E, N]: dt A, dt B x (3 E N), the recurrence in the form that runs,
  C . h (2 E N); less the 2 E N its A_log [E, N] counts as a weight (used once, not per token)."""
  del T
  EN = cfg.expand * cfg.D * cfg.d_state
  return 3.0 * EN + scans.recurrence_flops(EN, _inner(scan_form(cfg.scan)))


def _inner(form: str) -> str:
  """The `linear_recurrence` form a scan form runs: the chunked form's within its chunks, a
  lax.scan on CPU (where it is the faster), else O(log chunk) depth."""
  if form != 'chunked':
    return form
  return 'sequential' if jax.default_backend() == 'cpu' else 'associative'
