"""Recurrent sequence classifier (many-to-one): embedding -> LSTM/GRU/RNN stack -> final hidden
state -> linear.

The baseline that BERT fine-tuning is compared against; sentence pairs arrive joined by [SEP].
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from seqmodels.layers.recurrent import Recurrent
from seqmodels.models import entry

PAD = 0


@dataclasses.dataclass(frozen=True)
class RNNClassifierConfig:
  V: int                 # vocabulary size
  C: int = 2             # classes
  cell: str = 'lstm'     # rnn | lstm | gru
  E: int = 128           # embedding width
  H: int = 256           # hidden units per layer
  N: int = 1             # layers
  dropout: float = 0.0
  forget_bias: float = 1.0
  unroll: int = 1
  # mingru/minlstm: associative (True) or sequential (False) scan; None: auto
  parallel_scan: bool | None = None
  dtype: Any = jnp.float32
  # rnn/lstm/gru: scan | hoisted | cudnn (seqmodels.layers.recurrent.RECURRENCES)
  recurrence: str = 'scan'


class RNNClassifier(nn.Module):
  """(tokens_BxT, segments_BxT) -> logits_BxC (float32) from the top layer's state after the last
  real token."""
  cfg: RNNClassifierConfig

  @nn.compact
  def __call__(self, tokens_BxT, segments_BxT=None, *, train: bool = False):
    del segments_BxT  # the [SEP] token already marks where sentence B starts
    c = self.cfg
    drop = lambda y: nn.Dropout(c.dropout, deterministic=not train)(y)
    mask_BxT = (tokens_BxT != PAD).astype(jnp.float32)
    x_BxTxE = drop(nn.Embed(c.V, c.E, name='embed')(tokens_BxT))
    _, finals = Recurrent(c.cell, c.H, c.N, dropout=c.dropout, forget_bias=c.forget_bias,
                          unroll=c.unroll, parallel_scan=c.parallel_scan, dtype=c.dtype,
                          recurrence=c.recurrence, name='rnn')(x_BxTxE, mask_BxT, train=train)
    # padded steps leave the carry unchanged: this is the state after the last real token
    h_BxH = finals[-1][0]
    return nn.Dense(c.C, dtype=c.dtype, name='classifier')(drop(h_BxH)).astype(jnp.float32)


def _build(m, data, dtype: Any) -> nn.Module:
  return RNNClassifier(RNNClassifierConfig(
      V=data.vocab_size, C=data.meta.get('num_classes', 2), cell='lstm', E=m.embed or m.width,
      H=m.width, N=m.layers, dropout=m.dropout, forget_bias=m.forget_bias, unroll=m.unroll,
      parallel_scan=entry.parallel_scan(m), recurrence=entry.recurrence(m), dtype=dtype))


ENTRIES = {'lstm_classifier': entry.Entry(_build, kinds=('classify',),
                                          recurrent_cell=entry.cell_of('lstm'))}
