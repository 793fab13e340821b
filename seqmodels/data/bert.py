"""Data for BERT: masked-LM + next-sentence pre-training pairs, and sentence(-pair) classification.

Text is UTF-8 bytes (ByteTokenizer after 4 specials), so every source shares one vocabulary and a
pre-trained encoder fits any classification task. Rows are `[CLS] A [SEP] (B [SEP]) [PAD]...`,
segment 0 for A, 1 for B.

data.name='mlm': sentence pairs from the lines of a local text file (data.path; the first 90% of its
lines train, the rest validate), of one file per split (a data.path with '{split}': train,
validation, test optional) or of TFDS `lm1b` / `wiki40b/en` (data.source); B is the next line half
of the time (is_next=1), a random line of the same split otherwise; fixed per example at load.
Masking (Devlin et al. 2019): 15% of the real tokens are chosen, of which 80% become [MASK], 10% a
random byte and 10% stay; it is redrawn for every training row from (seed, global row of the
stream), so the exactness contract of core.Data holds; validation masks are fixed per example.

data.name='classify': (text[, text_b], label) rows, or the columns a header row names (GLUE's own
files), from a local TSV/CSV (data.path: one, split 90/10 at random, or one per split with
'{split}': 'SST-2/{split}.tsv' reads train.tsv and dev.tsv), TFDS `glue/sst2` or `imdb_reviews`
(data.source), or a local task on the lines of data.path: is a line real (label 1) or corrupted
(label 0)? data.source='shuffled' reorders its inner words (first and last kept, so case and final
punctuation do not tell): telling takes knowledge of word order. 'scrambled' reorders the inner
letters of every word of 4 or more letters ("Kate" -> "Ktae"; the letters a line holds do not
change): telling takes knowledge of spelling. Pre-training on the same text can give either; its
validation lines are those that pre-training on data.path holds out.
"""

from __future__ import annotations

import csv
import os
from typing import Sequence

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from seqmodels import errors
from seqmodels.data import builders, core, tokenizers

PAD, CLS, SEP, MASK = 0, 1, 2, 3
NUM_SPECIALS = 4
TOKENIZER = tokenizers.ByteTokenizer(offset=NUM_SPECIALS)
VOCAB_SIZE = TOKENIZER.vocab_size
MLM_SOURCES = ('', 'lm1b', 'wiki40b/en')
CLASSIFY_SOURCES = ('', 'shuffled', 'scrambled', 'glue/sst2', 'imdb_reviews')
TRAIN_FRACTION = 0.9
_EVAL_SEED = 2**31 - 1  # validation masks: fixed, and independent of the training seed
_NAMES = {PAD: '', CLS: '[CLS] ', SEP: ' [SEP] ', MASK: '[MASK]'}


def encode_pair(a_ids: np.ndarray, b_ids: np.ndarray | None,
                seq_len: int) -> tuple[np.ndarray, np.ndarray]:
  """`[CLS] a [SEP] (b [SEP])` padded to seq_len: (tokens_T, segments_T); the longer sentence is cut
  first."""
  budget = seq_len - (3 if b_ids is not None else 2)
  la, lb = len(a_ids), 0 if b_ids is None else len(b_ids)
  if la + lb > budget:
    half = budget // 2
    if b_ids is None:
      la = budget
    elif la <= half:
      lb = budget - la
    elif lb <= half:
      la = budget - lb
    else:
      la, lb = budget - half, half
  pieces = [[CLS], a_ids[:la], [SEP]] + ([] if b_ids is None else [b_ids[:lb], [SEP]])
  tokens = np.concatenate(pieces).astype(np.int32)
  tokens_T, segments_T = np.zeros(seq_len, np.int32), np.zeros(seq_len, np.int32)
  tokens_T[:len(tokens)] = tokens
  if b_ids is not None:
    segments_T[la + 2:len(tokens)] = 1
  return tokens_T, segments_T


def nsp_pairs(lines: Sequence[str], seq_len: int, seed: int) -> dict[str, np.ndarray]:
  """One pair per line i: (line i, line i+1) with is_next=1 half of the time, else (line i, a random
  line)."""
  ids = [TOKENIZER.encode(line) for line in lines]
  n = len(ids)
  rng = np.random.default_rng([seed, n])
  is_next_N = (rng.random(n) < 0.5) & (np.arange(n) < n - 1)
  other_N = rng.integers(0, max(n - 1, 1), n)
  # never the true next line
  other_N = np.where(other_N >= np.arange(n) + 1, other_N + 1, other_N) % n
  b_index_N = np.where(is_next_N, np.arange(n) + 1, other_N)
  pairs = [encode_pair(ids[i], ids[b_index_N[i]], seq_len) for i in range(n)]
  return {'tokens': np.stack([p[0] for p in pairs]), 'segments': np.stack([p[1] for p in pairs]),
          'next': is_next_N.astype(np.int32), 'weight': np.ones(n, np.float32)}


def mask_tokens(tokens_BxT: np.ndarray, keys_B: np.ndarray, seed: int,
                mask_prob: float = 0.15) -> dict:
  """BERT's masking of each row, drawn from numpy's generator seeded by (seed, key of the row).

  Chooses round(mask_prob * real tokens) (at least 1) of the non-special tokens; of those, 80% ->
  [MASK], 10% -> a random byte, 10% unchanged. Returns inputs_BxT, targets_BxT (the original tokens)
  and weights_BxT (1 at the chosen positions).
  """
  B, T = tokens_BxT.shape
  inputs_BxT = tokens_BxT.copy()
  weights_BxT = np.zeros((B, T), np.float32)
  for b in range(B):
    rng = np.random.default_rng([seed, int(keys_B[b])])
    u_T, action_T, random_T = (rng.random(T), rng.random(T),
                               rng.integers(NUM_SPECIALS, VOCAB_SIZE, T))
    candidates_T = tokens_BxT[b] >= NUM_SPECIALS
    n = int(candidates_T.sum())
    if n == 0:
      continue
    k = max(1, int(round(mask_prob * n)))
    chosen_T = np.zeros(T, bool)
    chosen_T[np.argsort(np.where(candidates_T, u_T, np.inf))[:k]] = True
    inputs_BxT[b] = np.where(chosen_T & (action_T < 0.8), MASK, inputs_BxT[b])
    inputs_BxT[b] = np.where(chosen_T & (action_T >= 0.8) & (action_T < 0.9), random_T,
                             inputs_BxT[b])
    weights_BxT[b] = chosen_T
  return {'inputs': inputs_BxT, 'targets': tokens_BxT.astype(np.int32), 'weights': weights_BxT}


def _masked(batch: dict, keys_B: np.ndarray, seed: int, mask_prob: float) -> dict:
  out = {k: v for k, v in batch.items() if k != 'tokens'}
  out.update(mask_tokens(batch['tokens'], keys_B, seed, mask_prob))
  return out


def _shuffle_inner_words(words: list[str], rng) -> list[str] | None:
  """The inner words in another order, the first and last in place; None when no other order reads
  differently."""
  inner = words[1:-1]
  if len(words) < 4 or len(set(inner)) < 2:
    return None
  while (shuffled := [inner[i] for i in rng.permutation(len(inner))]) == inner:
    pass
  return [words[0], *shuffled, words[-1]]


def _scramble_words(words: list[str], rng) -> list[str] | None:
  """Every word of >= 4 letters (letters only) with its inner letters reordered; None when the line
  has none."""
  candidates = [i for i, w in enumerate(words) if len(w) >= 4 and w.isascii() and w.isalpha() and
                len(set(w[1:-1])) > 1]
  if not candidates:
    return None
  words = list(words)
  for i in candidates:
    inner = words[i][1:-1]
    while (scrambled := ''.join(inner[j] for j in rng.permutation(len(inner)))) == inner:
      pass
    words[i] = words[i][0] + scrambled + words[i][-1]
  return words


# data.source -> how a line is corrupted (label 0). The first and last word (shuffled) or letter
# (scrambled) stay in place: a line's capital first letter and final punctuation would otherwise
# give it away (on tinyshakespeare, "a fully word-shuffled line starts with a lowercase letter"
# alone is 86% right).
CORRUPTIONS = {'shuffled': _shuffle_inner_words, 'scrambled': _scramble_words}
_CORRUPTIBLE = {'shuffled': '4 or more words, two of its inner ones different',
                'scrambled': 'a word of 4 or more letters, two of its inner ones different'}


def corrupted_task(lines: Sequence[str], seed: int, source: str) -> tuple[list[str], np.ndarray]:
  """Each line that CORRUPTIONS[source] can corrupt: kept (label 1) or corrupted (label 0),
  50/50."""
  corrupt = CORRUPTIONS[source]
  rng = np.random.default_rng([seed, 7])
  texts, labels = [], []
  for line in lines:
    words = line.split()
    corrupted = corrupt(words, rng)
    if corrupted is None:
      continue
    label = int(rng.random() < 0.5)
    texts.append(' '.join(words if label else corrupted))
    labels.append(label)
  return texts, np.array(labels, np.int32)


# A table's header names its columns. The label is the first column named one of LABEL_COLUMNS; the
# text is the first of TEXT_COLUMNS all of whose names it has (GLUE's files: SST-2, QNLI, RTE, MNLI,
# QQP, MRPC), else every column that is neither the label nor in ID_COLUMNS, if one or two are left.
LABEL_COLUMNS = ('label', 'gold_label', 'labels', 'sentiment', 'class', 'category', 'is_duplicate',
                 'quality')
TEXT_COLUMNS = (('sentence1', 'sentence2'), ('question', 'sentence'), ('question1', 'question2'),
                ('premise', 'hypothesis'), ('#1 string', '#2 string'), ('text', 'text_b'),
                ('text_a', 'text_b'), ('sentence',), ('text',), ('review',))
ID_COLUMNS = ('idx', 'index', 'id', 'qid1', 'qid2', '#1 id', '#2 id', 'promptid', 'pairid', 'genre')
_HEADER_NAMES = {*LABEL_COLUMNS, *(n for names in TEXT_COLUMNS for n in names), *ID_COLUMNS}


def _columns(path: str, header: list[str]) -> tuple[list[int], int | None]:
  """(text column indices, label column index or None) named by a header row."""
  names = [h.strip().lower() for h in header]
  label = next((names.index(n) for n in LABEL_COLUMNS if n in names), None)
  text = next(
      ([names.index(n) for n in group] for group in TEXT_COLUMNS if all(n in names for n in group)),
      None)
  if text is None:
    text = [i for i, n in enumerate(names) if i != label and n not in ID_COLUMNS]
  if not 1 <= len(text) <= 2:
    raise errors.DataError(
        f'{path}: its header ({", ".join(header)}) names no text column, or more than two: '
        "name the text column 'text' (and a second one 'text_b') and the label 'label'")
  return text, label


def read_table(path: str) -> tuple[list[str], list[str] | None, list[str] | None]:
  """(texts, texts_b or None, labels) from a TSV (.tsv) or CSV file of (text[, text_b], label) rows,
  or of columns its header names (LABEL_COLUMNS, TEXT_COLUMNS: GLUE's files as they unpack); labels
  are None when a header names no label column (GLUE's test files). A .tsv is split at every tab, no
  quoting (GLUE's convention: its sentences hold unpaired quotes); a .csv follows RFC 4180 quoting.
  A file that is not such a table is a DataError naming the row."""
  tsv = path.lower().endswith('.tsv')
  kwargs = {'delimiter': '\t', 'quoting': csv.QUOTE_NONE} if tsv else {'delimiter': ','}
  try:
    with open(os.path.expanduser(path), newline='', encoding='utf-8-sig') as f:
      rows = [(n, r) for n, r in enumerate(csv.reader(f, **kwargs), 1) if r]
  except UnicodeDecodeError as e:
    raise builders.not_utf8(path, e) from e
  kind = 'tab' if tsv else 'comma'
  header = bool(rows) and any(h.strip().lower() in _HEADER_NAMES for h in rows[0][1])
  width = len(rows[0][1]) if rows else 0
  text, label = _columns(path, rows.pop(0)[1]) if header else (list(range(width - 1)), width - 1)
  if not rows:
    raise errors.DataError(
        f'{path} has no rows: it needs (text, label) or (text, text_b, label) rows')
  bad = next(((n, r) for n, r in rows if len(r) != width or not (header or width in (2, 3))), None)
  if bad is not None:
    raise errors.DataError(
        f'{path}: row {bad[0]} has {len(bad[1])} {kind}-separated fields; every row must be '
        '(text, label) or (text, text_b, label), or hold the columns of a header row naming '
        'them' + ('' if tsv else ', with fields holding a comma quoted'))
  labels = None if label is None else [r[label].strip() for _, r in rows]
  empty = next((n for (n, _), y in zip(rows, labels or ()) if not y), None)
  if empty is not None:
    raise errors.DataError(f'{path}: row {empty} has an empty label: give every row its label')
  return ([r[text[0]] for _, r in rows], [r[text[1]] for _, r in rows] if len(text) == 2 else None,
          labels)


def label_ids(labels: Sequence[str]) -> tuple[np.ndarray, list[str]]:
  """Integer labels as themselves when they are all 0..C-1, else names in sorted order."""
  names = sorted(set(labels))
  if all(s.isdigit() for s in names):
    names = [str(i) for i in range(max(int(s) for s in names) + 1)]
  index = {s: i for i, s in enumerate(names)}
  return np.array([index[s] for s in labels], np.int32), names


def classification_arrays(texts, texts_b, labels_N, seq_len: int) -> dict[str, np.ndarray]:
  pairs = [encode_pair(TOKENIZER.encode(a),
                       None if texts_b is None else TOKENIZER.encode(texts_b[i]), seq_len)
           for i, a in enumerate(texts)]
  return {'inputs': np.stack([p[0] for p in pairs]), 'segments': np.stack([p[1] for p in pairs]),
          'label': np.asarray(labels_N, np.int32), 'weight': np.ones(len(pairs), np.float32)}


def _rows(arrays: dict[str, np.ndarray], index: np.ndarray) -> dict[str, np.ndarray]:
  return {k: v[index] for k, v in arrays.items()}


def split_lines(path: str) -> dict[str, list[str]]:
  """The non-empty lines of each split: of each file of a path with '{split}' (train, validation,
  test optional), or of one text file, split in order: the first 90% train, the rest validation.
  Pre-training (mlm) and the local classification tasks split a file alike, so no validation line is
  ever seen in pre-training."""
  if '{split}' in path:
    files = builders.split_files(path)
    parts = {split: _lines(file) for split, file in files.items()}
    empty = next((split for split, lines in parts.items() if not lines), None)
    if empty is not None:
      raise errors.DataError(f'the {empty} file {files[empty]} of config.data.path={path!r} holds '
                             'no line of text (only whitespace): fill it, one sentence per line')
    return parts
  lines = _lines(path)
  if len(lines) < 2:
    raise errors.DataError(f'config.data.path={path!r} holds {len(lines)} line(s) of text: its '
                           'first 90% of lines train and the rest validate, which takes at least 2 '
                           'lines: use more text, one sentence '
                           "per line, or one file per split with '{split}'")
  cut = int(len(lines) * TRAIN_FRACTION)
  return {'train': lines[:cut], 'validation': lines[cut:]}


def _lines(path: str) -> list[str]:
  return [line.strip() for line in builders.read_lines(path) if line.strip()]


def _tables(path: str, seq_len: int,
            seed: int) -> tuple[dict[str, dict[str, np.ndarray]], list[str], dict]:
  """({split: classification arrays}, class names, meta) of a TSV/CSV per split ('{split}') or of
  one, shuffled and split 90/10 (a table may be sorted by label). A test file without labels
  (GLUE's) gives no test split."""
  files = builders.split_files(path) if '{split}' in path else {'all': path}
  tables, meta = {}, {}
  for split, file in files.items():
    table = read_table(file)
    if table[2] is not None:
      tables[split] = table
    elif split == 'test':
      meta['no_test'] = f'its test file {file} has no labels'
    else:
      raise errors.DataError(f'{file}: its header names no label column: name it \'label\'')
  _, names = label_ids([y for _, _, labels in tables.values() for y in labels])
  index = {name: i for i, name in enumerate(names)}
  arrays = {split: classification_arrays(texts, texts_b, [index[y] for y in labels], seq_len)
            for split, (texts, texts_b, labels) in tables.items()}
  if 'all' in arrays:
    n = len(arrays['all']['label'])
    if n < 2:
      raise errors.DataError(f'config.data.path={path!r} has {n} row: its rows are shuffled '
                             'and split 90/10 into '
                             "train and validation, which takes at least 2 rows: add rows, or give "
                             "one table per split with '{split}'")
    order, cut = np.random.default_rng([seed, 11]).permutation(n), int(n * TRAIN_FRACTION)
    arrays = {'train': _rows(arrays['all'], order[:cut]),
              'validation': _rows(arrays['all'], order[cut:])}
  return arrays, names, meta


def _check_classes(parts: dict[str, dict[str, np.ndarray]], names: Sequence[str],
                   what: str) -> None:
  """Refuses a train split of fewer than 2 classes (every prediction of its one class would be
  right); warns of each class that other splits hold and train does not (the model can never learn
  to predict it)."""
  trained = set(np.unique(parts['train']['label']).tolist())
  if len(trained) < 2:
    raise errors.DataError(
        f'the train split of {what} holds examples of {len(trained)} class only '
        f'({", ".join(names[i] for i in sorted(trained))}): a classifier needs examples of at '
        'least 2 to learn anything (with one, every prediction is right): add examples of another')
  for split, arrays in parts.items():
    unseen = sorted(set(np.unique(arrays['label']).tolist()) - trained)
    if unseen:
      builders.warn_once('the %s split of %s holds %d examples of label(s) %s that the train split '
                         'never holds: the model cannot learn them, so they count as errors', split,
                         what, int(np.isin(arrays['label'], unseen).sum()),
                         ', '.join(repr(names[i]) for i in unseen))


def _tfds_texts(name: str, split: str, directory: str, limit: int, key: str) -> list[str]:
  source = tfds.data_source(name, split=split, data_dir=directory)
  texts = [source[i][key] for i in range(min(len(source), limit))]
  return [t.decode('utf-8') if isinstance(t, bytes) else str(t) for t in texts]


class GlueSst2(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """GLUE SST-2 as `glue/sst2` (same name, version, features and splits as TFDS's builder), built
  without TensorFlow: TFDS's own glue module imports it."""

  name = 'glue'
  VERSION = tfds.core.Version('2.0.0')
  BUILDER_CONFIGS = [tfds.core.BuilderConfig(name='sst2')]
  URL = 'https://dl.fbaipublicfiles.com/glue/data/SST-2.zip'
  code_path = epath.Path(__file__)

  def _info(self) -> tfds.core.DatasetInfo:
    features = tfds.features.FeaturesDict(
        {'sentence': tfds.features.Text(),
         'label': tfds.features.ClassLabel(names=['negative', 'positive']), 'idx': np.int32})
    return tfds.core.DatasetInfo(builder=self, features=features, disable_shuffling=True)

  def _extracted_dir(self, dl_manager) -> epath.Path:
    return epath.Path(dl_manager.download_and_extract(self.URL)) / 'SST-2'

  def _split_generators(self, dl_manager):
    root = self._extracted_dir(dl_manager)
    files = {'train': 'train.tsv', 'validation': 'dev.tsv', 'test': 'test.tsv'}
    return {split: self._generate_examples(root / f) for split, f in files.items()}

  def _generate_examples(self, path: epath.Path):
    rows = list(csv.DictReader(builders.read_lines(os.fspath(path)), delimiter='\t',
                               quoting=csv.QUOTE_NONE))
    for i, row in enumerate(rows):
      yield i, {'sentence': row['sentence'], 'label': int(row.get('label', -1)), 'idx': i}


def reads_path(data_cfg) -> bool:
  """Whether the data is made of the local file(s) of data.path, not of a TFDS data.source."""
  return data_cfg.get('source', '') in ('', *CORRUPTIONS)


def prepare(data_cfg, directory: str) -> None:
  """Builds the TFDS dataset named by data.source (local sources need nothing)."""
  if reads_path(data_cfg):
    return
  kwargs = {'data_dir': directory, 'file_format': 'array_record'}
  if data_cfg.source == 'glue/sst2':
    builder = GlueSst2(config='sst2', **kwargs)
  elif data_cfg.source == 'lm1b':
    builder = builders.Lm1b(**kwargs)  # TF-free, same files as the official builder
  else:
    try:
      builder = tfds.builder(data_cfg.source, **kwargs)
    except tfds.core.registered.DatasetNotFoundError:
      # wiki40b: its builder imports TensorFlow (and Beam)
      raise errors.DataError(
          f'config.data.source={data_cfg.source} is not prepared in {directory} and its TFDS '
          f'builder needs TensorFlow and Apache Beam: run `tfds build {data_cfg.source} '
          '--file_format=array_record --data_dir=DIR` once where they are installed, then pass '
          '--config.data.data_dir=DIR') from None
  builders.build_if_needed(builder, f'config.data.source={data_cfg.source}')


def _lines_from_tfds(source: str, directory: str, data_cfg) -> dict[str, list[str]]:
  key = 'text'
  splits = {'train': 'train', 'validation': 'test' if source == 'lm1b' else 'validation'}
  limits = {'train': data_cfg.num_train, 'validation': data_cfg.num_validation}
  out = {}
  for split, tfds_split in splits.items():
    texts = _tfds_texts(source, tfds_split, directory, limits[split], key)
    # wiki40b: one article per example, paragraphs separated by markers; lines are its paragraphs.
    out[split] = [p.strip() for t in texts for p in t.replace('_START_PARAGRAPH_', '\n').replace(
        '_NEWLINE_', '\n').split('\n') if p.strip() and not p.strip().startswith('_START_')]
  return out


def _no_test(data_cfg) -> str:
  """Why data_cfg's data has no test split (train.test_eval's error says)."""
  if not reads_path(data_cfg):
    return f'of config.data.source={data_cfg.source} only a train and a validation split are read'
  if '{split}' in data_cfg.path:
    return f'no test file matches {builders.split_file_names(data_cfg.path, "test")}'
  return (f'a single file is split {TRAIN_FRACTION:.0%}/{1 - TRAIN_FRACTION:.0%} into '
          'train and validation')


def load(data_cfg, directory: str) -> core.Data:
  """The Data of data.name 'mlm' or 'classify' (see the module docstring)."""
  T, seed = data_cfg.seq_len, data_cfg.seed
  if data_cfg.name == 'mlm':
    if data_cfg.source:
      parts = _lines_from_tfds(data_cfg.source, directory, data_cfg)
      pairs = {split: nsp_pairs(lines, T, seed) for split, lines in parts.items()}
    else:
      pairs = {split: nsp_pairs(lines, T, seed)
               for split, lines in split_lines(data_cfg.path).items()}
    mask_prob = data_cfg.mask_prob
    # evaluation: fixed masks
    fixed = lambda p: _masked(p, np.arange(len(p['next'])), _EVAL_SEED, mask_prob)
    arrays = {split: p if split == 'train' else fixed(p) for split, p in pairs.items()}
    splits = {split: core.Examples(len(a['next']), lambda i, a=a: _rows(a, i))
              for split, a in arrays.items()}
    augment = lambda batch, rows, s: _masked(batch, rows, s, mask_prob)
    return core.Data('mlm', VOCAB_SIZE, T, splits, decode, augment=augment,
                     meta={} if 'test' in splits else {'no_test': _no_test(data_cfg)})

  meta = {}
  if data_cfg.source in CORRUPTIONS:
    parts, names = {}, [data_cfg.source, 'real']
    for split, lines in split_lines(data_cfg.path).items():
      texts, labels_N = corrupted_task(lines, seed, data_cfg.source)
      if not texts:
        raise errors.DataError(f'config.data.source={data_cfg.source!r} can corrupt none of the '
                               f'{len(lines)} lines of the {split} split of '
                               f'config.data.path={data_cfg.path!r} (a line needs '
                               f'{_CORRUPTIBLE[data_cfg.source]}): use other text')
      parts[split] = classification_arrays(texts, None, labels_N, T)
  elif not data_cfg.source:
    parts, names, meta = _tables(data_cfg.path, T, seed)
  else:
    key = 'sentence' if data_cfg.source == 'glue/sst2' else 'text'
    splits_of = {'train': 'train',
                 'validation': 'validation' if data_cfg.source == 'glue/sst2' else 'test'}
    limits = {'train': data_cfg.num_train, 'validation': data_cfg.num_validation}
    parts, names = {}, ['negative', 'positive']
    for split, tfds_split in splits_of.items():
      source = tfds.data_source(data_cfg.source, split=tfds_split, data_dir=directory)
      examples = [source[i] for i in range(min(len(source), limits[split]))]
      texts = [ex[key].decode('utf-8') if isinstance(ex[key], bytes) else str(ex[key])
               for ex in examples]
      parts[split] = classification_arrays(texts, None, [int(ex['label']) for ex in examples], T)
  _check_classes(parts, names, f'config.data.path={data_cfg.path!r}' if reads_path(data_cfg) else
                 f'config.data.source={data_cfg.source!r}')
  splits = {split: core.Examples(len(a['label']), lambda i, a=a: _rows(a, i))
            for split, a in parts.items()}
  if 'test' not in splits:
    meta.setdefault('no_test', _no_test(data_cfg))  # a test file without labels has said why
  return core.Data('classify', VOCAB_SIZE, T, splits, decode,
                   meta={'num_classes': len(names), 'classes': names, **meta})


def decode(tokens) -> str:
  """Renders tokens as text with [CLS]/[SEP]/[MASK] shown and padding dropped."""
  out = []
  for t in np.asarray(tokens).reshape(-1).tolist():
    out.append(_NAMES[t] if t < NUM_SPECIALS else bytes([t - NUM_SPECIALS]).decode('latin-1'))
  return ''.join(out)


def check(config) -> None:
  """The source, the local file(s) it reads, the masking and the row length; tokens are bytes."""
  d = config.data
  core.check_windows(d)
  sources = MLM_SOURCES if d.name == 'mlm' else CLASSIFY_SOURCES
  core.check(d.source in sources,
             f'config.data.source={d.source!r} is not a {d.name} source: choose one of '
             f'{", ".join(repr(s) for s in sources)} (\'\' reads config.data.path)')
  what = ('a TSV/CSV (.tsv: tab-separated, no quoting; .csv: comma-separated)'
          if d.name == 'classify' and not d.source else 'a local text file, one sentence per line')
  table = os.path.splitext(d.path)[1].lower() in ('.tsv', '.csv')
  core.check(not (table and d.source in CORRUPTIONS),
             f'config.data.path={d.path!r} is a table, but config.data.source={d.source!r} makes a '
             'task of the lines of a text file: set --config.data.source= (empty) to classify its '
             'rows')
  if reads_path(d):
    if '{split}' in d.path:
      core.check_split_files('data.path', d.path, f'{what} per split')
    else:
      core.check(bool(d.path), f"config.data.path is empty: point it at {what}, or at one per "
                 "split with '{split}'")
      problem = core.not_a_file(os.path.expanduser(d.path))
      core.check(not problem, f"config.data.path={d.path!r} {problem}: point it at {what}, or at "
                 "one per split with '{split}'")
  core.check(0 < d.mask_prob < 1,
             f'config.data.mask_prob={d.mask_prob!r} must be in (0, 1); BERT uses 0.15')
  core.check(d.seq_len >= 8, f'config.data.seq_len={d.seq_len!r} is too short for [CLS] A [SEP] B '
             '[SEP]: use >= 8')
  core.check_no_byte_level(d)
  core.check_no_tokenizer(d)


def _local_files(data_cfg) -> list[str]:
  return core.existing_files(data_cfg.path) if reads_path(data_cfg) else []


DATASETS = {'mlm': core.Dataset('mlm', prepare, load, check, _local_files),
            'classify': core.Dataset('classify', prepare, load, check, _local_files)}
