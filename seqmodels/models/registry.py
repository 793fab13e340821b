"""Model registry: config.model.name -> its family's entry (seqmodels/models/entry.py), collected
here.

Adding a model is one module ending with `ENTRIES` and one line below. This module answers, once for
every caller, which objective a model trains with, which module a config builds, and in which dtype
it computes.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from seqmodels.errors import DataError
from seqmodels.layers.recurrent import default_unroll
from seqmodels.models import (bert, elmo, gpt, lm, ngram, rnn_classifier, rnn_lm, rnn_regressor,
                              seq2seq, transformer, word2vec)
from seqmodels.models.entry import Entry

MODELS: dict[str, Entry] = {
    **rnn_lm.ENTRIES,          # rnn, lstm, gru, mingru, minlstm (and their regressors)
    **rnn_regressor.ENTRIES,   # transformer_regressor
    **ngram.ENTRIES,
    **gpt.ENTRIES,
    **lm.ENTRIES,              # the backbone of sequence mixers
    **seq2seq.ENTRIES,         # seq2seq_rnn, seq2seq_lstm, seq2seq_gru
    **transformer.ENTRIES,
    **bert.ENTRIES,
    **rnn_classifier.ENTRIES,  # lstm_classifier
    **elmo.ENTRIES,            # elmo, elmo_classifier
    **word2vec.ENTRIES,        # skipgram, cbow
}

DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


def objective(model_name: str, data_kind: str) -> str:
  """The objective (seqmodels.train.steps.OBJECTIVES) a model trains with on data of `data_kind`."""
  return MODELS[model_name].objective or data_kind


def compute_dtype(name: str) -> jnp.dtype:
  """config.train.dtype as a dtype; 'auto' is bfloat16 on GPU/TPU (DESIGN.md) and float32 on CPU,
  where it is slower (the 4 x 128 GPT step: 44.8 ms in bfloat16, 32.1 ms in float32; bench/gpt.py
  --recipe=step)."""
  if name == 'auto':
    name = 'float32' if jax.default_backend() == 'cpu' else 'bfloat16'
  return jnp.dtype(DTYPES[name])


def build(model_cfg, data, dtype: Any) -> nn.Module:
  """The model named by `model_cfg.name`, sized by its fields, for `data` (vocab_size, seq_len,
  kind, meta).

  model.unroll = 0 (auto) becomes `default_unroll()` for this platform; a speed knob only, the
  function is the same.
  """
  if model_cfg.get('unroll', 1) == 0:
    model_cfg = model_cfg.copy_and_resolve_references()
    model_cfg.unroll = default_unroll()
  return MODELS[model_cfg.name].build(model_cfg, data, dtype)


def check_vocab(model_cfg, data) -> None:
  """A DataError unless `data` has the vocabulary the weights were made for
  (config.model.vocab_size, set by an imported model; 0: any)."""
  vocab = model_cfg.get('vocab_size', 0)
  if vocab and vocab != data.vocab_size:
    raise DataError(f'the data has a vocabulary of {data.vocab_size} tokens, the model was made '
                    f'for config.model.vocab_size={vocab}: use the tokenizer it came with '
                    "(config.data.tokenizer='hf:DIR'), or set vocab_size to 0 for a new model")
