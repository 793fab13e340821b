"""Word vectors after training (a word2vec run writes workdir/vectors.txt) and their intrinsic
evaluations: nearest neighbours, analogies (3CosAdd, Mikolov et al. 2013's questions-words.txt)
and word similarity (Spearman's rho against human scores), with gensim's conventions: words
matched case-insensitively, questions or pairs with a word outside the vocabulary left out (and
counted), candidates limited to the `restrict` most frequent words.
"""

from __future__ import annotations

import os

import jax
import numpy as np

from seqmodels.data import vectors as vectors_lib
from seqmodels.errors import DataError

SPECIALS = 2  # '<unk>' and '<eos>' lead a word vocabulary (data/tokenizers.py): never written


class Vectors:
  """Words (most frequent first) and their unit-normalised vectors, looked up case-insensitively
  (the first, most frequent spelling of a word wins, as gensim's)."""

  def __init__(self, words: list[str], vectors_VxD: np.ndarray, restrict: int = 300_000):
    self.words, self.raw = list(words[:restrict]), np.asarray(vectors_VxD[:restrict], np.float32)
    norms = np.linalg.norm(self.raw, axis=1, keepdims=True)
    self.unit = self.raw / np.maximum(norms, 1e-12)
    self.index: dict[str, int] = {}
    for i, w in enumerate(self.words):
      self.index.setdefault(w.upper(), i)

  @classmethod
  def load(cls, path: str, restrict: int = 300_000) -> 'Vectors':
    return cls(*vectors_lib.read(path), restrict=restrict)

  def ids(self, words) -> list[int | None]:
    return [self.index.get(w.upper()) for w in words]

  def neighbours(self, word: str, k: int = 10) -> list[tuple[str, float]]:
    """The k words of highest cosine similarity to `word` (itself left out); [] if unknown."""
    (i,) = self.ids([word])
    if i is None:
      return []
    cos = self.unit @ self.unit[i]
    cos[i] = -np.inf
    top = np.argsort(-cos)[:k]
    return [(self.words[j], float(cos[j])) for j in top]


def _lines(path: str, what: str) -> list[str]:
  try:
    with open(os.path.expanduser(path), encoding='utf-8') as f:
      return f.read().splitlines()
  except (OSError, UnicodeDecodeError) as e:
    raise DataError(f'the {what} file {path} cannot be read ({e}): point --{what} at a readable '
                    'text file') from e


def analogies(vecs: Vectors, path: str, batch: int = 1024) -> dict:
  """3CosAdd on a questions-words.txt file (': section' lines, then 'a b c d': a is to b as c is to
  d): d must be the argmax of cos(x, b - a + c) over the vocabulary but a, b and c. Accuracy per
  section and in all, over the questions whose four words are known."""
  sections: dict[str, list[list[int]]] = {}
  skipped: dict[str, int] = {}
  name = ''
  for number, line in enumerate(_lines(path, 'analogies'), start=1):
    if line.startswith(':'):
      name = line[1:].strip()
      sections.setdefault(name, [])
      continue
    words = line.split()
    if not words:
      continue
    if len(words) != 4 or not name:
      raise DataError(f'the analogies file {path}: line {number} is not four words under a '
                      "': section' line: write it in the questions-words.txt format")
    ids = vecs.ids(words)
    if None in ids:
      skipped[name] = skipped.get(name, 0) + 1
    else:
      sections[name].append(ids)
  result: dict = {'sections': {}}
  total = correct = 0
  for name, questions in sections.items():
    q_Nx4 = np.asarray(questions, np.int64).reshape(-1, 4)
    hits = 0
    for start in range(0, len(q_Nx4), batch):
      q = q_Nx4[start:start + batch]
      target_NxD = vecs.unit[q[:, 1]] - vecs.unit[q[:, 0]] + vecs.unit[q[:, 2]]
      cos_NxV = target_NxD @ vecs.unit.T
      rows = np.arange(len(q))[:, None]
      cos_NxV[rows, q[:, :3]] = -np.inf
      hits += int((cos_NxV.argmax(1) == q[:, 3]).sum())
    result['sections'][name] = {'accuracy': hits / len(q_Nx4) if len(q_Nx4) else float('nan'),
                                'questions': len(q_Nx4), 'skipped': skipped.get(name, 0)}
    total, correct = total + len(q_Nx4), correct + hits
  result.update(accuracy=correct / total if total else float('nan'), questions=total,
                skipped=sum(skipped.values()))
  return result


def spearman(x, y) -> float:
  """Spearman's rank correlation (average ranks for ties)."""
  def ranks(v):
    v = np.asarray(v, np.float64)
    order = np.argsort(v, kind='stable')
    r = np.empty(len(v))
    r[order] = np.arange(len(v))
    for value in np.unique(v):  # ties share their mean rank
      same = v == value
      r[same] = r[same].mean()
    return r
  rx, ry = ranks(x), ranks(y)
  rx, ry = rx - rx.mean(), ry - ry.mean()
  denominator = np.sqrt((rx**2).sum() * (ry**2).sum())
  return float((rx * ry).sum() / denominator) if denominator else float('nan')


def similarity(vecs: Vectors, path: str) -> dict:
  """Spearman's rho between cosine similarity and the human scores of a TSV of 'word1 word2 score'
  lines ('#' lines are comments), over the pairs of known words."""
  model, human, skipped = [], [], 0
  for number, line in enumerate(_lines(path, 'similarity'), start=1):
    if not line.strip() or line.startswith('#'):
      continue
    fields = line.split('\t') if '\t' in line else line.split()
    try:
      a, b, score = fields[0], fields[1], float(fields[2])
    except (IndexError, ValueError) as e:
      raise DataError(f'the similarity file {path}: line {number} is not two words and a score '
                      '(tab-separated): write it as WordSim-353 or SimLex-999 are') from e
    i, j = vecs.ids([a, b])
    if i is None or j is None:
      skipped += 1
      continue
    model.append(float(vecs.unit[i] @ vecs.unit[j]))
    human.append(score)
  return {'spearman': spearman(model, human) if len(model) > 1 else float('nan'),
          'pairs': len(model), 'skipped': skipped}


def write_vectors(model, step_function, params, data, config, workdir: str) -> dict[str, float]:
  """After a word2vec run: its input vectors (the `embed` table) as workdir/vectors.txt, in
  word2vec's text format, most frequent word first."""
  del model, step_function, config
  words = list(data.meta['words'][SPECIALS:])
  table = np.asarray(jax.device_get(params['embed']['embedding']))[SPECIALS:]
  if jax.process_index() == 0:
    vectors_lib.write_text(os.path.join(workdir, vectors_lib.RUN_VECTORS), words, table)
  return {'vectors': float(len(words))}
