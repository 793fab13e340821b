"""Autoregressive decoding, written once for every decoder: greedy, sampling
(temperature/top-k/top-p), beam search.

A decoder is seen through one step function (RNN seq2seq, Transformer and GPT alike):

  step_fn(last_tokens_B int32, cache, position int32 scalar) -> (logits_BxV float32, new cache)

`position` is t = 0, 1, ... : the index, within this decode call, of `last_tokens` (t = 0 feeds
`first_tokens`, usually BOS). A step function that needs an absolute position (e.g. after a prompt)
keeps its offset in the cache. Cache leaves have the batch as their leading axis (B, or B*K rows
under beam search, beam k of batch row b at row b*K + k); rank-0 leaves (e.g. a shared write index)
are passed through untouched.

All functions are jittable (lax.while_loop; `max_len`, `beam_size`, `eos_id`, `top_k` static) and
return the generated tokens [.., max_len] without `first_tokens`; tokens after EOS are PAD (0). The
caller jits, e.g.
`jax.jit(lambda p, src: greedy(make_step(p), init_cache(p, src), bos_B, 50, eos_id=3))`.
Beam search follows Wu et al. 2016 (GNMT length penalty ((5 + |Y|) / 6)^alpha) and the early stop of
flax/examples/wmt/decode.py: stop once no live beam can beat the worst finished one.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

Array = jax.Array
StepFn = Callable[[Array, Any, Array], tuple[Array, Any]]
PAD = 0
NEG_INF = -1.0e7  # finite: -inf - -inf would make NaNs in the score arithmetic


def _loop(step_fn: StepFn, cache, first_tokens_B: Array, max_len: int, eos_id: int | None,
          choose: Callable[[Array, Array], Array]) -> Array:
  """Shared greedy/sampling loop: choose(logits_BxV, t) -> tokens_B, until max_len or every row
  ended."""
  B = first_tokens_B.shape[0]

  def cond(carry):
    t, _, _, done_B, _ = carry
    return (t < max_len) & ~jnp.all(done_B)

  def body(carry):
    t, last_B, cache, done_B, out_BxL = carry
    logits_BxV, cache = step_fn(last_B, cache, t)
    tok_B = jnp.where(done_B, PAD, choose(logits_BxV.astype(jnp.float32), t).astype(jnp.int32))
    if eos_id is not None:
      done_B = done_B | (tok_B == eos_id)
    out_BxL = jax.lax.dynamic_update_slice(out_BxL, tok_B[:, None], (0, t))
    return t + 1, tok_B, cache, done_B, out_BxL

  init = (jnp.zeros((), jnp.int32), first_tokens_B.astype(jnp.int32), cache, jnp.zeros((B,), bool),
          jnp.full((B, max_len), PAD, jnp.int32))
  return jax.lax.while_loop(cond, body, init)[-1]


def greedy(step_fn: StepFn, cache, first_tokens_B: Array, max_len: int,
           eos_id: int | None = None) -> Array:
  """Greedy decoding: argmax at every step. Returns tokens_BxL (int32, PAD after EOS)."""
  return _loop(step_fn, cache, first_tokens_B, max_len, eos_id,
               lambda logits_BxV, t: jnp.argmax(logits_BxV, -1))


def filter_logits(logits_BxV: Array, top_k: int = 0, top_p: float = 1.0) -> Array:
  """Keeps the top_k largest logits (0: all) and the smallest set with probability >= top_p
  (nucleus, Holtzman et al. 2020); every other logit becomes NEG_INF. The most likely token always
  survives."""
  logits_BxV = logits_BxV.astype(jnp.float32)
  if top_k and top_k < logits_BxV.shape[-1]:
    kth_Bx1 = jax.lax.top_k(logits_BxV, top_k)[0][:, -1:]
    logits_BxV = jnp.where(logits_BxV < kth_Bx1, NEG_INF, logits_BxV)
  if top_p < 1.0:
    sorted_BxV = -jnp.sort(-logits_BxV, axis=-1)
    p_BxV = jax.nn.softmax(sorted_BxV, axis=-1)
    before_BxV = jnp.cumsum(p_BxV, axis=-1) - p_BxV  # mass of the strictly more likely tokens
    keep_BxV = before_BxV < top_p
    threshold_Bx1 = jnp.min(jnp.where(keep_BxV, sorted_BxV, jnp.inf), axis=-1, keepdims=True)
    logits_BxV = jnp.where(logits_BxV < threshold_Bx1, NEG_INF, logits_BxV)
  return logits_BxV


def sample(step_fn: StepFn, cache, first_tokens_B: Array, max_len: int, rng: Array,
           temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
           eos_id: int | None = None) -> Array:
  """Ancestral sampling from softmax(logits / temperature), restricted by top_k / top_p; temperature
  0 is greedy. Step t draws with key fold_in(rng, t).

  Returns tokens_BxL (int32, PAD after EOS).
  """
  def choose(logits_BxV, t):
    if isinstance(temperature, (int, float)) and temperature == 0:
      return jnp.argmax(logits_BxV, -1)
    logits_BxV = filter_logits(logits_BxV / jnp.maximum(temperature, 1e-6), top_k, top_p)
    return jax.random.categorical(jax.random.fold_in(rng, t), logits_BxV, axis=-1)

  return _loop(step_fn, cache, first_tokens_B, max_len, eos_id, choose)


def sampler(step_function: Callable[..., tuple[StepFn, Any, Array]]) -> Callable[..., Array]:
  """A registry entry's `generate` for an LM decoded through `step_function(model, params,
  prompt_BxP) -> (step_fn, cache, first_tokens_B)`: the prompt continued by `sample`."""

  def generate(model, params, prompt_BxP: Array, rng: Array, *, max_new: int,
               temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0,
               eos_id: int | None = None, window: int = 0) -> Array:
    del window  # the step function's own (a recurrent state needs none)
    return sample(*step_function(model, params, prompt_BxP), max_new, rng, temperature=temperature,
                  top_k=top_k, top_p=top_p, eos_id=eos_id)

  return generate


def window_step_function(logits_fn: Callable[[Array], Array], prompt_BxP: Array,
                         window: int) -> tuple[StepFn, Any, Array]:
  """(step_fn, cache, first_tokens_B) continuing `prompt_BxP` (P >= 1) with any causal model, by
  recomputing it on the last `window` tokens at every step: logits_fn(tokens_BxW) -> logits_BxWxV,
  whose position i may depend on tokens 0..i only (tokens after the filled part are PAD and must not
  matter).

  The tokens fill the window from position 0; once it is full, it slides by one token a step, so
  each prediction sees the last `window` tokens at positions 0..window-1, as in training (nanoGPT's
  sample.py crops the same way). No state but the tokens: the reference a KV cache must reproduce,
  and the sampler of a model without one.
  """
  B, P = prompt_BxP.shape
  # the part before the last token
  before = prompt_BxP[:, max(0, P - 1 - window):P - 1].astype(jnp.int32)
  n = before.shape[1]
  tokens_BxW = jnp.full((B, window), PAD, jnp.int32).at[:, :n].set(before)

  def step_fn(last_B, cache, t):
    n = cache['filled']  # rank 0: decoding passes it through untouched
    tokens_BxW = jnp.where(n >= window, jnp.roll(cache['tokens'], -1, axis=1), cache['tokens'])
    p = jnp.minimum(n, window - 1)
    tokens_BxW = jax.lax.dynamic_update_slice(tokens_BxW, last_B.astype(jnp.int32)[:, None], (0, p))
    logits_BxV = jax.lax.dynamic_index_in_dim(logits_fn(tokens_BxW), p, axis=1, keepdims=False)
    return logits_BxV, {'tokens': tokens_BxW, 'filled': jnp.minimum(n + 1, window)}

  return (step_fn, {'tokens': tokens_BxW, 'filled': jnp.int32(n)},
          prompt_BxP[:, -1].astype(jnp.int32))


def cut_after_eos(tokens_BxL: Array, eos_id: int | None) -> Array:
  """PAD after each row's first EOS (for tokens decoded in pieces, each of which stops at EOS on its
  own)."""
  if eos_id is None:
    return tokens_BxL
  ended_BxL = jnp.cumsum(tokens_BxL == eos_id, axis=1) - (tokens_BxL == eos_id) > 0
  return jnp.where(ended_BxL, PAD, tokens_BxL)


def length_norm(length: Array, alpha: float) -> Array:
  """GNMT length normalisation ((5 + length) / 6)^alpha (Wu et al. 2016); alpha 0 is plain
  log-probability."""
  return ((5.0 + length) / 6.0) ** alpha


def _gather_beams(tree, beam_BxK: Array, B: int, K_old: int):
  """Rows of every cache leaf (leading axis B*K_old) reordered to the chosen beams beam_BxK (values
  < K_old)."""
  rows = (jnp.arange(B)[:, None] * K_old + beam_BxK).reshape(-1)
  return jax.tree.map(lambda x: x if x.ndim == 0 else x[rows], tree)


def beam_search(step_fn: StepFn, cache, first_tokens_B: Array, max_len: int, beam_size: int,
                length_penalty: float = 0.6, eos_id: int | None = None) -> tuple[Array, Array]:
  """Beam search with K = beam_size beams per row. Returns (tokens_BxKxL, scores_BxK), best beam
  first.

  A hypothesis ending in EOS is finished with score log p(Y) / ((5 + |Y|) / 6)^length_penalty (|Y|
  counts the EOS); hypotheses that never emit EOS within max_len are scored the same way with |Y| =
  max_len (and are the result for rows where nothing finished). With beam_size 1 and length_penalty
  0 this is greedy decoding.
  """
  alpha, lp = length_penalty, length_norm
  B, K, L = first_tokens_B.shape[0], beam_size, max_len
  cache = jax.tree.map(lambda x: x if x.ndim == 0 else jnp.repeat(x, K, axis=0), cache)
  # Only beam 0 is alive at the start, so the first step does not pick K copies of the same token.
  live_logp_BxK = jnp.tile(jnp.array([0.0] + [NEG_INF] * (K - 1), jnp.float32), (B, 1))
  init = dict(
      t=jnp.zeros((), jnp.int32),
      last_BxK=jnp.repeat(first_tokens_B.astype(jnp.int32)[:, None], K, axis=1),
      live_seqs=jnp.full((B, K, L), PAD, jnp.int32), live_logp=live_logp_BxK, cache=cache,
      fin_seqs=jnp.full((B, K, L), PAD, jnp.int32),
      fin_scores=jnp.full((B, K), NEG_INF, jnp.float32), fin_flags=jnp.zeros((B, K), bool))

  def cond(s):
    # The best a live beam can still reach: its log-prob (only falls) under the largest length
    # penalty.
    best_live_B = s['live_logp'].max(-1) / lp(jnp.float32(L), alpha)
    worst_fin_B = jnp.where(s['fin_flags'], s['fin_scores'], jnp.inf).min(-1)
    all_full_B = s['fin_flags'].all(-1)
    can_improve = ~(all_full_B & (best_live_B <= worst_fin_B))
    return (s['t'] < L) & (eos_id is None or jnp.any(can_improve))

  def body(s):
    t = s['t']
    logits, cache = step_fn(s['last_BxK'].reshape(-1), s['cache'], t)
    V = logits.shape[-1]
    logp_BxKxV = jax.nn.log_softmax(logits.astype(jnp.float32), -1).reshape(B, K, V)
    cand_BxKV = (s['live_logp'][:, :, None] + logp_BxKxV).reshape(B, K * V)
    # 2K candidates: even if K of them end in EOS, K stay alive.
    top_logp_Bx2K, top_idx_Bx2K = jax.lax.top_k(cand_BxKV, 2 * K)
    beam_Bx2K, tok_Bx2K = top_idx_Bx2K // V, (top_idx_Bx2K % V).astype(jnp.int32)
    seqs_Bx2KxL = jnp.take_along_axis(s['live_seqs'], beam_Bx2K[:, :, None], axis=1)
    seqs_Bx2KxL = jax.lax.dynamic_update_slice(seqs_Bx2KxL, tok_Bx2K[:, :, None], (0, 0, t))
    is_eos_Bx2K = (tok_Bx2K == eos_id) if eos_id is not None else jnp.zeros_like(tok_Bx2K, bool)

    # Live: the K best candidates that did not just end.
    alive_logp_Bx2K = jnp.where(is_eos_Bx2K, NEG_INF, top_logp_Bx2K)
    live_logp_BxK, keep_BxK = jax.lax.top_k(alive_logp_Bx2K, K)
    live_seqs = jnp.take_along_axis(seqs_Bx2KxL, keep_BxK[:, :, None], axis=1)
    live_beam_BxK = jnp.take_along_axis(beam_Bx2K, keep_BxK, axis=1)
    cache = _gather_beams(cache, live_beam_BxK, B, K)
    last_BxK = jnp.take_along_axis(tok_Bx2K, keep_BxK, axis=1)

    # Finished: the K best among the old finished and the EOS candidates ranked within the top K (as
    # in Hugging Face's BeamSearchScorer: an EOS that would not have made the beam does not finish;
    # so one beam is greedy decoding).
    ends_Bx2K = is_eos_Bx2K & (jnp.arange(2 * K) < K) & (top_logp_Bx2K > NEG_INF / 2)
    new_scores_Bx2K = jnp.where(
        ends_Bx2K, top_logp_Bx2K / lp((t + 1).astype(jnp.float32), alpha), NEG_INF)
    all_seqs = jnp.concatenate([s['fin_seqs'], seqs_Bx2KxL], axis=1)
    all_scores = jnp.concatenate([s['fin_scores'], new_scores_Bx2K], axis=1)
    all_flags = jnp.concatenate([s['fin_flags'], ends_Bx2K], axis=1)
    fin_scores, fin_idx_BxK = jax.lax.top_k(jnp.where(all_flags, all_scores, 2 * NEG_INF), K)
    return dict(
        t=t + 1, last_BxK=last_BxK, live_seqs=live_seqs, live_logp=live_logp_BxK, cache=cache,
        fin_seqs=jnp.take_along_axis(all_seqs, fin_idx_BxK[:, :, None], axis=1),
        fin_scores=fin_scores, fin_flags=jnp.take_along_axis(all_flags, fin_idx_BxK, axis=1))

  s = jax.lax.while_loop(cond, body, init)
  # Unfinished beams compete with their full-length score; rows where nothing finished return live
  # beams.
  live_scores_BxK = s['live_logp'] / lp(jnp.float32(L), alpha)
  live_scores_BxK = jnp.where(s['live_logp'] > NEG_INF / 2, live_scores_BxK, 2 * NEG_INF)
  fin_scores_BxK = jnp.where(s['fin_flags'], s['fin_scores'], 2 * NEG_INF)
  seqs = jnp.concatenate([s['fin_seqs'], s['live_seqs']], axis=1)
  scores = jnp.concatenate([fin_scores_BxK, live_scores_BxK], axis=1)
  scores_BxK, idx_BxK = jax.lax.top_k(scores, K)
  return jnp.take_along_axis(seqs, idx_BxK[:, :, None], axis=1), scores_BxK
