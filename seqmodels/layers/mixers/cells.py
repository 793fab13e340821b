"""The classic recurrent cells as mixers: one RNN / LSTM / GRU (seqmodels/layers/recurrent.py, its
one scan driver) or minGRU / minLSTM layer of D units, so that "an LSTM in a modern backbone" is a
row of a comparison. Decoding carries the cell's state in the cache."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from seqmodels.layers.mixers.base import MixerConfig, cached
from seqmodels.layers.recurrent import Recurrent


class Cell(nn.Module):
  """x_BxTxD -> h_BxTxD of one recurrent layer of D units, from the state the cache holds when
  decoding."""
  cfg: MixerConfig
  cell: str  # rnn | lstm | gru | mingru | minlstm

  @nn.compact
  def __call__(self, x_BxTxD, *, train: bool = False, decode_position=None):
    c = self.cfg
    parallel = {'associative': True, 'sequential': False}.get(c.scan)
    layer = Recurrent(self.cell, c.D, 1, forget_bias=1.0 if self.cell == 'lstm' else 0.0,
                      unroll=c.unroll, parallel_scan=parallel, dtype=c.dtype,
                      recurrence=c.recurrence, name='rnn')
    if decode_position is None:
      return layer(x_BxTxD, train=train)[0]
    B = x_BxTxD.shape[0]
    zeros = lambda: [tuple(jnp.zeros((B, c.D), jnp.float32)
                           for _ in range(2 if self.cell == 'lstm' else 1))]
    state, created = cached(self, 'carry', zeros)
    h_BxTxD, finals = layer(x_BxTxD, carry0=state.value, train=train)
    if not created:
      state.value = finals
    return h_BxTxD


def state_bytes_of(cell: str):
  def state_bytes(cfg: MixerConfig, batch: int, length: int) -> int:
    del length  # a fixed size: the cell's state
    return (2 if cell == 'lstm' else 1) * batch * cfg.D * 4
  return state_bytes

