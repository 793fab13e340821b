"""Linear recurrences, each form written once; which form runs is a speed choice, never a different
model.

Elementwise (diagonal) recurrences, h_t = a_t * h_{t-1} + b_t over any trailing shape
(minGRU/minLSTM's [H], Mamba's [D, N], RG-LRU's [D]):
  * `linear_recurrence(..., form='sequential')`: lax.scan, T dependent steps (the fast form on CPU);
  * `linear_recurrence(..., form='associative')`: lax.associative_scan, O(log T) depth (Blelloch
    1990), the accelerators' form.
Matrix-state recurrences of linear attention with decay (GLA, RetNet, Mamba-2's SSD, mLSTM's
memory),
  S_t = diag(g_t) S_{t-1} + k_t v_t^T,   o_t = S_t^T q_t   (S: [K, V] per head; g_t =
                                                           exp(log_decay_t)),
with the decay a scalar per head and step ([B, T, H]: RetNet, SSD, mLSTM) or one per key dimension
([B, T, H, K]: GLA):
  * `linear_attention(..., form='sequential')`: the recurrence itself, step by step (the reference);
  * `linear_attention(..., form='chunked')`: chunks of C steps, within which the outputs are masked,
    decayed attention (matmuls) and across which the state is carried (Yang et al. 2024, GLA; Dao &
    Gu 2024, SSD): the work is matmuls and the memory O(T K V / C), never T x K x V.
Mamba's selective scan fused with its discretisation and read-out (`selective_scan`): chunks of the
elementwise recurrence, rematerialised, so that [B, T, E, N] is never held at once.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

Array = jax.Array
FORMS = ('sequential', 'associative')
ATTENTION_FORMS = ('sequential', 'chunked')


def combine(e1, e2):
  """(a1, b1) then (a2, b2): h -> a2 (a1 h + b1) + b2."""
  return e1[0] * e2[0], e2[0] * e1[1] + e2[1]


@functools.partial(jax.jit, static_argnames=('form',))
def linear_recurrence(a_BxTx_: Array, b_BxTx_: Array, h0_Bx_: Array | None = None, *,
                      form: str = 'sequential') -> tuple[Array, Array]:
  """(h_BxTx..., h_T) of h_t = a_t * h_{t-1} + b_t, h_0 = h0 (zeros when None), time on axis 1."""
  if form not in FORMS:
    raise ValueError(f'unknown scan form {form!r}: choose one of {FORMS}')
  if h0_Bx_ is None:
    h0_Bx_ = jnp.zeros(b_BxTx_.shape[:1] + b_BxTx_.shape[2:], b_BxTx_.dtype)
  if form == 'associative':
    a_prod, h = jax.lax.associative_scan(combine, (a_BxTx_, b_BxTx_), axis=1)
    h = h + a_prod * h0_Bx_[:, None]
    return h, h[:, -1]

  def step(h, ab):
    h = ab[0] * h + ab[1]
    return h, h

  hT, h_Tx = jax.lax.scan(step, h0_Bx_, (jnp.swapaxes(a_BxTx_, 0, 1), jnp.swapaxes(b_BxTx_, 0, 1)))
  return jnp.swapaxes(h_Tx, 0, 1), hT


def linear_attention(q_BxTxHxK: Array, k_BxTxHxK: Array, v_BxTxHxV: Array, log_decay: Array,
                     s0_BxHxKxV: Array | None = None, *, form: str = 'chunked',
                     chunk: int = 64) -> tuple[Array, Array]:
  """(o_BxTxHxV, S_T) of S_t = diag(exp(log_decay_t)) S_{t-1} + k_t v_t^T, o_t = S_t^T q_t, in
  float32 (or float64 for float64 inputs).

  `log_decay` is [B, T, H] (one decay a head) or [B, T, H, K] (one a key dimension), <= 0. The
  chunked form needs T to be a multiple of `chunk` or pads it (padded steps have decay 1 and zero
  keys: the state passes through).
  """
  if form not in ATTENTION_FORMS:
    raise ValueError(f'unknown linear attention form {form!r}: choose one of {ATTENTION_FORMS}')
  f32 = lambda x: x.astype(jnp.promote_types(x.dtype, jnp.float32))
  q, k, v, g = f32(q_BxTxHxK), f32(k_BxTxHxK), f32(v_BxTxHxV), f32(log_decay)
  B, T, H, K = k.shape
  V = v.shape[-1]
  scalar = g.ndim == 3
  s0 = jnp.zeros((B, H, K, V), v.dtype) if s0_BxHxKxV is None else f32(s0_BxHxKxV)
  if form == 'sequential':
    return _sequential_attention(q, k, v, g, s0, scalar)
  C = min(chunk, T)
  pad = -T % C
  if pad:
    widths = lambda x: [(0, 0), (0, pad)] + [(0, 0)] * (x.ndim - 2)
    q, k, v, g = (jnp.pad(x, widths(x)) for x in (q, k, v, g))
  o, sT = _chunked_attention(q, k, v, g, s0, scalar, C)
  return o[:, :T], sT


def _sequential_attention(q, k, v, g, s0, scalar: bool):
  def step(s_BxHxKxV, inputs):
    q_BxHxK, k_BxHxK, v_BxHxV, g_BxHx_ = inputs
    decay = jnp.exp(g_BxHx_)[..., None, None] if scalar else jnp.exp(g_BxHx_)[..., None]
    s_BxHxKxV = decay * s_BxHxKxV + k_BxHxK[..., None] * v_BxHxV[..., None, :]
    return s_BxHxKxV, jnp.einsum('bhk,bhkv->bhv', q_BxHxK, s_BxHxKxV)

  swap = lambda x: jnp.swapaxes(x, 0, 1)
  sT, o_TxBxHxV = jax.lax.scan(step, s0, tuple(map(swap, (q, k, v, g))))
  return swap(o_TxBxHxV), sT


def _chunked_attention(q, k, v, g, s0, scalar: bool, C: int):
  B, T, H, K = k.shape
  V = v.shape[-1]
  N = T // C
  chunks = lambda x: jnp.moveaxis(x.reshape(B, N, C, *x.shape[2:]), 1, 0)  # [N, B, C, H, ...]
  q, k, v, g = map(chunks, (q, k, v, g))
  # log of the decay from the chunk's start through step c: [N, B, C, H(, K)]
  b = jnp.cumsum(g, axis=2)
  causal_CxC = jnp.tril(jnp.ones((C, C), bool))

  def per_chunk(s_BxHxKxV, inputs):
    q_BxCxHxK, k_BxCxHxK, v_BxCxHxV, b_BxCxHx_ = inputs
    last = b_BxCxHx_[:, -1]  # the whole chunk's decay, [B, H(, K)]
    if scalar:
      # Within the chunk: o_t += sum_{s <= t} exp(b_t - b_s) (q_t . k_s) v_s.
      d_BxHxCxC = (
          b_BxCxHx_.transpose(0, 2, 1)[..., :, None] - b_BxCxHx_.transpose(0, 2, 1)[..., None, :])
      w_BxHxCxC = jnp.where(causal_CxC, jnp.exp(jnp.where(causal_CxC, d_BxHxCxC, 0.0)), 0.0)
      scores = jnp.einsum('bthk,bshk->bhts', q_BxCxHxK, k_BxCxHxK) * w_BxHxCxC
      inter = jnp.einsum('bthk,bhkv->bthv', q_BxCxHxK, s_BxHxKxV) * jnp.exp(b_BxCxHx_)[..., None]
      k_in = k_BxCxHxK * jnp.exp(last[:, None] - b_BxCxHx_)[..., None]  # decayed to the chunk's end
      s_BxHxKxV = jnp.exp(last)[..., None, None] * s_BxHxKxV
    else:
      # Per key dimension: the decay between s and t multiplies each product q_t,i k_s,i.
      d_BxCxCxHxK = b_BxCxHx_[:, :, None] - b_BxCxHx_[:, None, :]
      w = jnp.where(causal_CxC[None, :, :, None, None], jnp.exp(jnp.where(
          causal_CxC[None, :, :, None, None], d_BxCxCxHxK, 0.0)), 0.0)
      scores = jnp.einsum('bthk,bshk,btshk->bhts', q_BxCxHxK, k_BxCxHxK, w)
      inter = jnp.einsum('bthk,bhkv->bthv', q_BxCxHxK * jnp.exp(b_BxCxHx_), s_BxHxKxV)
      k_in = k_BxCxHxK * jnp.exp(last[:, None] - b_BxCxHx_)
      s_BxHxKxV = jnp.exp(last)[..., None] * s_BxHxKxV
    o_BxCxHxV = inter + jnp.einsum('bhts,bshv->bthv', scores, v_BxCxHxV)
    s_BxHxKxV = s_BxHxKxV + jnp.einsum('bshk,bshv->bhkv', k_in, v_BxCxHxV)
    return s_BxHxKxV, o_BxCxHxV

  sT, o = jax.lax.scan(per_chunk, s0, (q, k, v, b))
  return jnp.moveaxis(o, 0, 1).reshape(B, T, H, V), sT


def selective_scan(dt_BxTxE: Array, A_ExN: Array, b_BxTxN: Array, c_BxTxN: Array, x_BxTxE: Array,
                   h0_BxExN: Array | None = None, *, chunk: int = 64,
                   inner: str = 'associative') -> tuple[Array, Array]:
  """(y_BxTxE, h_T) of Mamba's selective scan, h_t = exp(dt_t A) h_{t-1} + dt_t x_t B_t (h: [E,
  N]), y_t = h_t C_t, fused: never [B, T, E, N].

  Time runs in chunks of `chunk` steps (lax.scan carries h across them); each chunk discretises
  its own exp(dt A) and dt x B, runs `linear_recurrence` over them (form `inner`) and contracts
  with C at once, so the [B, chunk, E, N] states live one chunk at a time. The chunk is
  rematerialised (jax.checkpoint), so the backward pass keeps only the chunks' first states,
  [T / chunk, B, E, N], where the unfused forms keep T of them (and so do selective_scan_ref's
  deltaA and deltaB_u; the reference's CUDA kernel also recomputes the states in its backward
  pass). T that is not a multiple of `chunk` is padded with dt = 0: the state passes through.
  """
  B, T, E = x_BxTxE.shape
  if h0_BxExN is None:
    h0_BxExN = jnp.zeros((B, E, A_ExN.shape[-1]), x_BxTxE.dtype)
  C = max(1, min(chunk, T))
  pad = -T % C
  if pad:
    widths = lambda x: [(0, 0), (0, pad), (0, 0)]
    dt_BxTxE, b_BxTxN, c_BxTxN, x_BxTxE = (
        jnp.pad(x, widths(x)) for x in (dt_BxTxE, b_BxTxN, c_BxTxN, x_BxTxE))
  chunks = lambda x: jnp.moveaxis(x.reshape(B, -1, C, x.shape[-1]), 1, 0)  # [T / C, B, C, ...]

  @jax.checkpoint
  def per_chunk(h_BxExN, inputs):
    dt_BxCxE, b_BxCxN, c_BxCxN, x_BxCxE = inputs
    dA_BxCxExN = jnp.exp(dt_BxCxE[..., None] * A_ExN)
    dBx_BxCxExN = (dt_BxCxE * x_BxCxE)[..., None] * b_BxCxN[:, :, None, :]
    h_BxCxExN, h_BxExN = linear_recurrence(dA_BxCxExN, dBx_BxCxExN, h_BxExN, form=inner)
    return h_BxExN, jnp.einsum('bcen,bcn->bce', h_BxCxExN, c_BxCxN)

  hT_BxExN, y = jax.lax.scan(per_chunk, h0_BxExN,
                             tuple(map(chunks, (dt_BxTxE, b_BxTxN, c_BxTxN, x_BxTxE))))
  return jnp.moveaxis(y, 0, 1).reshape(B, -1, E)[:, :T], hT_BxExN


def recurrence_flops(state: int, form: str) -> float:
  """Forward FLOPs per step of `linear_recurrence` of `form` over `state` elements: a * h + b,
  sequentially; the associative scan combines each element about twice, 3 FLOPs a combine."""
  return (6.0 if form == 'associative' else 2.0) * state


def attention_flops(H: int, K: int, V: int, T: int, *, form: str, chunk: int,
                    scalar: bool) -> float:
  """Forward FLOPs per token of `linear_attention` of `form`, H heads of K keys and V values.

  Sequential: decay, k v^T, add and q S, 5 K V a head. Chunked (C = min(chunk, T) steps): the
  masked scores q k^T within the chunk and their decay weights (3 C K per key-dimension decay, for
  the three-way product, 2 C K + 2 C per scalar decay), their values (2 C V), and the state read
  and written once a token (4 K V): the quadratic part is C, not T.
  """
  if form == 'sequential':
    return H * 5.0 * K * V
  C = min(chunk, T)
  within = 2.0 * C * K + 2.0 * C if scalar else 4.0 * C * K
  return H * (within + 2.0 * C * V + 4.0 * K * V)
