"""Pre-trained word vectors as a word-level model's first embedding (model.pretrained_vectors).

The file (any format of seqmodels/data/vectors.py, or a word2vec run's workdir) gives the rows of
the words it has; the others keep the model's own initialisation. A word is matched as it is spelt,
else lower-cased (GloVe's files are lower-case), and '<eos>' as word2vec.c's '</s>'. The coverage
(how many of the vocabulary's words the file had) is logged and recorded in summary.json.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import jax
import numpy as np

from seqmodels.data import registry as datasets
from seqmodels.data import tokenizers, vectors
from seqmodels.errors import check
from seqmodels.models import registry

_TOKENS = {'char': 'characters', 'byte': 'UTF-8 bytes', 'bpe': 'BPE subword pieces',
           'unigram': 'unigram subword pieces'}
_ALIASES = {tokenizers.EOS_WORD: '</s>'}  # word2vec.c writes a newline as '</s>'


def check_config(config) -> None:
  """config.model.pretrained_vectors: a model with a word embedding, on word tokens, and a file
  (or a word2vec run) that exists."""
  m, d = config.model, config.data
  path = m.get('pretrained_vectors', '')
  if not path:
    return
  entry = registry.MODELS[m.name]
  able = sorted(n for n, e in registry.MODELS.items() if e.embedding)
  check(bool(entry.embedding), f'config.model.pretrained_vectors: model.name={m.name!r} has no '
        'word embedding for them (the seq2seq models, classifiers, BERT and ELMo read bytes or '
        f'subword pieces here; the n-gram counts): use one of {", ".join(able)}, or leave it empty')
  tokens = datasets.tokenizer_name(d)
  check(d.name == 'word2vec' or tokens == 'word',
        f'config.model.pretrained_vectors gives vectors of words, and the tokens of '
        f'config.data.name={d.name!r} are {_TOKENS.get(tokens, "its own symbols, not words")}: '
        f"use word tokens (data.name='text' with data.tokenizer='word'), or leave it empty")
  resolved = vectors.resolve(path)
  check(os.path.isfile(resolved),
        f'config.model.pretrained_vectors={path!r}: {resolved} is not a file: point it at a '
        'word2vec (text or .bin), GloVe or fastText .vec file, or a word2vec run\'s workdir')


def _width_check(path: str, dim: int, width: int, m) -> None:
  check(width == dim, f'config.model.pretrained_vectors={path!r} holds {dim}-dimensional vectors, '
        f'and the embedding of model.name={m.name!r} is {width} wide (config.model.embed='
        f'{m.get("embed", 0)}, width={m.width}): set config.model.embed={dim} (or width, for a '
        'model whose embedding is its width)')


def check_width(config, params) -> None:
  """The vectors are as wide as each embedding table of the model (`params`: its shapes)."""
  m = config.model
  dim = vectors.dimension(m.pretrained_vectors)
  for name in registry.MODELS[m.name].embedding:
    _width_check(m.pretrained_vectors, dim, params[name]['embedding'].shape[1], m)


def initialise(params: dict, words: list[str], path: str, m) -> tuple[dict, dict[str, Any]]:
  """(params with the embedding rows of the words `path` has, the coverage record)."""
  tables = registry.MODELS[m.name].embedding
  wanted = set(words) | {w.lower() for w in words} | set(_ALIASES.values())
  file_words, table_NxD = vectors.read(path, wanted)
  dim = table_NxD.shape[1]
  index = {w: i for i, w in enumerate(file_words)}
  rows_V = np.array([index.get(w, index.get(_ALIASES.get(w, w), -1)) for w in words])
  lower_V = np.array([index.get(w.lower(), -1) for w in words])
  lowered = (rows_V < 0) & (lower_V >= 0)
  rows_V = np.where(lowered, lower_V, rows_V)
  rows_V[[i for i, w in enumerate(words) if w == tokenizers.UNK_WORD]] = -1  # not a word
  found = rows_V >= 0
  new = dict(params)
  for name in tables:
    embedding = params[name]['embedding']
    _width_check(path, dim, embedding.shape[1], m)
    host = np.array(jax.device_get(embedding))
    host[found] = table_NxD[rows_V[found]]
    host = host.astype(embedding.dtype)
    new[name] = {**params[name], 'embedding': jax.device_put(host, embedding.sharding)
                 if isinstance(embedding, jax.Array) else host}
  real = sum(w != tokenizers.UNK_WORD for w in words)
  record = {'file': vectors.resolve(path), 'vocabulary': real, 'found': int(found.sum()),
            'coverage': float(found.sum() / max(real, 1)), 'lower_cased': int(lowered.sum()),
            'tables': list(tables)}
  logging.info('pre-trained vectors from %s: %d of the %d words of the vocabulary (%.1f%%; %d '
               'lower-cased) into %s; the rest keep their initialisation', record['file'],
               record['found'], real, 100 * record['coverage'], record['lower_cased'],
               ', '.join(tables))
  return new, record
