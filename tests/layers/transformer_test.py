"""Tests for seqmodels/layers/{attention,transformer,embeddings}.py: the one attention function
against the textbook formula, masks (causal, padding, encoder-decoder), the KV cache, post-/pre-LN
blocks, positions."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqmodels.layers.attention import (MultiHeadAttention, cudnn_applies, reference_attention,
                                        scaled_dot_product_attention)
from seqmodels.layers.embeddings import PositionEmbedding, sinusoidal_positions
from seqmodels.layers.transformer import Block, DecoderBlock

B, T, S, H, K, D = 2, 6, 5, 2, 8, 16


def _normal(seed, shape, scale=1.0):
  return jnp.asarray(scale * np.random.default_rng(seed).normal(size=shape), jnp.float32)


def _init(module, *args, **kwargs):
  """Random N(0, 0.3^2) parameters in the shapes `init` would make (no initializer compiles)."""
  shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), *args, **kwargs))
  leaves, tree = jax.tree.flatten(shapes)
  return jax.tree.unflatten(tree, [_normal(i, l.shape, 0.3) for i, l in enumerate(leaves)])


def test_scaled_dot_product_attention_equals_reference_with_causal_lengths_and_explicit_masks():
  q, k, v = _normal(0, (B, T, H, K)), _normal(1, (B, T, H, K)), _normal(2, (B, T, H, K))
  lengths_B = jnp.array([3, 6])
  causal = np.tril(np.ones((T, T), bool))[None, None]
  key_mask = (np.arange(T)[None, :] < np.asarray(lengths_B)[:, None])[:, None, None, :]
  mask = np.random.default_rng(3).random((B, H, T, T)) < 0.6
  mask[..., 0] = True  # every query sees at least one key

  @jax.jit
  def both(q, k, v, lengths_B, mask):
    ours = [scaled_dot_product_attention(q, k, v, causal=True),
            scaled_dot_product_attention(q, k, v, kv_lengths_B=lengths_B),
            scaled_dot_product_attention(q, k, v, mask_BxHxTxS=mask),
            scaled_dot_product_attention(q, k, v)]
    refs = [reference_attention(q, k, v, causal), reference_attention(q, k, v, key_mask),
            reference_attention(q, k, v, mask), reference_attention(q, k, v)]
    return ours, refs

  ours, refs = both(q, k, v, lengths_B, jnp.asarray(mask))
  for out, ref in zip(ours, refs):
    chex.assert_shape(out, (B, T, H, K))
    np.testing.assert_allclose(out, ref, atol=1e-5)


@pytest.mark.parametrize('dtype', [jnp.float32, jnp.bfloat16])
def test_xla_attention_path_equals_jax_dot_product_attention(dtype):
  """Our einsum path computes what jax.nn.dot_product_attention does, for every mask kind and
  combination."""
  q, k, v = (_normal(i, (B, T, H, K)).astype(dtype) for i in range(3))
  lengths_B = jnp.array([2, 6])
  mask = jnp.asarray(np.random.default_rng(3).random((B, H, T, T)) < 0.6).at[..., 0].set(True)
  cases = [dict(), dict(causal=True), dict(kv_lengths_B=lengths_B),
           dict(causal=True, q_lengths_B=lengths_B, kv_lengths_B=lengths_B),
           dict(mask_BxHxTxS=mask), dict(mask_BxHxTxS=mask, causal=True)]
  for case in cases:
    ours = jax.jit(lambda q, k, v: scaled_dot_product_attention(q, k, v, implementation='xla',
                                                                **case))(q, k, v)
    theirs = jax.nn.dot_product_attention(
        q, k, v, mask=case.get('mask_BxHxTxS'), is_causal=case.get('causal', False),
        query_seq_lengths=case.get('q_lengths_B'), key_value_seq_lengths=case.get('kv_lengths_B'),
        implementation='xla')
    assert ours.dtype == dtype
    np.testing.assert_allclose(np.asarray(ours, np.float32), np.asarray(theirs, np.float32),
                               atol=1e-5 if dtype == jnp.float32 else 2e-2, err_msg=str(case))


def test_cudnn_is_chosen_only_where_its_kernel_takes_the_inputs():
  """jax raises (no fallback) when cuDNN is asked for inputs it refuses: float32, heads over 128
  before Hopper, GPUs before Ampere."""
  device = lambda platform, cc=None: type('Device', (),
                                          {'platform': platform, 'compute_capability': cc})()
  h100, a100, v100 = device('gpu', '9.0'), device('gpu', '8.0'), device('gpu', '7.0')
  b200, rocm, cpu = device('gpu', '10.0'), device('gpu', 'gfx90a'), device('cpu')
  assert cudnn_applies(jnp.bfloat16, 256, b200) and not cudnn_applies(jnp.bfloat16, 64, v100)
  assert cudnn_applies(jnp.bfloat16, 64, h100) and cudnn_applies(jnp.float16, 256, h100)
  assert cudnn_applies(jnp.bfloat16, 128, a100) and not cudnn_applies(jnp.bfloat16, 256, a100)
  assert not cudnn_applies(jnp.float32, 64, h100)
  assert not cudnn_applies(jnp.bfloat16, 60, h100) and not cudnn_applies(jnp.bfloat16, 264, h100)
  assert not cudnn_applies(jnp.bfloat16, 64, rocm) and not cudnn_applies(jnp.bfloat16, 64, cpu)


def _paper_multi_head(x_TxD, kv_SxD, wq, wk, wv, bq, bk, bv, wo, bo, causal):
  """MultiHead(Q, K, V) = Concat(head_1..head_H) W^O, head_i = Attention(x W_i^Q, kv W_i^K, kv
  W_i^V), float64; w* are [D, H, K] (head i's projection is w[:, i]), wo is [H, K, D]."""
  heads = []
  for i in range(wq.shape[1]):
    q, k, v = x_TxD @ wq[:, i] + bq[i], kv_SxD @ wk[:, i] + bk[i], kv_SxD @ wv[:, i] + bv[i]
    s = q @ k.T / np.sqrt(q.shape[-1])
    if causal:
      s = np.where(np.tril(np.ones(s.shape, bool)), s, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    heads.append((p / p.sum(-1, keepdims=True)) @ v)
  return np.concatenate(heads, -1) @ wo.reshape(-1, wo.shape[-1]) + bo


def test_multi_head_attention_is_the_papers_per_head_formula_for_self_and_cross_attention():
  """The fused projections ('qkv' for self-attention, 'query' + 'kv' for cross-attention) hold each
  head's W^Q, W^K, W^V in the documented slots: the module equals the per-head formula computed from
  its parameters."""
  mha = MultiHeadAttention(H)
  x, memory = _normal(30, (B, T, D)), _normal(31, (B, S, D))
  f64 = lambda a: np.asarray(a, np.float64)
  self_params = _init(mha, x)
  p = jax.tree.map(f64, self_params['params'])
  out = jax.jit(lambda p, x: mha.apply(p, x, causal=True))(self_params, x)
  qkv_w, qkv_b = p['qkv']['kernel'], p['qkv']['bias']  # [D, 3, H, K], [3, H, K]
  for b in range(B):
    ref = _paper_multi_head(f64(x[b]), f64(x[b]), *(qkv_w[:, j] for j in range(3)), *qkv_b,
                            p['out']['kernel'], p['out']['bias'], causal=True)
    np.testing.assert_allclose(out[b], ref, atol=1e-5)
  cross_params = _init(mha, x, memory)
  p = jax.tree.map(f64, cross_params['params'])
  out = jax.jit(lambda p, x, m: mha.apply(p, x, m))(cross_params, x, memory)
  kv_w, kv_b = p['kv']['kernel'], p['kv']['bias']  # [D, 2, H, K], [2, H, K]
  for b in range(B):
    ref = _paper_multi_head(f64(x[b]), f64(memory[b]), p['query']['kernel'], kv_w[:, 0], kv_w[:, 1],
                            p['query']['bias'], kv_b[0], kv_b[1], p['out']['kernel'],
                            p['out']['bias'], causal=False)
    np.testing.assert_allclose(out[b], ref, atol=1e-5)


@pytest.mark.parametrize('pre_ln', [False, True])
def test_causal_mask_hides_future_tokens(pre_ln):
  block = Block(H, 32, causal=True, pre_ln=pre_ln)
  x = _normal(4, (B, T, D))
  params = _init(block, x)
  apply = jax.jit(block.apply)
  y = apply(params, x)
  for t in range(T - 1):
    x2 = x.at[:, t + 1:].set(_normal(5 + t, (B, T - t - 1, D)))
    np.testing.assert_allclose(apply(params, x2)[:, :t + 1], y[:, :t + 1], atol=1e-5)
  # the past matters
  assert not np.allclose(apply(params, x.at[:, 0].set(_normal(20, (B, D))))[:, -1], y[:, -1])


def test_padding_mask_hides_padded_tokens_from_real_ones():
  block = Block(H, 32, causal=False, pre_ln=False)
  x, lengths_B = _normal(6, (B, T, D)), jnp.array([4, 6])
  params = _init(block, x, lengths_B)
  apply = jax.jit(block.apply)
  y = apply(params, x, lengths_B)
  x2 = x.at[0, 4:].set(_normal(7, (T - 4, D)))
  np.testing.assert_allclose(apply(params, x2, lengths_B)[0, :4], y[0, :4], atol=1e-5)
  np.testing.assert_allclose(apply(params, x2, lengths_B)[1], y[1], atol=1e-5)


def test_encoder_decoder_attention_sees_only_real_source_tokens_and_decoder_is_causal():
  block = DecoderBlock(H, 32)
  y, memory, src_lengths_B = _normal(8, (B, T, D)), _normal(9, (B, S, D)), jnp.array([2, 5])
  params = _init(block, y, memory, src_lengths_B)
  apply = jax.jit(block.apply)
  out = apply(params, y, memory, src_lengths_B)
  chex.assert_shape(out, (B, T, D))
  memory2 = memory.at[0, 2:].set(_normal(10, (S - 2, D)))
  np.testing.assert_allclose(apply(params, y, memory2, src_lengths_B), out, atol=1e-5)
  assert not np.allclose(apply(params, y, memory.at[0, 1].set(_normal(21, (D,))), src_lengths_B)[0],
                         out[0])
  y2 = y.at[:, 3:].set(0.0)
  np.testing.assert_allclose(apply(params, y2, memory, src_lengths_B)[:, :3], out[:, :3], atol=1e-5)


def test_kv_cache_chunks_and_single_steps_equal_full_causal_attention():
  mha = MultiHeadAttention(H)
  x = _normal(11, (B, T, D))
  params = {'params': _init(mha, x)['params']}
  full = jax.jit(lambda p, x: mha.apply(p, x, causal=True))(params, x)
  cache = jax.tree.map(jnp.zeros_like, jax.eval_shape(lambda: mha.init(jax.random.key(0), x,
                                                                       decode_position=0))['cache'])
  chex.assert_shape(cache['cached_key'], (B, T, H, D // H))
  step = jax.jit(lambda cache, x, p: mha.apply({**params, 'cache': cache}, x, decode_position=p,
                                               mutable=['cache']))
  out, mutated = step(cache, x[:, :3], 0)
  outs = [out]
  for t in range(3, T):
    out, mutated = step(mutated['cache'], x[:, t:t + 1], t)
    outs.append(out)
  np.testing.assert_allclose(jnp.concatenate(outs, axis=1), full, atol=1e-5)


def test_sinusoidal_positions_follow_the_paper_and_offsets_shift_them():
  pe = sinusoidal_positions(50, 8)
  pos, i = 7, 1
  np.testing.assert_allclose(pe[pos, 2 * i], np.sin(pos / 10000 ** (2 * i / 8)), rtol=1e-6)
  np.testing.assert_allclose(pe[pos, 2 * i + 1], np.cos(pos / 10000 ** (2 * i / 8)), rtol=1e-6)
  x = jnp.zeros((1, 3, 8))
  emb = PositionEmbedding(50, 'sinusoidal')
  np.testing.assert_allclose(emb.apply({}, x, 5)[0], pe[5:8], atol=1e-6)
