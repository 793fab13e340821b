"""Recurrent language models (Elman 1990; Mikolov et al. 2010): embedding -> RNN/LSTM/GRU stack ->
softmax."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from seqmodels import decoding
from seqmodels.layers.embeddings import OutputLayer, tied_logits
from seqmodels.layers.recurrent import Recurrent
from seqmodels.models import entry
from seqmodels.models.rnn_regressor import RNNRegressor, RNNRegressorConfig


@dataclasses.dataclass(frozen=True)
class RNNLMConfig:
  V: int                 # vocabulary size
  cell: str = 'lstm'     # rnn | lstm | gru
  E: int = 128           # embedding width
  H: int = 256           # hidden units per layer
  N: int = 2             # layers
  dropout: float = 0.0   # on embeddings, between layers and before the output layer
  forget_bias: float = 1.0
  recurrent_init_scale: float = 1.0  # multiplies the orthogonal recurrent init (> 1: exploding
                                     # gradients)
  unroll: int = 1        # lax.scan unroll factor (speed knob only)
  parallel_scan: bool | None = None  # mingru/minlstm: associative (True) or sequential (False)
                                     # scan; None: auto
  dtype: Any = jnp.float32
  recurrence: str = 'scan'  # rnn/lstm/gru: scan | hoisted | cudnn
                            # (seqmodels.layers.recurrent.RECURRENCES)
  tie: bool = False      # the output layer is the embedding, transposed (Press & Wolf 2017; Inan et
                         # al. 2017)


def _tied_embedding_init(key, shape, dtype=jnp.float32):
  """U(-0.1, 0.1), the tied embedding of Zaremba et al. (2014) and PyTorch's word_language_model: as
  an output layer, the default N(0, 1) rows would start the logits at several nats of spread."""
  return jax.random.uniform(key, shape, dtype, -0.1, 0.1)


class RNNLM(nn.Module):
  """tokens_BxT -> logits_BxTxV (float32), many-to-many next-token prediction.

  `carry0` (one carry per layer, as `Recurrent` returns them) continues from an earlier state, and
  `return_carry=True` returns (logits, final carries): how `step_function` decodes a token at a
  time. With `tie`, the logits are the top states (projected to E where H differs) against every
  embedding row, plus a bias: the V x E output matrix is the embedding's.
  """
  cfg: RNNLMConfig

  @nn.compact
  def __call__(self, tokens_BxT, *, train: bool = False, carry0=None, return_carry: bool = False):
    c = self.cfg
    drop = lambda y: nn.Dropout(c.dropout, deterministic=not train)(y)
    embed = nn.Embed(c.V, c.E, name='embed',
                     **({'embedding_init': _tied_embedding_init} if c.tie else {}))
    x_BxTxE = drop(embed(tokens_BxT))
    h_BxTxH, finals = Recurrent(
        c.cell, c.H, c.N, dropout=c.dropout, forget_bias=c.forget_bias, unroll=c.unroll,
        parallel_scan=c.parallel_scan, recurrent_init_scale=c.recurrent_init_scale, dtype=c.dtype,
        recurrence=c.recurrence, name='rnn')(x_BxTxE, carry0=carry0, train=train)
    if c.tie:
      y_BxTxE = h_BxTxH if c.H == c.E else nn.Dense(c.E, dtype=c.dtype, name='tie_proj')(h_BxTxH)
      bias_V = self.param('head_bias', nn.initializers.zeros, (c.V,), jnp.float32)
      logits_BxTxV = tied_logits(embed, drop(y_BxTxE)) + bias_V
    else:
      logits_BxTxV = OutputLayer(c.V, dtype=c.dtype, name='head')(drop(h_BxTxH))
    return (logits_BxTxV, finals) if return_carry else logits_BxTxV


def step_function(model: RNNLM, params, prompt_BxP) -> tuple[Any, Any, jax.Array]:
  """For seqmodels.decoding: (step_fn, cache, first_tokens_B) continuing `prompt_BxP` (P >= 1).

  The cache is the recurrent state (one carry per layer): the prompt's first P - 1 tokens are run
  once from the zero state, then each step feeds one token. The state summarises the whole text so
  far, with no window: the same function as running the model over the whole text
  (tests/models/rnn_lm_test.py).
  """
  prompt_BxP = prompt_BxP.astype(jnp.int32)
  run = lambda tokens_BxT, carry0: model.apply({'params': params}, tokens_BxT, carry0=carry0,
                                               return_carry=True)
  if prompt_BxP.shape[1] > 1:
    _, carry = run(prompt_BxP[:, :-1], None)
  else:  # the zero state, in the structure the model returns
    carry = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype),
                         jax.eval_shape(run, prompt_BxP, None)[1])

  def step_fn(last_B, carry, t):
    logits_Bx1xV, carry = run(last_B[:, None], carry)
    return logits_Bx1xV[:, 0], carry

  return step_fn, carry, prompt_BxP[:, -1]


def _build(cell: str) -> Callable[..., nn.Module]:
  """A recurrent LM for token tasks; a many-to-one regressor for 'regression' tasks (the adding
  problem)."""

  def build(m, data, dtype: Any) -> nn.Module:
    if getattr(data, 'kind', 'lm') == 'regression':
      return RNNRegressor(RNNRegressorConfig(
          cell=cell, H=m.width, N=m.layers, dropout=m.dropout, forget_bias=m.forget_bias,
          recurrent_init_scale=m.recurrent_init_scale, unroll=m.unroll,
          parallel_scan=entry.parallel_scan(m), recurrence=entry.recurrence(m), dtype=dtype))
    return RNNLM(RNNLMConfig(
        V=data.vocab_size, cell=cell, E=m.embed or m.width, H=m.width, N=m.layers,
        dropout=m.dropout, forget_bias=m.forget_bias, unroll=m.unroll,
        parallel_scan=entry.parallel_scan(m), recurrent_init_scale=m.recurrent_init_scale,
        recurrence=entry.recurrence(m), tie=m.get('tie_embeddings', False), dtype=dtype))

  return build


def _flops(m, data) -> float:
  """A tied output layer (2 V E); the cells' work is their weights' (their gates' elementwise
  work, about 10 D a token, is left out as every model's elementwise work is)."""
  tied = getattr(data, 'kind', 'lm') == 'lm' and m.get('tie_embeddings', False)
  return 2.0 * data.vocab_size * (m.embed or m.width) if tied else 0.0


ENTRIES = {cell: entry.Entry(_build(cell), kinds=('lm', 'regression'), carries_state=True,
                             tie_embeddings='option', recurrent_cell=entry.cell_of(cell),
                             generate=decoding.sampler(step_function), flops=_flops,
                             embedding=('embed',),
                             # each layer's h (and an LSTM's c), whatever the length
                             decode_state=lambda m, length, cell=cell: (
                                 m.layers * m.width * (2 if cell == 'lstm' else 1)))
           for cell in ('rnn', 'lstm', 'gru', 'mingru', 'minlstm')}
