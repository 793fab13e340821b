"""GPT (Radford et al. 2018/2019): decoder-only Transformer LM with learned positions and tied
embeddings."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from seqmodels import decoding
from seqmodels.layers.embeddings import tied_logits
from seqmodels.layers.transformer import Block
from seqmodels.models import entry


@dataclasses.dataclass(frozen=True)
class GPTConfig:
  V: int            # vocabulary size
  L: int            # context length (number of learned positions)
  D: int = 128      # width
  N: int = 4        # blocks
  H: int = 4        # heads
  F: int = 512      # FFN width
  dropout: float = 0.0
  act: str = 'gelu'  # FFN activation (seqmodels.layers.mlp.ACTIVATIONS): gelu is GPT-2's gelu_new
  eps: float = 1e-6  # LayerNorm epsilon (GPT-2's: 1e-5)
  dtype: Any = jnp.float32  # compute dtype; parameters are float32


class GPT(nn.Module):
  """tokens_BxT -> logits_BxTxV (float32); GPT-2 init: N(0, 0.02), residual projections / sqrt(2N).

  With `decode_position=p` the tokens sit at positions p..p+T-1 and attend to earlier ones through
  the KV cache (the 'cache' collection, made by `init_cache`).
  """
  cfg: GPTConfig

  @nn.compact
  def __call__(self, tokens_BxT, *, train: bool = False, decode_position=None):
    c = self.cfg
    T = tokens_BxT.shape[1]
    init = nn.initializers.normal(0.02)
    embed = nn.Embed(c.V, c.D, embedding_init=init, name='embed')
    pos_LxD = self.param('pos', init, (c.L, c.D), jnp.float32)
    pos_TxD = jax.lax.dynamic_slice_in_dim(pos_LxD,
                                           0 if decode_position is None else decode_position, T)
    x_BxTxD = (embed(tokens_BxT) + pos_TxD).astype(c.dtype)
    x_BxTxD = nn.Dropout(c.dropout, deterministic=not train)(x_BxTxD)
    for n in range(c.N):
      x_BxTxD = Block(c.H, c.F, causal=True, pre_ln=True, activation=c.act, dropout=c.dropout,
                      dtype=c.dtype, out_init=nn.initializers.normal(0.02 / (2 * c.N) ** 0.5),
                      norm_eps=c.eps, name=f'block{n}')(x_BxTxD, train=train,
                                                        decode_position=decode_position)
    x_BxTxD = nn.LayerNorm(epsilon=c.eps, dtype=c.dtype, name='ln_f')(x_BxTxD)
    return tied_logits(embed, x_BxTxD)


def init_cache(model: GPT, batch_size: int):
  """Zeroed KV cache for `batch_size` rows and the full context L: {block{n}: {attn:
  cached_key/value}}."""
  dummy_BxL = jnp.zeros((batch_size, model.cfg.L), jnp.int32)
  shapes = jax.eval_shape(
      lambda: model.init(jax.random.PRNGKey(0), dummy_BxL, decode_position=0)['cache'])
  return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)


def step_function(model: GPT, params, prompt_BxP,
                  use_cache: bool = True) -> tuple[Callable, Any, jax.Array]:
  """For seqmodels.decoding: (step_fn, cache, first_tokens_B) continuing `prompt_BxP` (1 <= P <= L).

  step_fn(last_tokens_B, cache, t) -> (logits_BxV, cache) feeds the token at absolute position P - 1
  + t, for t <= L - P. With the cache, the prompt's first P - 1 tokens are run once (prefill) and
  each step runs one token; without it, every step reruns the context window
  (decoding.window_step_function: the reference the cache must reproduce, and the way past the
  context, where the window slides).
  """
  B, P = prompt_BxP.shape
  prompt_BxP = prompt_BxP.astype(jnp.int32)
  if not use_cache:
    return decoding.window_step_function(lambda tokens: model.apply({'params': params}, tokens),
                                         prompt_BxP, model.cfg.L)
  offset = jnp.int32(P - 1)  # rank 0: decoding passes it through untouched
  kv = init_cache(model, B)
  if P > 1:
    _, mutated = model.apply({'params': params, 'cache': kv}, prompt_BxP[:, :-1], decode_position=0,
                             mutable=['cache'])
    kv = mutated['cache']

  def cached_step(last_B, cache, t):
    logits_Bx1xV, mutated = model.apply({'params': params, 'cache': cache['kv']}, last_B[:, None],
                                        decode_position=cache['offset'] + t, mutable=['cache'])
    return logits_Bx1xV[:, 0], {**cache, 'kv': mutated['cache']}

  return cached_step, {'kv': kv, 'offset': offset}, prompt_BxP[:, -1]


@functools.partial(jax.jit, static_argnames=('model', 'max_new', 'temperature', 'top_k', 'top_p',
                                             'use_cache', 'eos_id'))
def generate(model: GPT, params, prompt_BxP, rng, *, max_new: int, temperature: float = 0.0,
             top_k: int = 0, top_p: float = 1.0, use_cache: bool = True,
             eos_id: int | None = None) -> jax.Array:
  """Continues every prompt row (any length P >= 1) by `max_new` tokens (tokens_BxN, PAD after EOS):
  greedy at temperature 0, else sampling from softmax(logits / temperature) cut to top_k / top_p.

  While the text fits the context L, the KV cache (or, with use_cache=False, recomputing the window)
  gives each token; past it, each token is predicted from the last L tokens, recomputed (nanoGPT's
  sample.py crops so). The two parts draw with keys fold_in(rng, 0) and fold_in(rng, 1), so both
  settings give the same tokens.
  """
  B, P = prompt_BxP.shape
  L = model.cfg.L
  sample = functools.partial(decoding.sample, temperature=temperature, top_k=top_k, top_p=top_p,
                             eos_id=eos_id)
  in_context = min(max_new, max(L - P + 1, 0))  # tokens whose prediction sees the whole text so far
  parts = []
  if in_context:
    step, cache, first_B = step_function(model, params, prompt_BxP, use_cache)
    parts.append(sample(step, cache, first_B, in_context, jax.random.fold_in(rng, 0)))
  if max_new > in_context:
    text_BxT = jnp.concatenate([prompt_BxP.astype(jnp.int32)] + parts, axis=1)
    step, cache, first_B = step_function(model, params, text_BxT[:, -L:], use_cache=False)
    parts.append(sample(step, cache, first_B, max_new - in_context, jax.random.fold_in(rng, 1)))
  return decoding.cut_after_eos(jnp.concatenate(parts, axis=1), eos_id)


def _build(m, data, dtype: Any) -> nn.Module:
  return GPT(GPTConfig(V=data.vocab_size, L=m.get('positions', 0) or data.seq_len, D=m.width,
                       N=m.layers, H=m.heads, F=m.ffn or 4 * m.width, dropout=m.dropout,
                       act=m.get('activation', 'gelu'), eps=m.get('norm_eps', 1e-6), dtype=dtype))


def _check(config) -> None:
  entry.check_heads(config.model)
  entry.check_pretrained_fields(config)


def _generate(model: GPT, params, prompt_BxP, rng, *, window: int = 0, **settings) -> jax.Array:
  del window  # its own context, model.cfg.L
  return generate(model, params, prompt_BxP, rng, **settings)


def _flops(m, data) -> float:
  """Attention over T keys in each block (4 T D) and the tied output layer (2 V D)."""
  return m.layers * 4.0 * data.seq_len * m.width + 2.0 * data.vocab_size * m.width


ENTRIES = {'gpt': entry.Entry(_build, kinds=('lm',), check=_check,
                              tie_embeddings='always', generate=_generate, flops=_flops,
                              width_multiple=entry.heads_multiple,
                              embedding=('embed',), learned_positions=lambda m: True,
                              # the KV cache: a key and a value of width D per layer and token
                              decode_state=lambda m, length: 2 * m.layers * length * m.width,
                              longer_windows=lambda m: 'GPT learns one position embedding per '
                              'position up to config.data.seq_len')}
