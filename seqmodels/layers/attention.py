"""Attention, written once: scaled dot-product (through jax.nn.dot_product_attention) and
multi-head.

Vaswani et al. 2017: Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V.
"""

from __future__ import annotations

import re
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

Array = jax.Array


def cudnn_applies(dtype, head_dim: int, device: jax.Device) -> bool:
  """Whether cuDNN's flash attention takes these inputs on `device` (jax raises, with no fallback,
  where it does not): an NVIDIA GPU of compute capability 8.0 (Ampere) or later, half-precision
  inputs, and heads of a multiple of 8 up to 256 from Hopper (9.0) on, 128 before (jax's
  check_is_flash_attention)."""
  if device.platform != 'gpu' or jnp.dtype(dtype) not in (jnp.bfloat16, jnp.float16):
    return False
  try:
    capability = tuple(int(x) for x in getattr(device, 'compute_capability', '').split('.'))
  except (AttributeError, ValueError):  # not a CUDA device (ROCm reports an architecture name)
    return False
  return (capability >= (8, 0) and head_dim % 8 == 0 and
          head_dim <= (256 if capability >= (9, 0) else 128))


def _implementation(q: Array) -> str:
  """cuDNN flash attention on GPU for half-precision inputs with a supported head size, XLA
  elsewhere."""
  return 'cudnn' if cudnn_applies(q.dtype, q.shape[-1], jax.devices()[0]) else 'xla'


def scaled_dot_product_attention(
    q_BxTxHxK: Array, k_BxSxHxK: Array, v_BxSxHxK: Array, *, causal: bool = False,
    q_lengths_B: Array | None = None, kv_lengths_B: Array | None = None,
    mask_BxHxTxS: Array | None = None, implementation: str = 'auto') -> Array:
  """softmax(Q K^T / sqrt(K)) V over heads; masks by causality, sequence lengths or an explicit
  mask.

  implementation: 'cudnn' (jax.nn.dot_product_attention's fused kernel), 'xla' (the two einsums
  below, which XLA fuses), or 'auto' (cuDNN on GPU where it applies, else XLA). The XLA path is
  written here rather than taken from jax.nn.dot_product_attention(implementation='xla'): that one
  vmaps over query groups, and the transposes this adds made a GPT training step 20-30% slower on
  CPU (bench/gpt.py, 4x128 GPT, T=64). Both compute the same function
  (tests/layers/transformer_test.py). Prefer `causal` and lengths: a boolean mask rules out the
  cuDNN kernel. Rows of padded queries (t >= q_lengths_B) are zero. Returns out_BxTxHxK in the dtype
  of q; the softmax is computed in float32 either way.
  """
  if implementation == 'auto':
    implementation = 'xla' if mask_BxHxTxS is not None else _implementation(q_BxTxHxK)
  if implementation != 'xla':
    return jax.nn.dot_product_attention(
        q_BxTxHxK, k_BxSxHxK, v_BxSxHxK, mask=mask_BxHxTxS, is_causal=causal,
        query_seq_lengths=q_lengths_B, key_value_seq_lengths=kv_lengths_B,
        implementation=implementation)
  T = q_BxTxHxK.shape[1]
  p_BxHxTxS = attention_weights(q_BxTxHxK, k_BxSxHxK, causal=causal, kv_lengths_B=kv_lengths_B,
                                mask_BxHxTxS=mask_BxHxTxS).astype(v_BxSxHxK.dtype)
  out_BxTxHxK = jnp.einsum('bhts,bshk->bthk', p_BxHxTxS, v_BxSxHxK).astype(q_BxTxHxK.dtype)
  if q_lengths_B is not None:
    out_BxTxHxK = jnp.where((jnp.arange(T)[None, :] < q_lengths_B[:, None])[:, :, None, None],
                            out_BxTxHxK, 0)
  return out_BxTxHxK


def attention_weights(q_BxTxHxK: Array, k_BxSxHxK: Array, *, causal: bool = False,
                      kv_lengths_B: Array | None = None,
                      mask_BxHxTxS: Array | None = None) -> Array:
  """softmax(Q K^T / sqrt(K)) under the masks of `scaled_dot_product_attention`: p_BxHxTxS in
  float32, each row summing to 1 over the keys a query may see (its XLA path, and the maps of
  seqmodels.analysis.attention_maps)."""
  T, S = q_BxTxHxK.shape[1], k_BxSxHxK.shape[1]
  s_BxHxTxS = jnp.einsum('bthk,bshk->bhts', q_BxTxHxK, k_BxSxHxK,
                         preferred_element_type=jnp.float32)
  s_BxHxTxS = s_BxHxTxS * q_BxTxHxK.shape[-1] ** -0.5
  mask = None if mask_BxHxTxS is None else jnp.asarray(mask_BxHxTxS, bool)
  keep = lambda m: m if mask is None else mask & m
  if causal:
    mask = keep((jnp.arange(T)[:, None] >= jnp.arange(S)[None, :])[None, None])
  if kv_lengths_B is not None:
    mask = keep((jnp.arange(S)[None, :] < kv_lengths_B[:, None])[:, None, None, :])
  if mask is not None:
    s_BxHxTxS = jnp.where(mask, s_BxHxTxS, jnp.finfo(jnp.float32).min)
  return jax.nn.softmax(s_BxHxTxS, axis=-1)


def rotary(x_BxTxHxK: Array, positions_T: Array, base: float = 10000.0,
           dims: int | None = None) -> Array:
  """Rotary position embedding (Su et al. 2021) in the rotate-half layout of GPT-NeoX and Llama:
  dimension i of the first half pairs with i of the second, rotated by the angle position *
  base^(-2i/R); in float32. Only the first R = `dims` dimensions turn (partial rotary, as
  RecurrentGemma's); the rest pass unchanged."""
  R = x_BxTxHxK.shape[-1] if dims is None else dims
  inv_freq_R2 = base ** (-jnp.arange(0, R, 2, dtype=jnp.float32) / R)
  angles_TxR2 = positions_T.astype(jnp.float32)[:, None] * inv_freq_R2[None, :]
  cos_Tx1xR, sin_Tx1xR = (jnp.concatenate([f(angles_TxR2)] * 2, -1)[:, None]
                          for f in (jnp.cos, jnp.sin))
  x, rest = x_BxTxHxK[..., :R].astype(jnp.float32), x_BxTxHxK[..., R:]
  half = R // 2
  rotated = jnp.concatenate([-x[..., half:], x[..., :half]], -1)
  turned = (x * cos_Tx1xR + rotated * sin_Tx1xR).astype(x_BxTxHxK.dtype)
  return jnp.concatenate([turned, rest], -1) if rest.shape[-1] else turned


def reference_attention(q_BxTxHxK, k_BxSxHxK, v_BxSxHxK, mask_BxHxTxS=None):
  """The textbook formula, for tests: softmax(Q K^T / sqrt(d)) V in float32."""
  s_BxHxTxS = jnp.einsum('bthk,bshk->bhts', q_BxTxHxK, k_BxSxHxK).astype(jnp.float32)
  s_BxHxTxS = s_BxHxTxS / jnp.sqrt(q_BxTxHxK.shape[-1]).astype(jnp.float32)
  if mask_BxHxTxS is not None:
    s_BxHxTxS = jnp.where(mask_BxHxTxS, s_BxHxTxS, jnp.finfo(jnp.float32).min)
  p_BxHxTxS = jax.nn.softmax(s_BxHxTxS, axis=-1)
  return jnp.einsum('bhts,bshk->bthk', p_BxHxTxS, v_BxSxHxK.astype(jnp.float32))


class MultiHeadAttention(nn.Module):
  """Multi-head attention: project to H heads of D/H, attend, project back to D.

  The projections are fused: self-attention computes queries, keys and values as one matmul ('qkv',
  kernel [D, 3, H, K] in that order), cross-attention its queries ('query') and the memory's keys
  and values ('kv', [D, 2, H, K]), as nanoGPT's c_attn does: one wide matmul instead of three narrow
  ones (a 4 x 128 GPT training step on 2 CPU cores: 36.7 against 38.0 ms, bench/gpt.py --recipe=step
  --iters=500, three runs each).
  """
  H: int
  dtype: Any = jnp.float32
  kernel_init: Any = nn.initializers.normal(0.02)
  out_init: Any = nn.initializers.normal(0.02)
  use_bias: bool = True
  # rotary position embedding of queries and keys (Su et al. 2021), self-attention only
  rope: bool = False
  rope_base: float = 10000.0
  rope_fraction: float = 1.0  # the share of each head's dimensions rotated (the first ones)
  # > 0: each query sees the last `window` positions only (local / sliding-window attention)
  window: int = 0
  # self-attention: key/value heads (grouped-query attention, Ainslie et al. 2023; 1: multi-query),
  # each shared by H / kv_heads consecutive query heads; 0 means H. Queries are then 'query'
  # [D, H, K] and keys/values 'kv' [D, 2, kv_heads, K], and the KV cache holds kv_heads heads.
  kv_heads: int = 0
  qkv_bias: bool | None = None  # biases of queries, keys and values; None means use_bias

  @nn.compact
  def __call__(self, x_BxTxD, kv_BxSxD=None, *, causal=False, q_lengths_B=None, kv_lengths_B=None,
               decode_position=None):
    """`decode_position` (self-attention only): x holds the tokens at positions p..p+T-1 of a causal
    sequence; keys/values of earlier positions come from the 'cache' collection (cached_key,
    cached_value: [B, L, H, K], batch leading), which is created, zeroed, when the module is
    initialised with a full-length x. Applied with the 'attention' collection mutable, it also sows
    its weights there ('weights': a tuple of p_BxHxTxS, float32), computed only then."""
    D = x_BxTxD.shape[-1]
    K = D // self.H
    G = self.kv_heads or self.H
    bias = self.use_bias if self.qkv_bias is None else self.qkv_bias
    dense = lambda name, *n, heads=self.H: nn.DenseGeneral(
        (*n, heads, K), dtype=self.dtype, kernel_init=self.kernel_init, use_bias=bias, name=name)
    if kv_BxSxD is None and G == self.H:
      q_BxTxHxK, k_BxSxHxK, v_BxSxHxK = jnp.unstack(dense('qkv', 3)(x_BxTxD), axis=2)
    else:
      q_BxTxHxK = dense('query')(x_BxTxD)
      k_BxSxHxK, v_BxSxHxK = jnp.unstack(dense('kv', 2, heads=G)(
          x_BxTxD if kv_BxSxD is None else kv_BxSxD), axis=2)
    mask_BxHxTxS = None
    # the absolute position of x's first token
    first = 0 if decode_position is None else decode_position
    if self.rope:
      positions_T = first + jnp.arange(x_BxTxD.shape[1])
      dims = int(K * self.rope_fraction)
      q_BxTxHxK, k_BxSxHxK = (rotary(q_BxTxHxK, positions_T, self.rope_base, dims),
                              rotary(k_BxSxHxK, positions_T, self.rope_base, dims))
    if decode_position is not None:
      k_BxSxHxK, v_BxSxHxK, mask_BxHxTxS, kv_lengths_B = self._kv_cache(
          k_BxSxHxK, v_BxSxHxK, decode_position)
      causal = False
    if G != self.H:  # query head h reads key/value head h // (H / G)
      k_BxSxHxK, v_BxSxHxK = (jnp.repeat(a, self.H // G, axis=2) for a in (k_BxSxHxK, v_BxSxHxK))
    # a band over absolute positions: key s is seen by query t when t - window < s <= t
    if self.window:
      T, S = x_BxTxD.shape[1], k_BxSxHxK.shape[1]
      t_Tx1, s_1xS = first + jnp.arange(T)[:, None], jnp.arange(S)[None, :]
      band = (s_1xS <= t_Tx1) & (s_1xS > t_Tx1 - self.window)
      mask_BxHxTxS = band[None, None] if mask_BxHxTxS is None else mask_BxHxTxS & band
      causal, kv_lengths_B = False, None
    out_BxTxHxK = scaled_dot_product_attention(q_BxTxHxK, k_BxSxHxK, v_BxSxHxK, causal=causal,
                                               q_lengths_B=q_lengths_B, kv_lengths_B=kv_lengths_B,
                                               mask_BxHxTxS=mask_BxHxTxS)
    # apply(..., mutable=['attention'])
    if self.is_mutable_collection('attention') and not self.is_initializing():
      self.sow('attention', 'weights', attention_weights(q_BxTxHxK, k_BxSxHxK, causal=causal,
                                                         kv_lengths_B=kv_lengths_B,
                                                         mask_BxHxTxS=mask_BxHxTxS))
    return nn.DenseGeneral(D, axis=(-2, -1), dtype=self.dtype, kernel_init=self.out_init,
                           use_bias=self.use_bias, name='out')(out_BxTxHxK)

  def _kv_cache(self, k_BxTxHxK, v_BxTxHxK, p):
    """Writes this chunk's keys/values at positions p..p+T-1; returns the cache and what each query
    may see."""
    initializing = not self.has_variable('cache', 'cached_key')
    key = self.variable('cache', 'cached_key', jnp.zeros, k_BxTxHxK.shape, k_BxTxHxK.dtype)
    value = self.variable('cache', 'cached_value', jnp.zeros, v_BxTxHxK.shape, v_BxTxHxK.dtype)
    B, T = k_BxTxHxK.shape[:2]
    if initializing:  # init sees the full sequence: plain causal attention
      L = T
      return k_BxTxHxK, v_BxTxHxK, jnp.tril(jnp.ones((1, 1, L, L), bool)), None
    L = key.value.shape[1]
    key.value = jax.lax.dynamic_update_slice_in_dim(
        key.value, k_BxTxHxK.astype(key.value.dtype), p, axis=1)
    value.value = jax.lax.dynamic_update_slice_in_dim(
        value.value, v_BxTxHxK.astype(value.value.dtype), p, axis=1)
    # one new token sees positions 0..p: a length, not a mask (keeps the fast kernels usable)
    if T == 1:
      return key.value, value.value, None, jnp.full((B,), p + 1, jnp.int32)
    mask_BxHxTxS = (jnp.arange(L)[None, :] <= p + jnp.arange(T)[:, None])[None, None]
    return key.value, value.value, mask_BxHxTxS, None


# Attention of an RNN decoder over encoder states (Bahdanau et al. 2015; Luong et al. 2015).

SOURCE_SCORES = ('additive', 'general', 'dot')


def masked_softmax(scores_BxTxS: Array, mask_BxS: Array | None = None) -> Array:
  """softmax over source positions in float32; positions where mask_BxS is 0 (padding) get weight
  exactly 0."""
  scores_BxTxS = scores_BxTxS.astype(jnp.float32)
  if mask_BxS is not None:
    scores_BxTxS = jnp.where(mask_BxS[:, None, :] > 0, scores_BxTxS, jnp.finfo(jnp.float32).min)
  return jax.nn.softmax(scores_BxTxS, axis=-1)


def attend(scores_BxTxS: Array, values_BxSxE: Array,
           mask_BxS: Array | None = None) -> tuple[Array, Array]:
  """Context = attention-weighted sum of values. Returns (context_BxTxE in the values' dtype,
  weights_BxTxS)."""
  weights_BxTxS = masked_softmax(scores_BxTxS, mask_BxS)
  context_BxTxE = jnp.einsum('bts,bse->bte', weights_BxTxS.astype(values_BxSxE.dtype), values_BxSxE)
  return context_BxTxE, weights_BxTxS


class SourceAttention(nn.Module):
  """Decoder states s attend over encoder states h, with one of three scores:

    additive (Bahdanau):          score(s, h) = v^T tanh(W1 h + W2 s)
    general  (Luong, multiplicative): score(s, h) = h^T W s
    dot      (Luong):             score(s, h) = h^T s   (needs equal widths)

  The source side of a score depends only on the sentence: `keys` computes it once (W1 h, or W^T h,
  or h) and `__call__` scores T queries against it, so a decoder stepping one token at a time does
  not redo it.
  """
  score: str = 'additive'
  # width of the keys: the additive MLP's hidden units; for 'general' the query width Q
  A: int = 128
  dtype: Any = jnp.float32

  def setup(self):
    if self.score not in SOURCE_SCORES:
      raise ValueError(f'unknown attention score {self.score!r}: choose one of {SOURCE_SCORES}')
    if self.score == 'additive':
      self.w1 = nn.Dense(self.A, use_bias=False, dtype=self.dtype)
      self.w2 = nn.Dense(self.A, dtype=self.dtype)
      self.v = self.param('v', nn.initializers.normal(1.0 / self.A ** 0.5), (self.A,), jnp.float32)
    elif self.score == 'general':
      self.w = nn.Dense(self.A, use_bias=False, dtype=self.dtype)  # h^T W s = (W^T h) . s

  def keys(self, h_BxSxE: Array) -> Array:
    """The source side of the score, once per sentence: k_BxSxA."""
    if self.score == 'additive':
      return self.w1(h_BxSxE)
    return self.w(h_BxSxE) if self.score == 'general' else h_BxSxE

  def __call__(self, s_BxTxQ: Array, k_BxSxA: Array, h_BxSxE: Array,
               mask_BxS: Array | None = None) -> tuple[Array, Array]:
    """Queries s_BxTxQ over keys k_BxSxA (from `keys`) and values h_BxSxE -> (context_BxTxE,
    weights_BxTxS)."""
    if self.score == 'additive':
      q_BxTxA = self.w2(s_BxTxQ)
      e_BxTxSxA = jnp.tanh(k_BxSxA[:, None, :, :] + q_BxTxA[:, :, None, :])
      scores_BxTxS = jnp.einsum('btsa,a->bts', e_BxTxSxA, self.v.astype(e_BxTxSxA.dtype))
    else:
      scores_BxTxS = jnp.einsum('bsa,bta->bts', k_BxSxA, s_BxTxQ.astype(k_BxSxA.dtype))
    return attend(scores_BxTxS, h_BxSxE, mask_BxS)


def sown_weights(model, variables, *inputs, **kwargs) -> tuple[Any, dict[str, np.ndarray]]:
  """`model.apply(variables, *inputs, **kwargs)` and the weights its attention modules computed on
  the way: {'block0/attn': p_BxHxTxS, 'decoder_1/cross_attn': ...} (float32; empty for a model
  without any)."""
  outputs, state = model.apply(variables, *inputs, mutable=['attention'], **kwargs)
  flat = traverse_util.flatten_dict(state.get('attention', {}), sep='/')
  return outputs, {path.removesuffix('/weights'): np.asarray(w[-1], np.float32)
                   for path, w in flat.items()}


def layer_order(path: str) -> tuple[int, ...]:
  """Sort key of module paths by their layer numbers ('block2/attn' before 'block10/attn')."""
  return tuple(int(n) for n in re.findall(r'\d+', path))
