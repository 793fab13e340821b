"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?"): gates read x_t only, so
training is a scan.

Because no gate depends on h_{t-1}, the recurrence is linear, h_t = a_t * h_{t-1} + b_t, and all T
steps run as one `jax.lax.associative_scan` (O(log T) depth) instead of T sequential steps:
  minGRU:  z = sigmoid(W_z x),  h~ = g(W_h x)                       a = 1 - z,   b = z * h~
  minLSTM: f = sigmoid(W_f x),  i = sigmoid(W_i x),  h~ = g(W_h x)    a = f / (f + i),
                                                                      b = i / (f + i) * h~
With log_space=True (the paper's appendix B, the default) g(x) = x + 0.5 for x >= 0 and sigmoid(x)
otherwise, which keeps h~ > 0, and the scan runs on (log a, log b) pairs combined with logaddexp, so
long products of small a_t never underflow before they are summed. With log_space=False, g is the
identity and the scan runs on (a, b). The initial state h_0 enters in linear space, h_t = (a_1 ...
a_t) h_0 + [scan with h_0 = 0]_t, so it may be any real. The hoisted projection W x has the layout
[z, h~] (minGRU) or [f, i, h~] (minLSTM), each block H wide. `min_step` is the sequential form of
the same equations, for token-by-token inference.
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from seqmodels.layers import gates, scans

Array = jax.Array
MIN_GATES = {'mingru': 2, 'minlstm': 3}


def g(x: Array) -> Array:
  """The paper's positive activation: x + 0.5 for x >= 0, sigmoid(x) below (continuous at 0)."""
  return jnp.where(x >= 0, x + 0.5, jax.nn.sigmoid(x))


def log_g(x: Array) -> Array:
  """log g(x), computed without forming g(x) for negative x: log sigmoid(x) = -softplus(-x)."""
  return jnp.where(x >= 0, jnp.log(jax.nn.relu(x) + 0.5), -jax.nn.softplus(-x))


@functools.partial(jax.jit, static_argnames=('cell', 'log_space'))
def min_coefficients(cell: str, xw_BxTxG: Array, log_space: bool = True) -> tuple[Array, Array]:
  """(a, b) of h_t = a_t h_{t-1} + b_t from the projection, as (log a, log b) when log_space."""
  if cell == 'mingru':
    k, u = jnp.split(xw_BxTxG, 2, axis=-1)
    log_a, log_z = -jax.nn.softplus(k), -jax.nn.softplus(-k)  # log(1 - z), log z
  else:
    kf, ki, u = jnp.split(xw_BxTxG, 3, axis=-1)
    diff = jax.nn.softplus(-kf) - jax.nn.softplus(-ki)  # log(i / f)
    log_a, log_z = -jax.nn.softplus(diff), -jax.nn.softplus(-diff)  # log f', log i'
  if log_space:
    return log_a, log_z + log_g(u)
  return jnp.exp(log_a), jnp.exp(log_z) * u


def min_step(cell: str, xw_BxG: gates.Gates, h_BxH: Array, log_space: bool = True) -> Array:
  """One step of the sequential form, written from the paper's equations (not from
  `min_coefficients`).

  `xw_BxG` may come split by gate (seqmodels/layers/gates.py), as the sequential scan gives it on
  CPU.
  """
  act = g if log_space else (lambda v: v)
  if cell == 'mingru':
    k, u = gates.parts(xw_BxG, 2)
    z = jax.nn.sigmoid(k)
    return (1.0 - z) * h_BxH + z * act(u)
  kf, ki, u = gates.parts(xw_BxG, 3)
  f, i = jax.nn.sigmoid(kf), jax.nn.sigmoid(ki)
  return f / (f + i) * h_BxH + i / (f + i) * act(u)


def default_parallel() -> bool:
  """Whether minGRU/minLSTM train with the associative scan when not told: on GPU/TPU, yes; on CPU,
  no.

  On CPU the scan's log T passes over [B, T, H] cost more than T cheap elementwise steps: at B=4,
  T=4096, H=128 the recurrence alone took 229 ms (forward + backward) by associative scan and 54 ms
  by lax.scan (2-core CPU, 2026-11-24). On accelerators the sequential scan's T dependent steps
  leave the device idle.
  """
  return jax.default_backend() != 'cpu'


def _log_combine(e1, e2):
  """The same composition on logs: (log a1 + log a2, log(a2 b1 + b2))."""
  return e1[0] + e2[0], jnp.logaddexp(e2[0] + e1[1], e2[1])


# one compile for eager callers, inlined under jit
@functools.partial(jax.jit, static_argnames=('log_space',))
def parallel_linear_recurrence(a_BxTxH: Array, b_BxTxH: Array, h0_BxH: Array | None = None, *,
                               log_space: bool = False, dh_BxTxH: Array | None = None) -> Array:
  """All h_t of h_t = a_t h_{t-1} + b_t (+ dh_t) by associative scan over time; (a, b) are logs if
  log_space.

  `dh_BxTxH` is an additive perturbation of h_t (for gradient-flow analysis); it enters in linear
  space.
  """
  if log_space:
    log_a_BxTxH, log_h_BxTxH = jax.lax.associative_scan(_log_combine, (a_BxTxH, b_BxTxH), axis=1)
    a_prod_BxTxH, h_BxTxH = jnp.exp(log_a_BxTxH), jnp.exp(log_h_BxTxH)
    a_BxTxH = jnp.exp(a_BxTxH) if dh_BxTxH is not None else None
  else:
    a_prod_BxTxH, h_BxTxH = jax.lax.associative_scan(scans.combine, (a_BxTxH, b_BxTxH), axis=1)
  if h0_BxH is not None:
    h_BxTxH = h_BxTxH + a_prod_BxTxH * h0_BxH[:, None]
  if dh_BxTxH is not None:
    h_BxTxH = h_BxTxH + jax.lax.associative_scan(scans.combine, (a_BxTxH, dh_BxTxH), axis=1)[1]
  return h_BxTxH


class MinRNNLayer(nn.Module):
  """One minGRU / minLSTM layer: x_BxTxD -> (h_BxTxH, (h_BxH,)), parallel (train) or sequential
  (inference).

  Same interface as RecurrentLayer: padded steps (mask 0) leave the state unchanged and output
  zeros; `carry0` is the initial state `(h_BxH,)`; `reverse` runs right to left (for bidirectional
  stacks).
  """
  cell: str  # mingru | minlstm
  H: int
  log_space: bool = True
  reverse: bool = False
  dtype: Any = jnp.float32  # compute dtype of the projection; the scan runs in float32
  # training path: associative scan or sequential; None: `default_parallel()`
  parallel: bool | None = None
  kernel_init: Any = nn.initializers.lecun_normal()

  def setup(self):
    self.proj = nn.Dense(MIN_GATES[self.cell] * self.H, dtype=self.dtype,
                         kernel_init=self.kernel_init, name='proj')

  def _project(self, x):
    return self.proj(x).astype(jnp.float32)

  def __call__(self, x_BxTxD: Array, mask_BxT: Array | None = None,
               carry0: tuple[Array] | None = None, *,
               parallel: bool | None = None) -> tuple[Array, tuple[Array]]:
    """`parallel` (default: the module's, else `default_parallel()`) picks the associative scan or
    the sequential one; both compute the same h (tests/layers/minrnn_test.py)."""
    parallel = next(p for p in (parallel, self.parallel, default_parallel()) if p is not None)
    B, T = x_BxTxD.shape[:2]
    h0_BxH = (jnp.zeros((B, self.H), jnp.float32) if carry0 is None
              else carry0[0].astype(jnp.float32))
    flip = (lambda v: jnp.flip(v, axis=1)) if self.reverse else (lambda v: v)
    xw_BxTxG = flip(self._project(x_BxTxD))
    m_BxTx1 = None if mask_BxT is None else flip(mask_BxT)[..., None].astype(bool)
    dh_BxTxH = None
    if not self.is_initializing() and (self.is_mutable_collection('perturbations')
                                       or self.has_variable('perturbations', 'h')):
      dh_BxTxH = flip(self.perturb('h', jnp.zeros((B, T, self.H), jnp.float32)))
    if parallel:
      a, b = min_coefficients(self.cell, xw_BxTxG, self.log_space)
      if m_BxTx1 is not None:  # a padded step is the identity map: a = 1, b = 0
        a = jnp.where(m_BxTx1, a, 0.0 if self.log_space else 1.0)
        b = jnp.where(m_BxTx1, b, -jnp.inf if self.log_space else 0.0)
        dh_BxTxH = None if dh_BxTxH is None else jnp.where(m_BxTx1, dh_BxTxH, 0.0)
      h_BxTxH = parallel_linear_recurrence(a, b, None if carry0 is None else h0_BxH,
                                           log_space=self.log_space, dh_BxTxH=dh_BxTxH)
      hT_BxH = h_BxTxH[:, -1]
    else:
      hT_BxH, h_BxTxH = self._sequential(xw_BxTxG, h0_BxH, m_BxTx1, dh_BxTxH)
    if m_BxTx1 is not None:
      h_BxTxH = jnp.where(m_BxTx1, h_BxTxH, 0.0)
    return flip(h_BxTxH).astype(self.dtype), (hT_BxH,)

  def _sequential(self, xw_BxTxG, h0_BxH, m_BxTx1, dh_BxTxH):
    def body(h_BxH, inputs):
      xw_BxG, m_Bx1, dh_BxH = inputs
      new_BxH = min_step(self.cell, xw_BxG, h_BxH, self.log_space)
      new_BxH = new_BxH if dh_BxH is None else new_BxH + dh_BxH
      new_BxH = new_BxH if m_Bx1 is None else jnp.where(m_Bx1, new_BxH, h_BxH)
      return new_BxH, new_BxH

    swap = lambda v: None if v is None else jnp.swapaxes(v, 0, 1)
    xw_TxBxG = gates.by_gate(swap(xw_BxTxG), MIN_GATES[self.cell])
    hT_BxH, h_TxBxH = jax.lax.scan(body, h0_BxH, (xw_TxBxG, swap(m_BxTx1), swap(dh_BxTxH)))
    return hT_BxH, swap(h_TxBxH)

  def step(self, x_BxD: Array, carry: tuple[Array]) -> tuple[Array, tuple[Array]]:
    """One token for inference: (x_BxD, (h_BxH,)) -> (h_BxH, (h_BxH,)); O(1) memory in sequence
    length."""
    h_BxH = min_step(self.cell, self._project(x_BxD), carry[0].astype(jnp.float32), self.log_space)
    return h_BxH.astype(self.dtype), (h_BxH,)
