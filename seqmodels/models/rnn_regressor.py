"""Many-to-one regressors over real-valued steps (the adding problem, Hochreiter & Schmidhuber
1997).

Each step t carries the features [value_t, marker_t]; the model reads the T steps and predicts one
real number.
  RNNRegressor:         a recurrent stack (any cell of seqmodels/layers/recurrent.py) -> the top
                        layer's state after the last real step -> Dense(1). Padded steps (mask 0)
                        leave the state unchanged.
  TransformerRegressor: Dense(D) of the features + learned positions -> N non-causal Transformer
                        blocks (padding masked) -> mean over the real steps -> Dense(1).
Both map (values_BxT, markers_BxT, mask_BxT) -> prediction_B (float32).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from seqmodels.layers.recurrent import Recurrent
from seqmodels.layers.transformer import Block
from seqmodels.models import entry


@dataclasses.dataclass(frozen=True)
class RNNRegressorConfig:
  cell: str = 'lstm'     # rnn | lstm | gru | mingru | minlstm
  H: int = 128           # hidden units per layer
  N: int = 1             # layers
  dropout: float = 0.0   # between layers
  forget_bias: float = 1.0
  # multiplies the orthogonal recurrent init (> 1: exploding gradients)
  recurrent_init_scale: float = 1.0
  unroll: int = 1
  # mingru/minlstm: associative (True) or sequential (False) scan; None: auto
  parallel_scan: bool | None = None
  dtype: Any = jnp.float32
  # rnn/lstm/gru: scan | hoisted | cudnn (seqmodels.layers.recurrent.RECURRENCES)
  recurrence: str = 'scan'


def _features(values_BxT, markers_BxT):
  return jnp.stack([values_BxT, markers_BxT], axis=-1).astype(jnp.float32)


class RNNRegressor(nn.Module):
  """(values_BxT, markers_BxT, mask_BxT) -> prediction_B from the state after the last real step."""
  cfg: RNNRegressorConfig

  @nn.compact
  def __call__(self, values_BxT, markers_BxT, mask_BxT, *, train: bool = False):
    c = self.cfg
    rnn = Recurrent(c.cell, c.H, c.N, dropout=c.dropout, forget_bias=c.forget_bias, unroll=c.unroll,
                    parallel_scan=c.parallel_scan, recurrent_init_scale=c.recurrent_init_scale,
                    dtype=c.dtype, recurrence=c.recurrence, name='rnn')
    _, finals = rnn(_features(values_BxT, markers_BxT), mask_BxT, train=train)
    h_BxH = finals[-1][0]
    return nn.Dense(1, dtype=c.dtype, name='head')(h_BxH)[:, 0].astype(jnp.float32)


@dataclasses.dataclass(frozen=True)
class TransformerRegressorConfig:
  L: int                 # maximum sequence length (learned positions)
  D: int = 64            # width
  N: int = 2             # blocks
  H: int = 4             # heads
  F: int = 256           # FFN width
  dropout: float = 0.0
  dtype: Any = jnp.float32


class TransformerRegressor(nn.Module):
  """(values_BxT, markers_BxT, mask_BxT) -> prediction_B; every step attends to every real step."""
  cfg: TransformerRegressorConfig

  @nn.compact
  def __call__(self, values_BxT, markers_BxT, mask_BxT, *, train: bool = False):
    c = self.cfg
    T = values_BxT.shape[1]
    x_BxTxD = nn.Dense(c.D, dtype=c.dtype, name='embed')(_features(values_BxT, markers_BxT))
    x_BxTxD = x_BxTxD + nn.Embed(c.L, c.D, embedding_init=nn.initializers.normal(0.02),
                                 name='pos')(jnp.arange(T))
    lengths_B = mask_BxT.sum(-1).astype(jnp.int32)
    for n in range(c.N):
      x_BxTxD = Block(c.H, c.F, causal=False, dropout=c.dropout, dtype=c.dtype, name=f'block{n}')(
          x_BxTxD, lengths_B, train=train)
    x_BxTxD = nn.LayerNorm(dtype=c.dtype, name='ln_f')(x_BxTxD).astype(jnp.float32)
    m_BxTx1 = mask_BxT[..., None].astype(jnp.float32)
    pooled_BxD = (x_BxTxD * m_BxTx1).sum(1) / jnp.maximum(m_BxTx1.sum(1), 1.0)
    return nn.Dense(1, name='head')(pooled_BxD)[:, 0].astype(jnp.float32)


def _build_transformer(m, data, dtype: Any) -> nn.Module:
  return TransformerRegressor(TransformerRegressorConfig(
      L=data.seq_len, D=m.width, N=m.layers, H=m.heads, F=m.ffn or 4 * m.width, dropout=m.dropout,
      dtype=dtype))


# The recurrent regressors are the `regression` kind of the recurrent LMs' entries
# (seqmodels/models/rnn_lm.py).
ENTRIES = {'transformer_regressor': entry.Entry(_build_transformer, kinds=('regression',),
                                                check=lambda c: entry.check_heads(c.model))}
