"""Model registry: config.model.name -> how to build it and which task kinds it can train on."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn

from seqmodels.layers.recurrent import default_recurrence, default_unroll
from seqmodels.models.bert import BERTClassifier, BERTConfig, BERTPretrain
from seqmodels.models.elmo import ELMo, ELMoClassifier, ELMoConfig
from seqmodels.models.gpt import GPT, GPTConfig
from seqmodels.models.rnn_classifier import RNNClassifier, RNNClassifierConfig
from seqmodels.models.transformer import Transformer, TransformerConfig
from seqmodels.models.rnn_lm import RNNLM, RNNLMConfig
from seqmodels.models.rnn_regressor import (RNNRegressor, RNNRegressorConfig, TransformerRegressor,
                                            TransformerRegressorConfig)
from seqmodels.models.seq2seq import Seq2Seq, Seq2SeqConfig


@dataclasses.dataclass(frozen=True)
class Entry:
  build: Callable[..., nn.Module]  # (model_cfg, data, dtype) -> module; data gives vocab_size, seq_len, ...
  kinds: tuple[str, ...]           # task kinds (seqmodels.train.steps.OBJECTIVES) the module's outputs serve
  trained_by: str = 'gradient'     # 'counting': fitted in one pass by seqmodels/train/count.py, no module
  objective: str = ''              # the Objective it trains with when not its data's kind ('bilm': ELMo on lm data)


def _rnn_lm(cell: str) -> Callable[..., nn.Module]:
  def build(m, data, dtype: Any) -> nn.Module:
    return RNNLM(RNNLMConfig(V=data.vocab_size, cell=cell, E=m.embed or m.width, H=m.width, N=m.layers,
                             dropout=m.dropout, forget_bias=m.forget_bias, unroll=m.unroll,
                             parallel_scan=_parallel_scan(m), recurrent_init_scale=m.recurrent_init_scale,
                             recurrence=_recurrence(m), tie=m.get('tie_embeddings', False), dtype=dtype))
  return build


def _recurrent(cell: str) -> Callable[..., nn.Module]:
  """A recurrent LM for token tasks; a many-to-one regressor for 'regression' tasks (the adding problem)."""
  lm = _rnn_lm(cell)

  def build(m, data, dtype: Any) -> nn.Module:
    if getattr(data, 'kind', 'lm') != 'regression':
      return lm(m, data, dtype)
    return RNNRegressor(RNNRegressorConfig(cell=cell, H=m.width, N=m.layers, dropout=m.dropout,
                                           forget_bias=m.forget_bias, recurrent_init_scale=m.recurrent_init_scale,
                                           unroll=m.unroll, parallel_scan=_parallel_scan(m),
                                           recurrence=_recurrence(m), dtype=dtype))
  return build


def _transformer_regressor(m, data, dtype: Any) -> nn.Module:
  return TransformerRegressor(TransformerRegressorConfig(L=data.seq_len, D=m.width, N=m.layers, H=m.heads,
                                                         F=m.ffn or 4 * m.width, dropout=m.dropout, dtype=dtype))


def _counted(m, data, dtype: Any) -> nn.Module:
  raise ValueError(f'model {m.name!r} is fitted by counting, not built as a module: '
                   'seqmodels.train.count.fit_and_evaluate runs it')


def _gpt(m, data, dtype: Any) -> nn.Module:
  return GPT(GPTConfig(V=data.vocab_size, L=data.seq_len, D=m.width, N=m.layers, H=m.heads,
                       F=m.ffn or 4 * m.width, dropout=m.dropout, dtype=dtype))


def _bert(m, data, dtype: Any) -> nn.Module:
  c = BERTConfig(V=data.vocab_size, L=data.seq_len, D=m.width, N=m.layers, H=m.heads, F=m.ffn or 4 * m.width,
                 C=data.meta.get('num_classes', 2), pool=m.pool, dropout=m.dropout, dtype=dtype)
  # The encoder is the submodule 'bert' in both, so train.init_from moves it from pre-training to fine-tuning.
  return BERTPretrain(c) if data.kind == 'mlm' else BERTClassifier(c)


def one_vocabulary(meta) -> bool:
  """Whether translation data has one vocabulary for both sides: source id i and target id i are the same piece
  for every i (data.shared_vocab, or byte tokens), not merely two vocabularies of one size."""
  src, tgt = meta.get('src_tokenizer'), meta.get('tgt_tokenizer')
  if src is None or tgt is None:
    return 'src_vocab_size' not in meta
  return src is tgt or (src.vocab_size == tgt.vocab_size
                        and src.pieces(range(src.vocab_size)) == tgt.pieces(range(tgt.vocab_size)))


def _transformer(m, data, dtype: Any) -> nn.Module:
  V_src = data.meta.get('src_vocab_size', data.vocab_size)
  # 2 * seq_len positions: decoding may run past the training length (config.decode.max_len).
  return Transformer(TransformerConfig(V=data.vocab_size, V_src=V_src, L=2 * data.seq_len, D=m.width, N=m.layers,
                                       H=m.heads, F=m.ffn or 4 * m.width, dropout=m.dropout, pre_ln=m.pre_ln,
                                       share_embeddings=m.share_embeddings and one_vocabulary(data.meta),
                                       dtype=dtype))


def _rnn_classifier(cell: str) -> Callable[..., nn.Module]:
  def build(m, data, dtype: Any) -> nn.Module:
    return RNNClassifier(RNNClassifierConfig(V=data.vocab_size, C=data.meta.get('num_classes', 2), cell=cell,
                                             E=m.embed or m.width, H=m.width, N=m.layers, dropout=m.dropout,
                                             forget_bias=m.forget_bias, unroll=m.unroll,
                                             parallel_scan=_parallel_scan(m), recurrence=_recurrence(m),
                                             dtype=dtype))
  return build


def _elmo(m, data, dtype: Any) -> nn.Module:
  c = ELMoConfig(V=data.vocab_size, cell=m.cell, H=m.width, N=m.layers, C=data.meta.get('num_classes', 2),
                 dropout=m.dropout, forget_bias=m.forget_bias, unroll=m.unroll, parallel_scan=_parallel_scan(m),
                 recurrence=_recurrence(m), dtype=dtype)
  # The biLM is the submodule 'elmo' in both, so train.init_from moves it from pre-training to classification.
  return ELMoClassifier(c) if data.kind == 'classify' else ELMo(c)


def _seq2seq(cell: str) -> Callable[..., nn.Module]:
  def build(m, data, dtype: Any) -> nn.Module:
    meta = getattr(data, 'meta', {})
    return Seq2Seq(Seq2SeqConfig(
        V_src=meta.get('src_vocab_size', data.vocab_size), V_tgt=data.vocab_size, cell=cell, E=m.embed or m.width,
        H=m.width, N=m.layers, bidirectional=m.encoder_bidirectional, attention=m.attention, A=m.attention_width,
        feed_context=m.feed_context, teacher_forcing=m.teacher_forcing, dropout=m.dropout,
        forget_bias=m.forget_bias, unroll=m.unroll, parallel_scan=_parallel_scan(m), recurrence=_recurrence(m),
        dtype=dtype))
  return build


MODELS: dict[str, Entry] = {
    'rnn': Entry(_recurrent('rnn'), kinds=('lm', 'regression')),
    'lstm': Entry(_recurrent('lstm'), kinds=('lm', 'regression')),
    'gru': Entry(_recurrent('gru'), kinds=('lm', 'regression')),
    'mingru': Entry(_recurrent('mingru'), kinds=('lm', 'regression')),
    'minlstm': Entry(_recurrent('minlstm'), kinds=('lm', 'regression')),
    'transformer_regressor': Entry(_transformer_regressor, kinds=('regression',)),
    'ngram': Entry(_counted, kinds=('lm',), trained_by='counting'),  # seqmodels/models/ngram.py
    'gpt': Entry(_gpt, kinds=('lm',)),
    'seq2seq_rnn': Entry(_seq2seq('rnn'), kinds=('seq2seq',)),
    'seq2seq_lstm': Entry(_seq2seq('lstm'), kinds=('seq2seq',)),
    'seq2seq_gru': Entry(_seq2seq('gru'), kinds=('seq2seq',)),
    'transformer': Entry(_transformer, kinds=('seq2seq',)),
    'bert': Entry(_bert, kinds=('mlm', 'classify')),
    'lstm_classifier': Entry(_rnn_classifier('lstm'), kinds=('classify',)),
    'elmo': Entry(_elmo, kinds=('lm',), objective='bilm'),
    'elmo_classifier': Entry(_elmo, kinds=('classify',)),
}


def _parallel_scan(m) -> bool | None:
  """config.model.min_scan (mingru/minlstm training path) as the layers take it: True, False or None (auto)."""
  return {'auto': None, 'parallel': True, 'sequential': False}[m.get('min_scan', 'auto')]


def _recurrence(m) -> str:
  """config.model.recurrence (how rnn/lstm/gru layers run) as the layers take it; 'auto': `default_recurrence()`."""
  r = m.get('recurrence', 'auto')
  return default_recurrence() if r == 'auto' else r


def build(model_cfg, data, dtype: Any) -> nn.Module:
  """The model named by `model_cfg.name`, sized by its fields, for `data` (vocab_size, seq_len, ...).

  model.unroll = 0 (auto) becomes `default_unroll()` for this platform; a speed knob only, the function is the same.
  """
  if model_cfg.get('unroll', 1) == 0:
    model_cfg = model_cfg.copy_and_resolve_references()
    model_cfg.unroll = default_unroll()
  return MODELS[model_cfg.name].build(model_cfg, data, dtype)
