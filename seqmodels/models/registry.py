"""Model registry: config.model.name -> a flax module mapping tokens_BxT to logits_BxTxV."""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn

from seqmodels.models.gpt import GPT, GPTConfig
from seqmodels.models.rnn_lm import RNNLM, RNNLMConfig


def _rnn_lm(cell: str) -> Callable[..., nn.Module]:
  def build(m, V: int, L: int, dtype: Any) -> nn.Module:
    return RNNLM(RNNLMConfig(V=V, cell=cell, E=m.embed or m.width, H=m.width, N=m.layers, dropout=m.dropout,
                             forget_bias=m.forget_bias, unroll=m.unroll, dtype=dtype))
  return build


def _gpt(m, V: int, L: int, dtype: Any) -> nn.Module:
  return GPT(GPTConfig(V=V, L=L, D=m.width, N=m.layers, H=m.heads, F=m.ffn or 4 * m.width, dropout=m.dropout,
                       dtype=dtype))


MODELS: dict[str, Callable[..., nn.Module]] = {
    'rnn': _rnn_lm('rnn'),
    'lstm': _rnn_lm('lstm'),
    'gru': _rnn_lm('gru'),
    'gpt': _gpt,
}


def build(model_cfg, *, vocab_size: int, max_len: int, dtype: Any) -> nn.Module:
  """The model named by `model_cfg.name`, sized by its fields, for a vocabulary and context length."""
  return MODELS[model_cfg.name](model_cfg, vocab_size, max_len, dtype)
