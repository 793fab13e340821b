"""One decoder LM backbone, its sequence mixer the only difference between two of them.

  tokens -> embedding (+ learned positions) -> N x [x + mixer(norm(x)); x + mlp(norm(x))] -> norm ->
  tied softmax

Off by default, for pre-trained checkpoints (seqmodels/hf): an output layer of its own (Llama's
untied lm_head), a scale on the embeddings (Gemma's sqrt(width)) and soft-capped logits
(RecurrentGemma's cap * tanh(logits / cap)).

`pattern` names each block's mixer (seqmodels/layers/mixers), repeated to N blocks: ('attention',)
is a Transformer, ('mamba',) a Mamba LM, ('rglru', 'rglru', 'attention') Griffin. Transformer++ as
the Mamba paper defines it is pattern ('attention',) with RoPE, RMSNorm, SwiGLU and no biases (the
defaults). The norms, MLP, initialisation and training recipe are the same for every mixer
(DESIGN.md: the mixer is the only difference).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from seqmodels import decoding
from seqmodels.layers.embeddings import tied_logits
from seqmodels.layers.mixers import MIXERS, MixerConfig
from seqmodels.layers.mlp import MLPS, Mlp
from seqmodels.layers.norms import EPS, NORMS, make_norm
from seqmodels.models import entry

POSITIONS = ('auto', 'learned', 'rope', 'none')


@dataclasses.dataclass(frozen=True)
class LMConfig:
  V: int                                  # vocabulary
  L: int                                  # context: learned positions, and the KV cache of decoding
  N: int = 4                              # blocks
  pattern: tuple[str, ...] = ('attention',)  # the blocks' mixers, repeated to N
  mixer: MixerConfig = MixerConfig(D=128)  # D, heads, d_state, ... (the width is mixer.D)
  norm: str = 'rmsnorm'                   # layernorm | rmsnorm
  mlp: str = 'swiglu'                     # gelu | relu | swiglu | geglu | none
  F: int = 512                            # MLP hidden units
  position: str = 'none'                  # learned | rope (in the attention mixers) | none
  dropout: float = 0.0
  norm_eps: float = EPS                   # epsilon of the backbone's norms
  tied: bool = True                       # the output layer is the embedding; else 'head' [D, V]
  embed_scale: float = 1.0                # multiplies the token embeddings
  logit_cap: float = 0.0                  # > 0: logits -> cap * tanh(logits / cap)

  @property
  def mixers(self) -> tuple[str, ...]:
    """The mixer of each block."""
    return tuple(self.pattern[n % len(self.pattern)] for n in range(self.N))


class Block(nn.Module):
  """x + mixer(norm(x)), then x + mlp(norm(x)) unless mlp is 'none'."""
  cfg: LMConfig
  mixer: str

  @nn.compact
  def __call__(self, x_BxTxD, *, train: bool = False, decode_position=None):
    c, m = self.cfg, self.cfg.mixer
    drop = lambda y: nn.Dropout(c.dropout, deterministic=not train)(y)
    norm = lambda name: make_norm(c.norm, dtype=m.dtype, use_bias=m.use_bias, eps=c.norm_eps,
                                  name=name)
    y = MIXERS[self.mixer].module(m, name='mixer')(norm('norm_mixer')(x_BxTxD), train=train,
                                                   decode_position=decode_position)
    x_BxTxD = x_BxTxD + drop(y.astype(x_BxTxD.dtype))
    if c.mlp != 'none':
      mlp = Mlp(c.F, c.mlp, dtype=m.dtype, use_bias=m.use_bias,
                out_init=nn.initializers.normal(0.02 / (2 * c.N) ** 0.5), name='mlp')
      x_BxTxD = x_BxTxD + drop(mlp(norm('norm_mlp')(x_BxTxD), train=train).astype(x_BxTxD.dtype))
    return x_BxTxD


class LM(nn.Module):
  """tokens_BxT -> logits_BxTxV (float32). With `decode_position=p` the tokens sit at positions
  p..p+T-1 and every mixer continues from its cache (made by `init_cache`)."""
  cfg: LMConfig

  @nn.compact
  def __call__(self, tokens_BxT, *, train: bool = False, decode_position=None):
    c, m = self.cfg, self.cfg.mixer
    init = nn.initializers.normal(0.02)
    embed = nn.Embed(c.V, m.D, embedding_init=init, name='embed')
    x_BxTxD = embed(tokens_BxT)
    if c.embed_scale != 1.0:
      x_BxTxD = x_BxTxD * jnp.float32(c.embed_scale)
    if c.position == 'learned':
      pos_LxD = self.param('pos', init, (c.L, m.D), jnp.float32)
      first = 0 if decode_position is None else decode_position
      x_BxTxD = x_BxTxD + jax.lax.dynamic_slice_in_dim(pos_LxD, first, tokens_BxT.shape[1])
    x_BxTxD = nn.Dropout(c.dropout, deterministic=not train)(x_BxTxD.astype(m.dtype))
    for n, mixer in enumerate(c.mixers):
      x_BxTxD = Block(c, mixer, name=f'block{n}')(x_BxTxD, train=train,
                                                  decode_position=decode_position)
    x_BxTxD = make_norm(c.norm, dtype=m.dtype, use_bias=m.use_bias, eps=c.norm_eps,
                        name='norm_f')(x_BxTxD)
    if c.tied:
      logits_BxTxV = tied_logits(embed, x_BxTxD)
    else:
      head_DxV = self.param('head', init, (m.D, c.V), jnp.float32)
      logits_BxTxV = jnp.einsum('btd,dv->btv', x_BxTxD, head_DxV.astype(x_BxTxD.dtype),
                                preferred_element_type=jnp.float32)
    if c.logit_cap:
      logits_BxTxV = c.logit_cap * jnp.tanh(logits_BxTxV / c.logit_cap)
    return logits_BxTxV


def unbounded(cfg: LMConfig) -> bool:
  """Whether decoding may run past the context L: no learned positions and only fixed-size
  states."""
  return cfg.position != 'learned' and all(MIXERS[name].recurrent for name in cfg.pattern)


def init_cache(model: LM, batch_size: int):
  """Every mixer's decoding state, zeroed, for `batch_size` rows and a context of L."""
  dummy_BxL = jnp.zeros((batch_size, model.cfg.L), jnp.int32)
  shapes = jax.eval_shape(
      lambda: model.init(jax.random.PRNGKey(0), dummy_BxL, decode_position=0)['cache'])
  return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)


def step_function(model: LM, params, prompt_BxP) -> tuple[Any, Any, jax.Array]:
  """For seqmodels.decoding: (step_fn, cache, first_tokens_B) continuing `prompt_BxP`: its first P -
  1 tokens run once (prefill), then each step runs one token from the mixers' caches."""
  B, P = prompt_BxP.shape
  prompt_BxP = prompt_BxP.astype(jnp.int32)
  cache = init_cache(model, B)
  if P > 1:
    _, mutated = model.apply({'params': params, 'cache': cache}, prompt_BxP[:, :-1],
                             decode_position=0, mutable=['cache'])
    cache = mutated['cache']

  def step(last_B, state, t):
    logits_Bx1xV, mutated = model.apply({'params': params, 'cache': state['cache']},
                                        last_B[:, None], decode_position=state['offset'] + t,
                                        mutable=['cache'])
    return logits_Bx1xV[:, 0], {**state, 'cache': mutated['cache']}

  return step, {'cache': cache, 'offset': jnp.int32(P - 1)}, prompt_BxP[:, -1]


@functools.partial(jax.jit, static_argnames=('model', 'max_new', 'temperature', 'top_k', 'top_p',
                                             'eos_id', 'window'))
def generate(model: LM, params, prompt_BxP, rng, *, max_new: int, temperature: float = 0.0,
             top_k: int = 0, top_p: float = 1.0, eos_id: int | None = None,
             window: int = 0) -> jax.Array:
  """Continues every prompt row by `max_new` tokens (tokens_BxN, PAD after EOS), from the caches
  while the text fits the context L (or always, for a backbone of fixed-size states); past L, each
  token is predicted from the last L tokens, recomputed, as GPT's `generate` does."""
  del window  # its own context, model.cfg.L
  B, P = prompt_BxP.shape
  L = model.cfg.L
  sample = functools.partial(decoding.sample, temperature=temperature, top_k=top_k, top_p=top_p,
                             eos_id=eos_id)
  in_context = max_new if unbounded(model.cfg) else min(max_new, max(L - P + 1, 0))
  parts = []
  if in_context:
    step, cache, first_B = step_function(model, params, prompt_BxP if unbounded(model.cfg) else
                                         prompt_BxP[:, -L:])
    parts.append(sample(step, cache, first_B, in_context, jax.random.fold_in(rng, 0)))
  if max_new > in_context:
    text_BxT = jnp.concatenate([prompt_BxP.astype(jnp.int32)] + parts, axis=1)
    step, cache, first_B = decoding.window_step_function(
        lambda tokens: model.apply({'params': params}, tokens), text_BxT[:, -L:], L)
    parts.append(sample(step, cache, first_B, max_new - in_context, jax.random.fold_in(rng, 1)))
  return decoding.cut_after_eos(jnp.concatenate(parts, axis=1), eos_id)


def config_from(m, data, dtype: Any) -> LMConfig:
  """The LMConfig of config.model `m` for `data` (vocabulary and window length)."""
  pattern = tuple(p.strip() for p in m.pattern.split(',')) if m.get('pattern', '') else (m.mixer,)
  position = m.get('position', 'auto')
  if position == 'auto':  # RoPE where some block attends, none for a backbone of recurrences
    position = 'rope' if any(not MIXERS[p].recurrent for p in pattern) else 'none'
  gated = m.mlp in ('swiglu', 'geglu')  # 8/3 * width keeps a gated MLP's parameters at 4 * width's
  ffn = m.ffn or ((8 * m.width // 3 + 7) // 8 * 8 if gated else 4 * m.width)
  mixer = MixerConfig(D=m.width, H=m.heads, d_state=m.d_state, expand=m.expand, conv=m.conv,
                      window=m.window, rope=position == 'rope', chunk=m.chunk, scan=m.scan,
                      use_bias=m.bias, N=m.layers, dtype=dtype, unroll=m.unroll,
                      recurrence=entry.recurrence(m), kv_heads=m.get('kv_heads', 0),
                      qkv_bias=m.get('qkv_bias', True), rope_base=m.get('rope_base', 10000.0),
                      rope_fraction=m.get('rope_fraction', 1.0), groups=m.get('ssm_groups', 1),
                      lru_width=m.get('lru_width', 0), norm_eps=m.get('gated_norm_eps', 1e-5))
  return LMConfig(V=data.vocab_size, L=data.seq_len, N=m.layers, pattern=pattern, mixer=mixer,
                  norm=m.norm, mlp=m.mlp, F=ffn, position=position, dropout=m.dropout,
                  norm_eps=m.get('norm_eps', EPS), tied=m.get('tied_head', True),
                  embed_scale=m.get('embed_scale', 1.0), logit_cap=m.get('logit_cap', 0.0))


def decode_state(m, length: int) -> int:
  """Numbers of decoding state per sequence at `length` tokens: each block's mixer's (its
  `state_bytes`, which counts float32 numbers)."""
  c = config_from(m, types.SimpleNamespace(vocab_size=1, seq_len=length), jnp.float32)
  return sum(MIXERS[name].state_bytes(c.mixer, 1, length) for name in c.mixers) // 4


def _build(m, data, dtype: Any) -> nn.Module:
  return LM(config_from(m, data, dtype))


def _check_checkpoint_fields(m, attends) -> None:
  """The fields pre-trained checkpoints set (GQA, partial RoPE, norm epsilon, ...): one line
  each."""
  if attends and m.kv_heads:
    entry.check(m.kv_heads > 0 and m.heads % m.kv_heads == 0,
                f'config.model.kv_heads={m.kv_heads} must divide config.model.heads={m.heads} '
                '(each key/value head serves heads / kv_heads queries): change it, or 0 for heads')
  K = m.width // max(m.heads, 1)
  entry.check(not attends or 0 < m.rope_fraction <= 1 and int(K * m.rope_fraction) % 2 == 0,
              f'config.model.rope_fraction={m.rope_fraction} must be in (0, 1] and rotate an even '
              f'number of each head\'s {K} dimensions: choose e.g. 1.0 or 0.5')
  entry.check(m.rope_base > 0, f'config.model.rope_base={m.rope_base} must be > 0 (10000: RoPE\'s)')
  for f in ('logit_cap', 'lru_width'):
    entry.check(m[f] >= 0, f'config.model.{f}={m[f]!r} must be >= 0 (0: off / the default)')
  for f in ('norm_eps', 'gated_norm_eps'):
    entry.check(m[f] > 0, f'config.model.{f}={m[f]!r} must be > 0')
  entry.check(m.embed_scale > 0, f'config.model.embed_scale={m.embed_scale} must be > 0 (1: none)')


def _check(config) -> None:
  m = config.model
  names = ', '.join(MIXERS)
  pattern = [p.strip() for p in m.pattern.split(',')] if m.pattern else [m.mixer]
  for name in pattern:
    entry.check(name in MIXERS,
                f'config.model.{"pattern" if m.pattern else "mixer"}={m.pattern or m.mixer!r} '
                f'names {name!r}, which is not a mixer: choose from {names}')
  entry.check(m.norm in NORMS,
              f'config.model.norm={m.norm!r} is not a norm: choose one of {", ".join(NORMS)}')
  entry.check(m.mlp in (*MLPS, 'none'), f'config.model.mlp={m.mlp!r} is not an MLP: choose one of '
              f'{", ".join((*MLPS, "none"))}')
  entry.check(m.position in POSITIONS, f'config.model.position={m.position!r}: choose one of '
              f'{", ".join(POSITIONS)}')
  attends = [p for p in pattern if not MIXERS[p].recurrent]
  entry.check(m.position != 'rope' or attends, 'config.model.position=rope rotates the queries and '
              f'keys of attention, and model.pattern {pattern} has none (recurrent mixers need no '
              'positions): set position=none (or auto)')
  if attends:
    entry.check_heads(m)
    entry.check(m.position != 'rope' or (m.width // m.heads) % 2 == 0,
                f'config.model.position=rope needs an even head width, and width {m.width} / heads '
                f'{m.heads} is odd: change heads or width')
  entry.check_positive(m, 'd_state', 'expand', 'conv', 'chunk', 'ssm_groups')
  _check_checkpoint_fields(m, attends)
  entry.check(m.window >= 0,
              f'config.model.window={m.window!r} must be >= 0 (0: attention sees every position)')
  scans = ('auto', 'sequential', 'associative', 'chunked')
  entry.check(m.scan in scans, f'config.model.scan={m.scan!r} is not a way to run a recurrence: '
              f'choose one of {", ".join(scans)}')
  # What only a mixer knows (its heads must split its inner width, the scan forms it has): traced,
  # not run.
  model = LM(config_from(m, types.SimpleNamespace(vocab_size=8, seq_len=8), jnp.float32))
  try:
    jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((1, 8), jnp.int32)))
  except ValueError as e:
    entry.check(False, f'config.model (pattern {",".join(pattern)}, width {m.width}, heads '
                f'{m.heads}, expand {m.expand}, scan {m.scan}): {str(e).splitlines()[0]}')


def _flops(m, data) -> float:
  """Each block's mixer (its own count, seqmodels/layers/mixers) and the tied output layer."""
  c = config_from(m, data, jnp.float32)
  return (sum(MIXERS[name].flops(c.mixer, data.seq_len) for name in c.mixers) +
          2.0 * c.V * c.mixer.D)


# What each mixer's heads need of the width D: RoPE's even head widths, GLA's keys of D / (2H),
# RetNet's rotated keys of an even D / (2H); Mamba-2 / mLSTM split expand * D, RG-LRU D, into heads.
_HEADS_SPLIT = {'attention': 2, 'gla': 2, 'retnet': 4, 'mamba2': 1, 'mlstm': 1, 'rglru': 1}


def _width_multiple(m) -> int:
  """The least multiple of 4 that every block's mixer can split into its heads."""
  pattern = [p.strip() for p in m.pattern.split(',')] if m.get('pattern', '') else [m.mixer]
  return math.lcm(4, *(_HEADS_SPLIT[p] * m.heads for p in pattern if p in _HEADS_SPLIT))


ENTRIES = {'lm': entry.Entry(_build, kinds=('lm',), check=_check, tie_embeddings='always',
                             generate=generate, flops=_flops, width_multiple=_width_multiple,
                             embedding=('embed',), decode_state=decode_state,
                             learned_positions=lambda m: m.get('position', 'auto') == 'learned',
                             longer_windows=lambda m: (
                                 'model.position=learned learns one embedding per position up to '
                                 'config.data.seq_len' if m.get('position') == 'learned' else ''))}
