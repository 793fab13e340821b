"""Hawk/Griffin's recurrent block with the RG-LRU (De et al. 2024, "Griffin: Mixing Gated Linear
Recurrences with Local Attention"), as google-deepmind/recurrentgemma's RecurrentBlock and RGLRU:

  y_t = GeLU(W_y x_t + b_y)                          the gate branch, width E
  u_t = conv(W_x x_t + b_x)                          causal depthwise convolution, width cfg.conv
  r_t = sigmoid(W_a u_t + b_a)                       recurrence gate   } block-diagonal W,
  i_t = sigmoid(W_i u_t + b_i)                       input gate        } one block per head
  log a_t = c r_t log a = -c r_t softplus(-Lambda)   a = sigmoid(Lambda), c = 8
  h_t = a_t h_{t-1} + sqrt(1 - a_t^2) (i_t u_t)      at position 0: h = i u, not normalised
  out_t = W_o (y_t * h_t) + b_o                      back to D

The LRU width E is the model width D unless cfg.lru_width says otherwise (D is recurrentgemma's
default `lru_width`; the paper's 7B models use about 4/3 D). The recurrence runs in float32
whatever the compute dtype (float64 stays float64, for the tests), by `scans.linear_recurrence`:
'sequential' (lax.scan; 'auto' on CPU) or 'associative' (lax.associative_scan; 'auto' elsewhere),
the same function. Decoding carries h [B, E] and the convolution's last cfg.conv - 1 inputs.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from seqmodels.layers import scans
from seqmodels.layers.mixers import base
from seqmodels.layers.mixers.base import MixerConfig, cached, causal_conv, out_init

FORMS = scans.FORMS  # sequential, associative
C = 8.0  # the constant c of log a_t = c r_t log a
MIN_RAD, MAX_RAD = 0.9, 0.999  # a = sigmoid(Lambda) at init: a^2 uniform on [MIN_RAD^2, MAX_RAD^2]
MAX_SQRT_GRAD = 1000.0  # d sqrt(1 - a_t^2) is clipped here: a_t -> 1 (r_t -> 0) makes it infinite


def lru_width(cfg: MixerConfig) -> int:
  """E: the width of the recurrence (and of the gate branch)."""
  return cfg.lru_width or cfg.D


def scan_form(scan: str) -> str:
  """cfg.scan as a form of scans.linear_recurrence; 'auto': sequential on CPU, else associative."""
  return base.scan_form('rglru', scan, FORMS, elsewhere='associative')


def ring_init(key, shape, dtype=jnp.float32) -> jax.Array:
  """Lambda such that a = sigmoid(Lambda) lies in [MIN_RAD, MAX_RAD], uniform by the ring's area
  (a^2 uniform), as recurrentgemma's `rnn_real_param_init` (its parameter is -Lambda; eps kept)."""
  u = jax.random.uniform(key, shape, jnp.float32)
  log_a = 0.5 * jnp.log(u * (MAX_RAD ** 2 - MIN_RAD ** 2) + MIN_RAD ** 2 + 1e-8)
  return (-jnp.log(jnp.exp(-log_a) - 1.0)).astype(dtype)  # logit(a)


@jax.custom_jvp
def sqrt_bounded_grad(x: jax.Array) -> jax.Array:
  """sqrt(x) with its derivative at most MAX_SQRT_GRAD (recurrentgemma's guard against NaNs)."""
  return jnp.sqrt(x)


@sqrt_bounded_grad.defjvp
def _sqrt_bounded_grad_jvp(primals, tangents):
  (x,), (dx,) = primals, tangents
  return jnp.sqrt(x), dx * 0.5 / jnp.sqrt(jnp.maximum(x, 0.25 / MAX_SQRT_GRAD ** 2))


class RGLRU(nn.Module):
  """x_BxTxD -> out_BxTxD by Griffin's recurrent block, from the cache's state when decoding."""
  cfg: MixerConfig

  def block_diagonal(self, u_BxTxE: jax.Array, name: str) -> jax.Array:
    """W u + b, W block-diagonal with one [E/H, E/H] block per head (recurrentgemma's
    BlockDiagonalLinear), initialised as its JAX source does: flax counts the H blocks into the
    fan-in, so the std is 1 / sqrt(E) (its PyTorch port uses 1 / sqrt(E / H))."""
    c = self.cfg
    B, T, E = u_BxTxE.shape
    init = nn.initializers.variance_scaling(1.0, 'fan_in', 'normal')
    w_HxIxJ = self.param(f'{name}_kernel', init, (c.H, E // c.H, E // c.H), jnp.float32)
    b_HxJ = self.param(f'{name}_bias', nn.initializers.zeros, (c.H, E // c.H), jnp.float32)
    u_BxTxHxI = u_BxTxE.reshape(B, T, c.H, E // c.H)
    out = jnp.einsum('bthi,hij->bthj', u_BxTxHxI, w_HxIxJ.astype(c.dtype)) + b_HxJ.astype(c.dtype)
    return out.reshape(B, T, E)

  @nn.compact
  def __call__(self, x_BxTxD, *, train: bool = False, decode_position=None):
    del train
    c = self.cfg
    E = lru_width(c)
    if E % c.H:
      raise ValueError(f'rglru: heads H={c.H} must divide the lru width E={E} (one block of the '
                       'gates per head): change heads or width')
    form = scan_form(c.scan)
    B, T, _ = x_BxTxD.shape
    dense = lambda features, init, name: nn.Dense(features, use_bias=c.use_bias, kernel_init=init,
                                                   dtype=c.dtype, name=name)
    in_init = nn.initializers.variance_scaling(1.0, 'fan_in', 'normal')
    y_BxTxE = jax.nn.gelu(dense(E, in_init, 'linear_y')(x_BxTxD))
    u_BxTxE = dense(E, in_init, 'linear_x')(x_BxTxD)
    u_BxTxE = causal_conv(self, u_BxTxE, c.conv, decode_position, dtype=c.dtype, name='conv')

    # The RG-LRU, in float32 (float64 stays float64).
    f32 = lambda v: v.astype(jnp.promote_types(v.dtype, jnp.float32))
    r_BxTxE = jax.nn.sigmoid(f32(self.block_diagonal(u_BxTxE, 'gate_a')))
    i_BxTxE = jax.nn.sigmoid(f32(self.block_diagonal(u_BxTxE, 'gate_x')))
    lambda_E = f32(self.param('Lambda', ring_init, (E,), jnp.float32))
    log_a_BxTxE = -C * r_BxTxE * jax.nn.softplus(-lambda_E)
    norm_BxTxE = sqrt_bounded_grad(1.0 - jnp.exp(2.0 * log_a_BxTxE))
    # A sequence starts at position 0, where h = i u: neither decayed from h0 nor normalised.
    first = 0 if decode_position is None else decode_position
    start_1xTx1 = (first + jnp.arange(T) == 0)[None, :, None]
    a_BxTxE = jnp.where(start_1xTx1, 0.0, jnp.exp(log_a_BxTxE))
    b_BxTxE = jnp.where(start_1xTx1, 1.0, norm_BxTxE) * i_BxTxE * f32(u_BxTxE)

    h0_BxE, state = None, None
    if decode_position is not None:
      state, created = cached(self, 'h', lambda: jnp.zeros((B, E), b_BxTxE.dtype))
      h0_BxE, state = (None, None) if created else (state.value.astype(b_BxTxE.dtype), state)
    h_BxTxE, hT_BxE = scans.linear_recurrence(a_BxTxE, b_BxTxE, h0_BxE, form=form)
    if state is not None:
      state.value = hT_BxE.astype(state.value.dtype)
    return dense(c.D, out_init(c), 'linear_out')(y_BxTxE * h_BxTxE.astype(c.dtype))


def state_bytes(cfg: MixerConfig, batch: int, length: int) -> int:
  """h [B, E] and the convolution's last conv - 1 inputs [B, conv - 1, E], in float32."""
  del length  # a fixed size
  return batch * lru_width(cfg) * cfg.conv * 4


def flops(cfg: MixerConfig, T: int) -> float:
  """The recurrence over h [E]; its gates' block-diagonal weights count as weights."""
  del T
  return scans.recurrence_flops(lru_width(cfg), scan_form(cfg.scan))
