"""BERT (Devlin et al. 2019): a Transformer encoder pre-trained by masked-LM + next-sentence
prediction, then fine-tuned with a classifier on the pooled [CLS] vector, or on the mean of the last
layer's token vectors.

The encoder is the submodule `bert` in both models, so `train.init_from` carries it from a
pre-training run to a classification run, and `optim.freeze=bert` trains only the new head (feature
extraction). The pooler tanh(W h_[CLS]) is trained only by next-sentence prediction; where that is
not learned (a tiny model on one small corpus), the [CLS] features carry little and pool='mean'
reads what masked-LM taught every token.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from seqmodels.layers.mlp import ACTIVATIONS
from seqmodels.layers.embeddings import PositionEmbedding, SegmentEmbedding, tied_logits
from seqmodels.layers.transformer import Block
from seqmodels.models import entry

PAD = 0


@dataclasses.dataclass(frozen=True)
class BERTConfig:
  V: int                 # vocabulary size (with [PAD]=0, [CLS], [SEP], [MASK])
  L: int                 # context length (learned positions)
  D: int = 128           # width
  N: int = 2             # encoder blocks
  H: int = 4             # heads
  F: int = 512           # FFN width
  C: int = 2             # classes of the fine-tuning head
  pool: str = 'cls'      # what the head reads: cls (the pooler on [CLS], as BERT) | mean (of real
                         # tokens)
  dropout: float = 0.1
  act: str = 'gelu'      # FFN and MLM-head activation (seqmodels.layers.mlp.ACTIVATIONS); BERT's
                         # own is gelu_erf
  eps: float = 1e-6      # LayerNorm epsilon (BERT's: 1e-12)
  dtype: Any = jnp.float32


class BERTEncoder(nn.Module):
  """(tokens_BxT, segments_BxT) -> (h_BxTxD, pooled_BxD): token + segment + position embeddings,
  LayerNorm, N post-LN GELU blocks over the real (non-PAD) tokens, and the pooler tanh(W
  h_[CLS])."""
  cfg: BERTConfig

  def setup(self):
    c = self.cfg
    self.embed = nn.Embed(c.V, c.D, embedding_init=nn.initializers.normal(0.02))
    self.segment = SegmentEmbedding()
    self.pos = PositionEmbedding(c.L, 'learned')
    self.ln = nn.LayerNorm(epsilon=c.eps, dtype=c.dtype)
    self.drop = nn.Dropout(c.dropout)
    self.blocks = [Block(c.H, c.F, causal=False, pre_ln=False, activation=c.act, dropout=c.dropout,
                         dtype=c.dtype, norm_eps=c.eps) for _ in range(c.N)]
    self.pooler = nn.Dense(c.D, dtype=c.dtype, kernel_init=nn.initializers.normal(0.02))

  def __call__(self, tokens_BxT, segments_BxT, *, train: bool = False):
    lengths_B = jnp.maximum((tokens_BxT != PAD).sum(-1), 1)  # padding is at the end of each row
    x_BxTxD = self.pos(self.segment(self.embed(tokens_BxT), segments_BxT))
    x_BxTxD = self.drop(self.ln(x_BxTxD.astype(self.cfg.dtype)), deterministic=not train)
    for block in self.blocks:
      x_BxTxD = block(x_BxTxD, lengths_B, train=train)
    return x_BxTxD, jnp.tanh(self.pooler(x_BxTxD[:, 0]))

  def attend(self, h_BxTxD):
    """Logits over the vocabulary with the input embedding as output weights (tied, as in BERT)."""
    return tied_logits(self.embed, h_BxTxD)


class BERTPretrain(nn.Module):
  """(tokens_BxT, segments_BxT) -> (mlm_logits_BxTxV, nsp_logits_Bx2), float32."""
  cfg: BERTConfig

  @nn.compact
  def __call__(self, tokens_BxT, segments_BxT, *, train: bool = False):
    c = self.cfg
    bert = BERTEncoder(c, name='bert')
    h_BxTxD, pooled_BxD = bert(tokens_BxT, segments_BxT, train=train)
    h_BxTxD = ACTIVATIONS[c.act](nn.Dense(c.D, dtype=c.dtype, name='mlm_dense')(h_BxTxD))
    h_BxTxD = nn.LayerNorm(epsilon=c.eps, dtype=c.dtype, name='mlm_ln')(h_BxTxD)
    mlm_bias = self.param('mlm_bias', nn.initializers.zeros, (c.V,), jnp.float32)
    mlm_logits_BxTxV = bert.attend(h_BxTxD) + mlm_bias
    nsp_logits_Bx2 = nn.Dense(2, dtype=c.dtype, name='nsp')(pooled_BxD).astype(jnp.float32)
    return mlm_logits_BxTxV, nsp_logits_Bx2


class BERTClassifier(nn.Module):
  """(tokens_BxT, segments_BxT) -> logits_BxC (float32): a linear head on the pooled [CLS] vector
  (pool='cls') or on the mean of the last layer over the real tokens (pool='mean')."""
  cfg: BERTConfig

  @nn.compact
  def __call__(self, tokens_BxT, segments_BxT, *, train: bool = False):
    c = self.cfg
    h_BxTxD, pooled_BxD = BERTEncoder(c, name='bert')(tokens_BxT, segments_BxT, train=train)
    if c.pool == 'mean':
      real_BxTx1 = (tokens_BxT != PAD)[..., None]
      pooled_BxD = (h_BxTxD * real_BxTx1).sum(1) / jnp.maximum(real_BxTx1.sum(1), 1)
    elif c.pool != 'cls':
      raise ValueError(f'Unknown pool {c.pool!r}: choose cls or mean.')
    pooled_BxD = nn.Dropout(c.dropout, deterministic=not train)(pooled_BxD)
    return nn.Dense(c.C, dtype=c.dtype, kernel_init=nn.initializers.normal(0.02),
                    name='classifier')(pooled_BxD).astype(jnp.float32)


def _build(m, data, dtype: Any) -> nn.Module:
  c = BERTConfig(V=data.vocab_size, L=m.get('positions', 0) or data.seq_len, D=m.width,
                 N=m.layers, H=m.heads, F=m.ffn or 4 * m.width,
                 C=data.meta.get('num_classes', 2), pool=m.pool, dropout=m.dropout,
                 act=m.get('activation', 'gelu'), eps=m.get('norm_eps', 1e-6), dtype=dtype)
  # The encoder is the submodule 'bert' in both, so train.init_from moves it from pre-training to
  # fine-tuning.
  return BERTPretrain(c) if data.kind == 'mlm' else BERTClassifier(c)


def _check(config) -> None:
  m = config.model
  entry.check_heads(m)
  entry.check_pretrained_fields(config)
  entry.check(m.pool in ('cls', 'mean'),
              f'config.model.pool={m.pool!r} is not a pooling: choose cls or mean')


def _flops(m, data) -> float:
  """Attention over T keys in each block (4 T D); pre-training's tied output layer (2 V D)."""
  out = 2.0 * data.vocab_size * m.width if data.kind == 'mlm' else 0.0
  return m.layers * 4.0 * data.seq_len * m.width + out


ENTRIES = {'bert': entry.Entry(_build, kinds=('mlm', 'classify'), check=_check,
                               tie_embeddings='always', flops=_flops,
                               width_multiple=entry.heads_multiple)}
