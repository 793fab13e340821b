"""RNN encoder-decoders: context vector (Sutskever et al. 2014; Cho et al. 2014) and attention
(Bahdanau et al. 2015, additive; Luong et al. 2015, general/dot), trained with teacher forcing or
scheduled sampling (Bengio et al. 2015) and decoded by seqmodels.decoding.

  encoder: embed -> Recurrent (N layers, optionally bidirectional; padded source positions masked)
  bridge:  the encoder's final carries initialise the decoder (through tanh(Dense) when
           bidirectional)
  decoder: per step t, input embed(y_{t-1}) [+ c], recurrent state s_t, output softmax(W o_t) where
    none:            o_t = s_t
                     (Sutskever: the final state is all it gets)
    feed_context:    c = top-layer final encoder state, fed to every step; o_t = tanh(W_c [s_t; c])
                     (Cho)
    additive:        c_t = attend(query s_{t-1}) fed to step t;   o_t = tanh(W_c [s_t; c_t])
                                                                  (Bahdanau)
    general / dot:   c_t = attend(query s_t) after the step;       o_t = tanh(W_c [s_t; c_t])
                                                                   (Luong)

With full teacher forcing and a query that is not s_{t-1} (none, feed_context, general, dot) the
decoder runs over all target positions in one scan (hoisted input projection); otherwise it steps
through time with nn.scan. Both paths call the same modules and compute the same function
(tests/models/seq2seq_test.py).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from seqmodels.layers.attention import SourceAttention
from seqmodels.layers.embeddings import OutputLayer
from seqmodels.layers.recurrent import Recurrent
from seqmodels.models import entry

Array = jax.Array
ATTENTION = ('none', 'additive', 'general', 'dot')
PAD = 0


@dataclasses.dataclass(frozen=True)
class Seq2SeqConfig:
  V_src: int                    # source vocabulary
  V_tgt: int                    # target vocabulary
  cell: str = 'lstm'            # rnn | lstm | gru
  E: int = 128                  # embedding width (source and target)
  H: int = 256                  # hidden units per layer (encoder: per direction)
  N: int = 1                    # layers of the encoder and of the decoder
  bidirectional: bool = False   # bidirectional encoder (Bahdanau et al.); a bridge maps it to the
                                # decoder size
  attention: str = 'none'       # none | additive | general | dot
  A: int = 0                    # additive attention hidden units; 0 means H
  feed_context: bool = False    # Cho et al.: the context vector is an input of every decoder step
  teacher_forcing: float = 1.0  # probability of feeding the true previous token in training (else a
                                # sample)
  dropout: float = 0.0
  forget_bias: float = 1.0
  unroll: int = 1
  # mingru/minlstm: associative (True) or sequential (False) scan; None: auto
  parallel_scan: bool | None = None
  dtype: Any = jnp.float32
  # rnn/lstm/gru: scan | hoisted | cudnn (seqmodels.layers.recurrent.RECURRENCES)
  recurrence: str = 'scan'


class Seq2Seq(nn.Module):
  """(src_BxS, tgt_in_BxT) -> (logits_BxTxV float32, attention weights_BxTxS or None); PAD (0) ends
  a source."""
  cfg: Seq2SeqConfig

  def setup(self):
    c = self.cfg
    if c.attention not in ATTENTION:
      raise ValueError(f'unknown attention {c.attention!r}: choose one of {ATTENTION}')
    self.src_embed = nn.Embed(c.V_src, c.E)
    self.tgt_embed = nn.Embed(c.V_tgt, c.E)
    rnn = lambda bi: Recurrent(
        c.cell, c.H, c.N, bidirectional=bi, dropout=c.dropout, forget_bias=c.forget_bias,
        unroll=c.unroll, parallel_scan=c.parallel_scan, dtype=c.dtype, recurrence=c.recurrence)
    self.encoder = rnn(c.bidirectional)
    self.decoder = rnn(False)
    if c.bidirectional:
      self.bridge = [nn.Dense(c.H * (2 if c.cell == 'lstm' else 1), dtype=c.dtype)
                     for _ in range(c.N)]
    if c.attention != 'none':
      A = c.H if c.attention == 'general' else (c.A or c.H)
      self.attention = SourceAttention(c.attention, A, dtype=c.dtype)
    if c.attention != 'none' or c.feed_context:
      self.combine = nn.Dense(c.H, dtype=c.dtype)
    self.head = OutputLayer(c.V_tgt, dtype=c.dtype)
    self.drop = nn.Dropout(c.dropout)

  def encode(self, src_BxS: Array, train: bool = False) -> tuple[dict, list]:
    """Source (PAD = 0 after the tokens) -> (memory: encoder states h_BxSxE, attention keys,
    mask_BxS, context_BxE; decoder carry0)."""
    c = self.cfg
    mask_BxS = src_BxS != PAD
    x_BxSxE = self.drop(self.src_embed(src_BxS), deterministic=not train)
    h_BxSxE, finals = self.encoder(x_BxSxE, mask_BxS, train=train)
    dirs = 2 if c.bidirectional else 1
    top = finals[(c.N - 1) * dirs:]
    memory = {'h': h_BxSxE, 'mask': mask_BxS, 'context': jnp.concatenate([f[0] for f in top], -1)}
    if c.attention != 'none':
      memory['keys'] = self.attention.keys(h_BxSxE)
    if not c.bidirectional:
      return memory, list(finals)
    carry0 = []
    for n in range(c.N):  # tanh(W [fwd; bwd]) per layer, split back into (h,) or (h, c)
      both = jnp.concatenate([*finals[2 * n], *finals[2 * n + 1]], -1)
      carry0.append(tuple(jnp.split(jnp.tanh(self.bridge[n](both)).astype(jnp.float32),
                                    len(finals[0]), -1)))
    return memory, carry0

  def _readout(self, s_BxTxH: Array, c_BxTxE: Array | None, train: bool) -> Array:
    if c_BxTxE is not None:
      s_BxTxH = jnp.tanh(self.combine(jnp.concatenate([s_BxTxH, c_BxTxE.astype(s_BxTxH.dtype)],
                                                      -1)))
    return self.head(self.drop(s_BxTxH, deterministic=not train))

  def step(self, memory: dict, carry: list, y_prev_B: Array,
           train: bool = False) -> tuple[list, Array, Array]:
    """One decoder step: (memory, carry, previous token) -> (new carry, logits_BxV, attention
    weights_BxS)."""
    c = self.cfg
    x_Bx1xE = self.drop(self.tgt_embed(y_prev_B)[:, None], deterministic=not train)
    B, S = memory['mask'].shape
    ctx, w = None, jnp.zeros((B, 1, S), jnp.float32)
    if c.attention == 'additive':
      ctx, w = self.attention(carry[-1][0][:, None], memory['keys'], memory['h'], memory['mask'])
    elif c.feed_context:
      ctx = memory['context'][:, None]
    if ctx is not None:
      x_Bx1xE = jnp.concatenate([x_Bx1xE, ctx.astype(x_Bx1xE.dtype)], -1)
    s_Bx1xH, carry = self.decoder(x_Bx1xE, None, carry, train=train)
    if c.attention in ('general', 'dot'):
      ctx, w = self.attention(s_Bx1xH, memory['keys'], memory['h'], memory['mask'])
    return list(carry), self._readout(s_Bx1xH, ctx, train)[:, 0], w[:, 0]

  def _parallel(self, memory: dict, carry0: list, tgt_in_BxT: Array,
                train: bool) -> tuple[Array, Array | None]:
    """Teacher-forced decoder over all positions at once (no query depends on s_{t-1})."""
    c = self.cfg
    x_BxTxE = self.drop(self.tgt_embed(tgt_in_BxT), deterministic=not train)
    T = tgt_in_BxT.shape[1]
    ctx, w = None, None
    if c.feed_context:
      ctx = jnp.broadcast_to(memory['context'][:, None],
                             (x_BxTxE.shape[0], T, memory['context'].shape[-1]))
      x_BxTxE = jnp.concatenate([x_BxTxE, ctx.astype(x_BxTxE.dtype)], -1)
    s_BxTxH, _ = self.decoder(x_BxTxE, None, carry0, train=train)
    if c.attention != 'none':
      ctx, w = self.attention(s_BxTxH, memory['keys'], memory['h'], memory['mask'])
    return self._readout(s_BxTxH, ctx, train), w

  def _stepwise(self, memory: dict, carry0: list, tgt_in_BxT: Array,
                train: bool) -> tuple[Array, Array]:
    """Step by step; in training, each input token is the true one with prob. teacher_forcing, else
    a sample."""
    sampling = train and self.cfg.teacher_forcing < 1.0

    def body(mdl, state, memory, y_true_B):
      carry, t, y_model_B = state
      y_B = y_true_B
      if sampling:  # t = 0 always gets BOS
        keep_B = jax.random.bernoulli(mdl.make_rng('sample'), self.cfg.teacher_forcing,
                                      y_true_B.shape)
        y_B = jnp.where(keep_B | (t == 0), y_true_B, y_model_B)
      carry, logits_BxV, w_BxS = mdl.step(memory, carry, y_B, train)
      y_model_B = y_B
      if sampling:
        y_model_B = jax.random.categorical(mdl.make_rng('sample'),
                                           jax.lax.stop_gradient(logits_BxV))
      return (carry, t + 1, y_model_B.astype(jnp.int32)), (logits_BxV, w_BxS)

    scan = nn.scan(body, variable_broadcast='params',
                   split_rngs={'params': False, 'dropout': True, 'sample': True},
                   in_axes=(nn.broadcast, 0), out_axes=1)
    init = (carry0, jnp.zeros((), jnp.int32), tgt_in_BxT[:, 0])
    _, (logits_BxTxV, w_BxTxS) = scan(self, init, memory, jnp.swapaxes(tgt_in_BxT, 0, 1))
    return logits_BxTxV, w_BxTxS

  def __call__(self, src_BxS: Array, tgt_in_BxT: Array, *, train: bool = False):
    memory, carry0 = self.encode(src_BxS, train)
    if self.cfg.attention == 'additive' or (train and self.cfg.teacher_forcing < 1.0):
      return self._stepwise(memory, carry0, tgt_in_BxT, train)
    return self._parallel(memory, carry0, tgt_in_BxT, train)


def step_function(model: Seq2Seq, params, src_BxS: Array) -> tuple[Any, dict]:
  """(decoding.StepFn, its initial cache) for translating src_BxS; cache = {'memory', 'carry'},
  batch leading."""
  memory, carry0 = model.apply({'params': params}, src_BxS, method=Seq2Seq.encode)

  def step_fn(last_B, cache, position):
    del position  # the carry is all the state an RNN decoder needs
    carry, logits_BxV, _ = model.apply({'params': params}, cache['memory'], cache['carry'], last_B,
                                       method=Seq2Seq.step)
    return logits_BxV, {'memory': cache['memory'], 'carry': carry}

  return step_fn, {'memory': memory, 'carry': carry0}


def _build(cell: str):
  def build(m, data, dtype: Any) -> nn.Module:
    meta = getattr(data, 'meta', {})
    return Seq2Seq(Seq2SeqConfig(
        V_src=meta.get('src_vocab_size', data.vocab_size), V_tgt=data.vocab_size, cell=cell,
        E=m.embed or m.width, H=m.width, N=m.layers, bidirectional=m.encoder_bidirectional,
        attention=m.attention, A=m.attention_width, feed_context=m.feed_context,
        teacher_forcing=m.teacher_forcing, dropout=m.dropout, forget_bias=m.forget_bias,
        unroll=m.unroll, parallel_scan=entry.parallel_scan(m), recurrence=entry.recurrence(m),
        dtype=dtype))
  return build


def _check(config) -> None:
  m = config.model
  entry.check(m.attention in ATTENTION, f'config.model.attention={m.attention!r} is not an '
              f'attention: choose one of {", ".join(ATTENTION)}')
  entry.check(m.attention_width >= 0,
              f'config.model.attention_width={m.attention_width!r} must be >= 0 (0 means width)')
  entry.check(0 <= m.teacher_forcing <= 1,
              f'config.model.teacher_forcing={m.teacher_forcing!r} must be in [0, 1]')
  entry.check(not (m.attention == 'dot' and m.encoder_bidirectional),
              "config.model.attention='dot' needs encoder states as wide as the decoder's: set "
              "config.model.encoder_bidirectional=False or use 'general'")


def _flops(m, data) -> float:
  """Per target token, attention over the S = seq_len source states: scores and context (4 S H),
  and the additive score's tanh(k + q) . v (3 S A); the recurrences' work is their weights'."""
  if m.attention == 'none':
    return 0.0
  S = data.seq_len
  return 4.0 * S * m.width + (3.0 * S * (m.attention_width or m.width)
                              if m.attention == 'additive' else 0.0)


ENTRIES = {f'seq2seq_{cell}': entry.Entry(_build(cell), kinds=('seq2seq',), check=_check,
                                          recurrent_cell=entry.cell_of(cell),
                                          decode_step=step_function,
                                          after_training=('translation',), flops=_flops)
           for cell in ('rnn', 'lstm', 'gru')}
