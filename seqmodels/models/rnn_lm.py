"""Recurrent language models (Elman 1990; Mikolov et al. 2010): embedding -> RNN/LSTM/GRU stack -> softmax."""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from seqmodels.layers.recurrent import Recurrent


@dataclasses.dataclass(frozen=True)
class RNNLMConfig:
  V: int                 # vocabulary size
  cell: str = 'lstm'     # rnn | lstm | gru
  E: int = 128           # embedding width
  H: int = 256           # hidden units per layer
  N: int = 2             # layers
  dropout: float = 0.0   # on embeddings, between layers and before the output layer
  forget_bias: float = 1.0
  recurrent_init_scale: float = 1.0  # multiplies the orthogonal recurrent init (> 1: exploding gradients)
  unroll: int = 1        # lax.scan unroll factor (speed knob only)
  parallel_scan: bool | None = None  # mingru/minlstm: associative (True) or sequential (False) scan; None: auto
  dtype: Any = jnp.float32
  recurrence: str = 'scan'  # rnn/lstm/gru: scan | hoisted | cudnn (seqmodels.layers.recurrent.RECURRENCES)


class RNNLM(nn.Module):
  """tokens_BxT -> logits_BxTxV (float32), many-to-many next-token prediction."""
  cfg: RNNLMConfig

  @nn.compact
  def __call__(self, tokens_BxT, *, train: bool = False):
    c = self.cfg
    drop = lambda y: nn.Dropout(c.dropout, deterministic=not train)(y)
    x_BxTxE = drop(nn.Embed(c.V, c.E, name='embed')(tokens_BxT))
    h_BxTxH, _ = Recurrent(c.cell, c.H, c.N, dropout=c.dropout, forget_bias=c.forget_bias, unroll=c.unroll,
                           parallel_scan=c.parallel_scan, recurrent_init_scale=c.recurrent_init_scale,
                           dtype=c.dtype, recurrence=c.recurrence, name='rnn')(x_BxTxE, train=train)
    return nn.Dense(c.V, dtype=c.dtype, name='head')(drop(h_BxTxH)).astype(jnp.float32)
