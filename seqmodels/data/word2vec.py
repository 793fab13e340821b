"""word2vec training pairs from running text (data.name='word2vec'): Mikolov et al. (2013).

A row is one position of the training text, its center word, with the 2W context slots around it
and K noise words: {center [b], context [b, 2W], weights [b, 2W], negatives [b, K]}.
The recipe is word2vec.c's and gensim's:
- words seen fewer than data.min_count times are dropped from the text (not made '<unk>'), and a
  line is a sentence: no context crosses a newline;
- frequent-word subsampling: each epoch keeps an occurrence of a word of count c with probability
  (sqrt(c / t) + 1) * t / c, t = data.subsample * (training words) (gensim's `sample`), and the
  window is read over the kept words;
- a dynamic window: a center's window is W - r words each side, r uniform in [0, W);
- noise words drawn from the unigram distribution to the power data.ns_exponent (0.75), K per
  center, which its window's pairs share (Ji et al. 2016, "Parallelizing Word2Vec in Shared and
  Distributed Memory": the pairs of a window become one matrix product; gensim draws K per pair).
Every random draw is a hash of (seed, epoch or stream row, slot), so the batch of a step is the
same under resume and any process count (core's exactness contract). Validation rows keep every
word, the whole window, and fixed noise.
"""

import threading

import ml_collections
import numpy as np

from seqmodels import errors
from seqmodels.data import core, text, tokenizers

_SALT_KEEP, _SALT_WINDOW, _SALT_NOISE = 1, 2, 3
_EVAL_SEED = 0  # validation's noise words: the same for every run, so runs compare
NOISE_TABLE = 1 << 22


def uniform(*keys) -> np.ndarray:
  """Floats in [0, 1) from a splitmix64 hash of the (broadcast) integer keys: counter-based, so any
  row's draws are computed alone."""
  x = np.zeros(np.broadcast_shapes(*(np.shape(k) for k in keys)), np.uint64)
  with np.errstate(over='ignore'):
    for k in keys:
      x = (x ^ np.asarray(k, np.uint64)) * np.uint64(0x9E3779B97F4A7C15)
      x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
      x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
      x = x ^ (x >> np.uint64(31))
  return (x >> np.uint64(11)).astype(np.float64) * 2.0**-53


def noise_distribution(counts_V: np.ndarray, exponent: float = 0.75) -> np.ndarray:
  """P(w) = c_w^exponent / sum_v c_v^exponent (word2vec's unigram^0.75 table, gensim's
  cum_table)."""
  p_V = np.asarray(counts_V, np.float64) ** exponent * (np.asarray(counts_V) > 0)
  return p_V / p_V.sum()


def noise_table(noise_V: np.ndarray, size: int = NOISE_TABLE) -> np.ndarray:
  """word2vec.c's unigram table: word w fills about P(w) * size of its `size` slots, so a uniform
  u in [0, 1) draws word table[floor(u * size)] (a lookup, where a search of the cumulative
  distribution is 20x slower); each P(w) is off by less than 1 / size."""
  edges = np.round(np.cumsum(noise_V) * size).astype(np.int64)
  edges[-1] = size
  return np.repeat(np.arange(len(noise_V), dtype=np.int32), np.diff(edges, prepend=0))


def keep_probability(counts_V: np.ndarray, sample: float) -> np.ndarray:
  """The probability an occurrence of each word survives subsampling: min(1, (sqrt(c / t) + 1) *
  t / c), t = sample * total count (gensim's formula; sample 0 keeps every word)."""
  counts_V = np.asarray(counts_V, np.float64)
  if sample <= 0:
    return np.ones_like(counts_V)
  t = sample * counts_V.sum()
  with np.errstate(divide='ignore', invalid='ignore'):
    p = (np.sqrt(counts_V / t) + 1) * t / counts_V
  return np.where(counts_V > 0, np.minimum(p, 1.0), 0.0)


class Pairs:
  """A split's text as word2vec rows: words [N] and their line numbers [N], one row per word."""

  def __init__(self, words_N: np.ndarray, lines_N: np.ndarray, keep_V: np.ndarray,
               noise_V: np.ndarray, window: int, negatives: int):
    self.words_N, self.lines_N, self.keep_V = words_N, lines_N, keep_V
    self.noise_table = noise_table(noise_V)
    self.window, self.negatives = window, negatives
    self._lock = threading.Lock()
    self._epochs: dict[int, tuple[np.ndarray, np.ndarray]] = {}

  def _kept(self, seed: int, epoch: int) -> tuple[np.ndarray, np.ndarray]:
    """(positions of the words kept by this epoch's subsampling [M], rank of each position among
    them [N]); prefetch threads share it."""
    with self._lock:
      if epoch not in self._epochs:
        if len(self._epochs) >= 2:
          self._epochs.pop(min(self._epochs))
        n = len(self.words_N)
        draw = uniform(seed, epoch, _SALT_KEEP, np.arange(n))
        kept = draw < self.keep_V[self.words_N]
        self._epochs[epoch] = np.flatnonzero(kept), np.cumsum(kept) - 1
      return self._epochs[epoch]

  def rows(self, positions_b: np.ndarray, stream_rows_b: np.ndarray, seed: int, epochs_b,
           train: bool) -> core.Batch:
    """The rows of these positions; `stream_rows_b` keys the noise draws, `epochs_b` the
    subsampling."""
    W, K = self.window, self.negatives
    b = len(positions_b)
    offsets_C = np.concatenate([np.arange(-W, 0), np.arange(1, W + 1)])
    context_bxC = np.zeros((b, 2 * W), np.int32)
    weights_bxC = np.zeros((b, 2 * W), np.float32)
    for epoch in np.unique(epochs_b):
      rows = np.flatnonzero(epochs_b == epoch)
      p_r = positions_b[rows]
      if train:
        kept_M, rank_N = self._kept(seed, int(epoch))
        center_kept_r = kept_M[np.minimum(rank_N[p_r], len(kept_M) - 1)] == p_r
        reach_r = W - np.floor(uniform(seed, epoch, _SALT_WINDOW, p_r) * W).astype(np.int64)
      else:
        kept_M, rank_N = np.arange(len(self.words_N)), np.arange(len(self.words_N))
        center_kept_r, reach_r = np.ones(len(rows), bool), np.full(len(rows), W)
      neighbour_rxC = rank_N[p_r][:, None] + offsets_C
      inside_rxC = (neighbour_rxC >= 0) & (neighbour_rxC < len(kept_M))
      at_rxC = kept_M[np.clip(neighbour_rxC, 0, max(len(kept_M) - 1, 0))]
      real_rxC = (inside_rxC & (np.abs(offsets_C) <= reach_r[:, None]) & center_kept_r[:, None]
                  & (self.lines_N[at_rxC] == self.lines_N[p_r][:, None]))
      context_bxC[rows] = np.where(real_rxC, self.words_N[at_rxC], 0)
      weights_bxC[rows] = real_rxC
    draws_bxK = uniform(seed, _SALT_NOISE, stream_rows_b[:, None], np.arange(K)[None])
    negatives_bxK = self.noise_table[(draws_bxK * len(self.noise_table)).astype(np.int64)]
    return {'center': self.words_N[positions_b].astype(np.int32), 'context': context_bxC,
            'weights': weights_bxC, 'negatives': negatives_bxK}


def _word_config(data_cfg):
  """data_cfg with the word tokenizer: the dataset is local text read as words."""
  return ml_collections.ConfigDict({**data_cfg.to_dict(), 'tokenizer': 'word'})


def _prepare(data_cfg, directory: str) -> None:
  text.prepare_text(_word_config(data_cfg), directory)


def _words_and_lines(ids_N: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """The ids of vocabulary words (not '<unk>' 0 nor '<eos>' 1) and the line each one is on."""
  lines_N = np.cumsum(ids_N == 1)
  real = ids_N > 1
  return ids_N[real], lines_N[real]


def _load(data_cfg, directory: str) -> core.Data:
  d = data_cfg
  ids, tokenizer, _ = text.load_ids(_word_config(d), directory)
  assert isinstance(tokenizer, tokenizers.WordTokenizer)
  words = {split: _words_and_lines(split_ids) for split, split_ids in ids.items()}
  train_N, train_lines_N = words['train']
  counts_V = np.bincount(train_N, minlength=tokenizer.vocab_size)
  longest = int(np.bincount(train_lines_N).max()) if len(train_N) else 0
  if longest <= d.window:
    raise errors.DataError(
        f'config.data.path={d.path!r}: after config.data.min_count={d.min_count} its longest '
        f'training line has {longest} words, no more than config.data.window={d.window}: lower '
        'min_count or window, or use more text')
  for split, (split_N, _) in words.items():
    if len(split_N) == 0:
      raise errors.DataError(f'config.data.path={d.path!r}: its {split} split has no word of the '
                             'training vocabulary: use more text')
  noise_V = noise_distribution(counts_V, d.ns_exponent)
  keep_V = keep_probability(counts_V, d.subsample)
  pairs = {split: Pairs(split_N, lines_N, keep_V, noise_V, d.window, d.negatives)
           for split, (split_N, lines_N) in words.items()}
  train = pairs['train']
  splits = {'train': core.Examples(len(train_N), lambda i: {'position': i})}
  for split, split_pairs in pairs.items():
    if split != 'train':
      splits[split] = core.Examples(
          len(split_pairs.words_N),
          lambda i, s=split_pairs: s.rows(i, i, _EVAL_SEED, np.zeros(len(i), int), train=False))

  def augment(batch: core.Batch, rows_b: np.ndarray, seed: int) -> core.Batch:
    return train.rows(batch['position'], rows_b, seed, rows_b // len(train_N), train=True)

  meta = {'words': tokenizer.words, 'counts': counts_V, 'window': d.window,
          'negatives': d.negatives}
  return core.Data('word2vec', tokenizer.vocab_size, 1, splits, tokenizer.decode,
                   tokenizer.encode, meta=meta, augment=augment)


def _check(config) -> None:
  """The text and the word2vec sampling fields."""
  d = config.data
  core.check_positive(d, 'window', 'negatives')
  core.check(d.subsample >= 0, f'config.data.subsample={d.subsample!r} must be >= 0 (0 keeps every '
             'word; word2vec uses 1e-3 to 1e-5)')
  core.check(d.ns_exponent > 0, f'config.data.ns_exponent={d.ns_exponent!r} must be > 0 (0.75 is '
             "word2vec's)")
  core.check(d.get('tokenizer', 'auto') in ('auto', 'word'), f'config.data.tokenizer='
             f"{d.tokenizer!r}: word2vec learns a vector per word: leave it 'auto' (words)")
  core.check_no_byte_level(d)
  text.DATASETS['text'].check(config)


DATASETS = {
    'word2vec': core.Dataset('word2vec', _prepare, _load, _check,
                             local_files=lambda data_cfg: core.existing_files(data_cfg.path),
                             tokenizer_name=lambda data_cfg: 'word', text=False),
}
