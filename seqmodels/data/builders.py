"""TFDS builders of running text (local files, tiny_shakespeare, lm1b), and what the builders of
every dataset share (building once, reading local text, split files); all prepared as array_record
files without TensorFlow. The other datasets' builders live in their modules (tasks.py,
translation.py, bert.py).

All builders skip the TFDS registry: a prepared dataset is read back from its files with
`tfds.data_source('<builder>/<config>', data_dir=...)`, so configs need not be known in advance.
Config names encode every generation parameter, so two different configs never share files.
Bump a builder's VERSION whenever its generated examples change.
"""

import base64
import collections
import dataclasses
import fnmatch
import hashlib
import inspect
import io
import json
import logging
import os
import re
import sys
import tarfile

import numpy as np
import tensorflow_datasets as tfds
from etils import epath
from tensorflow_datasets.datasets.lm1b import lm1b_dataset_builder
from tensorflow_datasets.datasets.tiny_shakespeare import tiny_shakespeare_dataset_builder

from seqmodels.data import tokenizers
from seqmodels.errors import DataError

TRAIN_FRACTION = 0.9  # local_text: first 90% of characters train, last 10% validation (nanoGPT).
# Builders set `code_path` themselves: TFDS 4.9.10 derives it through `importlib_resources`, which
# it does not install on Python >= 3.9 (tensorflow/datasets#11212), so download_and_prepare would
# fail.
_CODE_PATH = epath.Path(__file__)
# What TFDS logs as a warning for every builder here (each config is made for its data, so it is a
# custom one; a variant folder lacks dataset_info.json until it is first built): dropped.
_TFDS_ROUTINE = ('Using custom data configuration', 'Variant folder %s has no')
logging.getLogger('absl').addFilter(lambda record: not str(record.msg).startswith(_TFDS_ROUTINE))


_WARNED: set[str] = set()


def warn_once(message: str, *args) -> None:
  """logging.warning, but once a process for each message: the data of a run is loaded again by its
  resume, by a sweep's other trials and by every analysis, and what it warns of is the same each
  time."""
  text = message % args if args else message
  if text not in _WARNED:
    _WARNED.add(text)
    logging.warning('%s', text)


def not_utf8(path: str, e: UnicodeDecodeError) -> DataError:
  return DataError(f'{path} is not UTF-8 text (byte {e.start}: {e.reason}): convert it, e.g. '
                   f'iconv -f latin1 -t utf-8 {os.path.basename(path)} > new.txt')


def read_text(path: str) -> str:
  """A local text file, decoded as UTF-8 (a byte order mark at its start dropped, as Windows editors
  write one); any other encoding is a DataError naming the file and the fix."""
  try:
    # epath reads UTF-8 whatever encoding it is given ('utf-8-sig' too), so the mark is dropped
    # here.
    return epath.Path(os.path.expanduser(path)).read_text(encoding='utf-8').removeprefix('\ufeff')
  except UnicodeDecodeError as e:
    raise not_utf8(path, e) from e


def read_lines(path: str) -> list[str]:
  r"""The lines of a local text file, split at '\n' only (a final newline ends the last line): the
  lines `wc -l` counts, where str.splitlines would also split at U+2028, U+2029, \x0b, \x0c,
  \x1c-\x1e and \x85 inside a line. The file is read with universal newlines, so '\r\n' and '\r' end
  lines too."""
  lines = read_text(path).split('\n')
  return lines[:-1] if lines[-1] == '' else lines


def build_if_needed(builder: tfds.core.DatasetBuilder, what: str) -> None:
  """Downloads and prepares `builder` unless it is prepared; a failed download is a DataError naming
  `what`."""
  if builder.is_prepared():
    return
  # TFDS's progress bars (a dozen a dataset, redrawn many times a second) only on a terminal: in a
  # log file (a sweep's log.txt, a batch job's output) they are lines of carriage returns.
  tfds.display_progress_bar(sys.stderr.isatty())
  try:
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(try_download_gcs=False))
  except OSError as e:  # offline, a refused or missing URL (requests' errors are OSErrors too)
    reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
    raise DataError(f'{what} could not be downloaded and prepared in {builder.data_dir} '
                    f'({reason}): run once on a machine that is online, or copy a prepared '
                    'data_dir here and pass --config.data.data_dir') from e


# A '{split}' in a path names one file per split, under any of these names ('wiki.valid.tokens').
SPLIT_NAMES = {'train': ('train',), 'validation': ('validation', 'valid', 'val', 'dev'),
               'test': ('test',)}


def split_files(pattern: str) -> dict[str, str]:
  """{split: the existing file} for a path with '{split}' (each split under its first name that
  exists)."""
  found = {}
  for split, names in SPLIT_NAMES.items():
    for name in names:
      path = os.path.expanduser(pattern.replace('{split}', name))
      if os.path.isfile(path):
        found[split] = path
        break
  return found


def split_file_names(pattern: str, split: str) -> str:
  """The files a path with '{split}' may name for `split`, in words: 'c/valid.txt or c/val.txt or
  ...'."""
  return ' or '.join(pattern.replace('{split}', name) for name in SPLIT_NAMES[split])


@dataclasses.dataclass(eq=False, kw_only=True)
class LocalTextConfig(tfds.core.BuilderConfig):
  """Local running text as token ids, stored in chunks; windows are cut at load time."""
  path: str  # one file (split 90/10) or a pattern with '{split}'
  files: dict  # split -> file
  tokenizer: str = 'char'  # char | word | bpe | unigram ('byte' is made from 'char' at load)
  vocab_size: int = 0  # bpe, unigram: sentencepiece's (soft) vocabulary size
  min_count: int = 1  # word: the fewest training occurrences a word needs to be in the vocabulary
  # sha256 of the parameters and every file's path and content; checked again when building
  digest: str


TEXT_CHUNK = 65_536  # tokens per stored record


def _text_params(path: str, tokenizer: str, vocab_size: int, min_count: int) -> dict:
  """What makes the dataset: the path, the tokenizer and the settings it uses."""
  return {'path': path, 'tokenizer': tokenizer,
          **({'vocab_size': vocab_size} if tokenizer in ('bpe', 'unigram')
             else {'min_count': min_count} if tokenizer == 'word' else {})}


_SHA256: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str) -> str:
  """The sha256 of a local file's bytes, read once a process while its size and modification time
  stay the same: a run names its dataset by it when preparing and again when loading, and records it
  in data_files.json."""
  path = os.path.abspath(os.path.expanduser(path))
  st = os.stat(path)
  key = (path, st.st_size, st.st_mtime_ns)
  if key not in _SHA256:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
      for block in iter(lambda: f.read(1 << 24), b''):
        h.update(block)
    _SHA256[key] = h.hexdigest()
  return _SHA256[key]


def _text_digest(files: dict, params: dict) -> str:
  h = hashlib.sha256(json.dumps({**params, 'train_fraction': TRAIN_FRACTION, 'chunk': TEXT_CHUNK},
                                sort_keys=True).encode())
  for split in sorted(files):
    h.update(b'\0' + files[split].encode() + b'\0' + file_sha256(files[split]).encode())
  return h.hexdigest()


def local_text_config(path: str, tokenizer: str = 'char', vocab_size: int = 8000,
                      min_count: int = 1) -> LocalTextConfig:
  """Config of an LM over the text at `path`: one dataset per content and tokenization, whatever the
  window."""
  path = os.path.abspath(os.path.expanduser(path))
  files = split_files(path) if '{split}' in path else {'text': path}
  params = _text_params(path, tokenizer, vocab_size, min_count)
  digest = _text_digest(files, params)
  stem = re.sub(r'\W', '_', os.path.splitext(os.path.basename(path.replace('{split}', '')))[0])[:40]
  kind = '' if tokenizer == 'char' else f'{tokenizer}{params.get("vocab_size", "")}_'
  return LocalTextConfig(name=f'{stem}_{kind}{digest[:16]}', path=path, files=files,
                         tokenizer=tokenizer, vocab_size=params.get('vocab_size', 0),
                         min_count=min_count, digest=digest)


def window_starts(num_ids: int, length: int, stride: int) -> np.ndarray:
  """Start offsets of every full window ids[start : start + length] stepping by `stride`."""
  return np.arange(0, max(0, num_ids - length + 1), stride)


def text_tokenizer(
    metadata) -> 'tokenizers.CharTokenizer | tokenizers.WordTokenizer | tokenizers.SubwordLines':
  """The tokenizer a LocalText dataset was made with, from its metadata."""
  if 'words' in metadata:
    return tokenizers.WordTokenizer(metadata['words'])
  if 'sentencepiece' in metadata:
    return tokenizers.SubwordLines(base64.b64decode(metadata['sentencepiece']))
  return tokenizers.CharTokenizer(metadata['chars'])


class LocalText(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """An LM over local text; the tokenizer is saved in the metadata ('chars', 'words' or
  'sentencepiece').

  One file: its first 90% of characters are the train split, the last 10% validation (nanoGPT's
  split). A path with '{split}': the train, validation and (optional) test files. Characters are
  counted over all the text; words and subword pieces are learned from the train split only (test
  words never seen in training are '<unk>'; subword pieces spell them). Each split is stored as
  consecutive chunks of token ids; text.py concatenates them and cuts windows of any length at any
  stride in memory, so one build serves every context length (and nanoGPT-style random crops).
  """

  # 2.1.0: a UTF-8 byte order mark is no longer a character of the text
  VERSION = tfds.core.Version('2.1.0')
  code_path = _CODE_PATH

  def _info(self) -> tfds.core.DatasetInfo:
    cfg = self.builder_config
    features = tfds.features.FeaturesDict(
        {'tokens': tfds.features.Tensor(shape=(None,), dtype=np.int32)})
    return tfds.core.DatasetInfo(
        builder=self, description=json.dumps({'path': cfg.path, 'sha256': cfg.digest}),
        features=features, disable_shuffling=True, metadata=tfds.core.MetadataDict())

  def _split_generators(self, dl_manager):
    del dl_manager  # The text is local.
    cfg = self.builder_config
    params = _text_params(cfg.path, cfg.tokenizer, cfg.vocab_size, cfg.min_count)
    if _text_digest(cfg.files, params) != cfg.digest:
      raise ValueError(f'{cfg.path} changed after its config was made; make the config again.')
    texts = {split: read_text(path) for split, path in cfg.files.items()}
    if 'text' in texts:
      text = texts.pop('text')
      split_at = int(len(text) * TRAIN_FRACTION)
      texts = {'train': text[:split_at], 'validation': text[split_at:]}
    if not texts['train'].strip():
      raise DataError(f'the train split of {cfg.path} holds no text (only whitespace): fill it')
    if cfg.tokenizer == 'char':
      tokenizer = tokenizers.CharTokenizer.from_text(''.join(texts.values()))
      self.info.metadata['chars'] = tokenizer.chars
    elif cfg.tokenizer == 'word':
      tokenizer = tokenizers.WordTokenizer.from_lines(texts['train'].split('\n'), cfg.min_count)
      # '<unk>' and '<eos>' alone: an LM of them has a perplexity of nearly 1
      if tokenizer.vocab_size == 2:
        counts = collections.Counter(w for w in texts['train'].split() if w not in tokenizer.words)
        if not counts:
          raise DataError(
              f'the train split of {cfg.path} holds no word but {tokenizers.UNK_WORD}: fill it')
        word, n = counts.most_common(1)[0]
        raise DataError(f'config.data.min_count={cfg.min_count} keeps no word of the train split '
                        f'of {cfg.path} (its most frequent word, {word!r}, occurs {n} times), so '
                        f'every word would be {tokenizers.UNK_WORD}: lower '
                        f'config.data.min_count to at most {n}')
      self.info.metadata['words'] = tokenizer.words[2:]
    else:
      try:
        proto = tokenizers.train_sentencepiece(texts['train'].split('\n'), cfg.vocab_size,
                                               cfg.tokenizer, lossless=True)
      except ValueError as e:
        raise DataError(f'config.data.vocab_size={cfg.vocab_size} for {cfg.path}: {e}') from e
      tokenizer = tokenizers.SubwordLines(proto)
      self.info.metadata['sentencepiece'] = base64.b64encode(proto).decode('ascii')
    # for bits/char
    self.info.metadata['characters'] = {split: len(text) for split, text in texts.items()}
    return {split: self._generate_examples(tokenizer.encode(text)) for split, text in texts.items()}

  def _generate_examples(self, ids_N: np.ndarray):
    for index, start in enumerate(range(0, len(ids_N), TEXT_CHUNK)):
      yield index, {'tokens': ids_N[start:start + TEXT_CHUNK]}


class TinyShakespeare(tiny_shakespeare_dataset_builder.Builder, skip_registration=True):
  """The official `tiny_shakespeare` dataset, generated without TensorFlow (same files and
  splits)."""

  name = 'tiny_shakespeare'
  # Official metadata and download checksums.
  code_path = epath.Path(inspect.getfile(tiny_shakespeare_dataset_builder.Builder))
  pkg_dir_path = code_path.parent

  def _split_generators(self, dl_manager):
    path = dl_manager.download(
        'https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt')
    text = epath.Path(path).read_text()
    # Same 90/5/5 split as the official builder.
    i = int(len(text) * 0.9)
    train_text, rest = text[:i], text[i:]
    j = int(len(rest) * 0.5)
    parts = {'train': train_text, 'validation': rest[:j], 'test': rest[j:]}
    return {split: self._generate_examples(split, part) for split, part in parts.items()}


class Lm1b(lm1b_dataset_builder.Builder, skip_registration=True):
  """The official `lm1b` dataset, generated without TensorFlow by streaming the tar.gz."""

  name = 'lm1b'
  code_path = epath.Path(inspect.getfile(lm1b_dataset_builder.Builder))
  pkg_dir_path = code_path.parent

  def _split_generators(self, dl_manager):
    archive = dl_manager.download(lm1b_dataset_builder._DOWNLOAD_URL)
    patterns = {'train': lm1b_dataset_builder._TRAIN_FILE_FORMAT,
                'test': lm1b_dataset_builder._HELDOUT_FILE_FORMAT}
    return {split: self._generate_examples(archive, pattern) for split, pattern in patterns.items()}

  def _generate_examples(self, archive, pattern):
    # Same keys as the official builder, so TFDS's key hashing gives the same example order.
    with tarfile.open(os.fspath(archive), 'r|gz') as tar:
      for member in tar:
        name = member.name.removeprefix('./')
        if not (member.isfile() and fnmatch.fnmatch(name, pattern)):
          continue
        # Universal newlines, like the official builder's text-mode `epath.Path.open()`.
        lines = io.StringIO(tar.extractfile(member).read().decode('utf-8'), newline=None)
        for idx, line in enumerate(lines):
          yield f'{os.path.basename(name)}_{idx}', {'text': line.strip()}
