"""Tokenizers of running text: characters, UTF-8 bytes, words, sentencepiece subwords."""

import collections
import io
import json
import os
import re
from typing import Iterable, Iterator, Sequence

import numpy as np


class CharTokenizer:
  """Character-level tokenizer: id i is the i-th distinct character in sorted order (nanoGPT)."""

  def __init__(self, chars: str):
    if len(set(chars)) != len(chars):
      raise ValueError('CharTokenizer chars must be distinct.')
    self.chars = ''.join(sorted(chars))
    self._codepoints = np.array([ord(c) for c in self.chars], np.uint32)

  @classmethod
  def from_text(cls, text: str) -> 'CharTokenizer':
    """Builds the vocabulary of every character that occurs in `text`."""
    return cls(''.join(set(text)))

  @property
  def vocab_size(self) -> int:
    return len(self.chars)

  def encode(self, text: str, chunk: int = 1 << 22) -> np.ndarray:
    """Returns int32 ids [len(text)]; raises ValueError on characters outside the vocabulary.

    Works through `chunk` characters at a time, so a corpus of N characters needs about 4N bytes
    beyond the text.
    """
    ids = np.empty(len(text), np.int32)
    for start in range(0, len(text), chunk):
      piece = text[start:start + chunk]
      codepoints = np.frombuffer(piece.encode('utf-32-le'), np.uint32)
      found = np.minimum(np.searchsorted(self._codepoints, codepoints), self.vocab_size - 1)
      unknown = self._codepoints[found] != codepoints
      if unknown.any():
        raise ValueError(
            f'Characters not in vocabulary: {sorted({piece[i] for i in np.flatnonzero(unknown)})}')
      ids[start:start + len(piece)] = found
    return ids

  def decode(self, ids) -> str:
    return ''.join(self.chars[i] for i in np.asarray(ids).reshape(-1))

  def save(self, path: str | os.PathLike) -> None:
    with open(path, 'w', encoding='utf-8') as f:
      json.dump({'chars': self.chars}, f, ensure_ascii=False)

  @classmethod
  def load(cls, path: str | os.PathLike) -> 'CharTokenizer':
    with open(path, encoding='utf-8') as f:
      return cls(json.load(f)['chars'])


class ByteTokenizer:
  """UTF-8 byte tokenizer: byte b has id b + offset; ids below `offset` are left for specials."""

  def __init__(self, offset: int = 0):
    self.offset = offset

  @property
  def vocab_size(self) -> int:
    return 256 + self.offset

  def encode(self, text: str | bytes) -> np.ndarray:
    data = text.encode('utf-8') if isinstance(text, str) else text
    return np.frombuffer(data, np.uint8).astype(np.int32) + self.offset

  def decode(self, ids) -> str:
    ids = np.asarray(ids).reshape(-1)
    ids = ids[(ids >= self.offset) & (ids < self.vocab_size)]
    return (ids - self.offset).astype(np.uint8).tobytes().decode('utf-8', errors='replace')


# ---- tokenizers of running text by lines: a newline is an end-of-line token, so the layout
# survives ----------

UNK_WORD, EOS_WORD = '<unk>', '<eos>'


class WordTokenizer:
  """Whitespace-separated words; every newline is the token '<eos>' (WikiText and PyTorch's
  word_language_model).

  Id 0 is '<unk>' (words outside the vocabulary, and a corpus's own '<unk>', as WikiText writes its
  rare words), 1 is '<eos>', then the vocabulary: the training words seen at least `min_count`
  times, most frequent first.
  """

  def __init__(self, words: Sequence[str]):
    self.words = [UNK_WORD, EOS_WORD] + [w for w in words if w not in (UNK_WORD, EOS_WORD)]
    self._index = {w: i for i, w in enumerate(self.words)}

  @classmethod
  def from_lines(cls, lines: Iterable[str], min_count: int = 1) -> 'WordTokenizer':
    counts = collections.Counter()
    for line in lines:
      counts.update(line.split())
    kept = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
    return cls(kept)

  @property
  def vocab_size(self) -> int:
    return len(self.words)

  def encode(self, text: str) -> np.ndarray:
    index = self._index

    def ids():
      for line, ended in _lines_with_ends(text):
        yield from (index.get(w, 0) for w in line.split())
        if ended:
          yield 1

    return np.fromiter(ids(), np.int32)

  def decode(self, ids) -> str:
    return '\n'.join(' '.join(self.words[i] for i in line) for line in _split_lines(ids, 1))


def _split_lines(ids, eol: int) -> list[list[int]]:
  """Token ids cut into lines at each `eol` id (dropped); the last line is what follows the last
  one."""
  lines, line = [], []
  for i in np.asarray(ids).reshape(-1).tolist():
    if i == eol:
      lines.append(line)
      line = []
    else:
      line.append(i)
  return lines + [line]


def _lines_with_ends(text: str) -> Iterator[tuple[str, bool]]:
  """(line, whether a newline ends it) for each line of `text`; a final line without one is kept."""
  lines = text.split('\n')
  for i, line in enumerate(lines):
    if i < len(lines) - 1 or line:
      yield line, i < len(lines) - 1


# Ids of the sentencepiece models trained here (translation and subword LMs).
SP_PAD, SP_BOS, SP_EOS, SP_UNK = 0, 1, 2, 3
SP_SPECIALS = 4


def train_sentencepiece(sentences: Iterable[str], vocab_size: int, model_type: str,
                        lossless: bool = False) -> bytes:
  """A sentencepiece model ('unigram' or 'bpe', Kudo 2018 / Sennrich et al. 2016) of the sentences,
  serialized.

  The vocabulary size is a soft limit (a small corpus gets fewer pieces); every character is
  covered. `lossless` (language models): no NFKC normalization, every space kept, and characters
  never seen in training spelled as UTF-8 byte pieces, so decoding gives back the text exactly;
  otherwise (translation) sentencepiece's defaults, which fold runs of spaces and map unseen
  characters to UNK.
  """
  import sentencepiece as spm  # only subword data needs it
  model = io.BytesIO()
  exact = dict(normalization_rule_name='identity', remove_extra_whitespaces=False,
               byte_fallback=True)
  try:
    spm.SentencePieceTrainer.train(
        sentence_iterator=(s for s in sentences if s.strip()), model_writer=model,
        vocab_size=vocab_size, model_type=model_type, pad_id=SP_PAD, bos_id=SP_BOS, eos_id=SP_EOS,
        unk_id=SP_UNK, character_coverage=1.0, hard_vocab_limit=False,
        input_sentence_size=2_000_000, shuffle_input_sentence=True, num_threads=2, minloglevel=2,
        **(exact if lossless else {}))
  except RuntimeError as e:
    needed = re.search(r'smaller than required_chars\. \d+ vs (\d+)', str(e))
    if needed is None:
      raise
    raise ValueError(
        f'a vocabulary of {vocab_size} pieces is smaller than the {needed.group(1)} that the '
        'characters of the text' + (' and the 256 byte pieces' if lossless else '') +
        f' need: use a vocab_size of at least {needed.group(1)}') from e
  return model.getvalue()


class SubwordTokenizer:
  """A sentencepiece model with the ids above (PAD 0, BOS 1, EOS 2, UNK 3): sentences in, id lists
  out."""

  def __init__(self, path: str | None = None, *, model_proto: bytes | None = None):
    import sentencepiece as spm
    self.sp = (spm.SentencePieceProcessor(model_file=path) if model_proto is None
               else spm.SentencePieceProcessor(model_proto=model_proto))
    self.vocab_size = self.sp.get_piece_size()

  def encode(self, text: str | list[str]) -> list[int] | list[list[int]]:
    return self.sp.encode(text, num_threads=2) if isinstance(text, list) else self.sp.encode(text)

  def decode(self, ids: Sequence[int]) -> str:
    return self.sp.decode([i for i in ids if i >= SP_SPECIALS])

  def pieces(self, ids: Sequence[int]) -> list[str]:
    return [self.sp.id_to_piece(int(i)) for i in ids]


class SubwordLines:
  """Running text as sentencepiece pieces, each line's pieces followed by EOS where a newline was
  (as lm1b's sentences end), so a subword LM learns the text's layout as a character LM does."""

  def __init__(self, model_proto: bytes):
    self.model_proto = model_proto
    self.subwords = SubwordTokenizer(model_proto=model_proto)
    self.vocab_size = self.subwords.vocab_size

  def encode(self, text: str, lines_per_call: int = 100_000) -> np.ndarray:
    lines = list(_lines_with_ends(text))
    parts = []
    for start in range(0, len(lines), lines_per_call):
      chunk = lines[start:start + lines_per_call]
      for ids, (_, ended) in zip(self.subwords.encode([line for line, _ in chunk]), chunk):
        parts.append(np.asarray(ids + [SP_EOS] * ended, np.int32))
    return np.concatenate(parts) if parts else np.zeros(0, np.int32)

  def decode(self, ids) -> str:
    return '\n'.join(self.subwords.decode(line) for line in _split_lines(ids, SP_EOS))


HF_PREFIX = 'hf:'


class HFTokenizer:
  """A pre-trained model's own tokenizer: `tokenizer.json` of a Hugging Face checkpoint directory,
  read by the `tokenizers` package (the [hf] extra), its ids the model's."""

  def __init__(self, directory: str):
    from tokenizers import Tokenizer
    self.tokenizer = Tokenizer.from_file(os.path.join(directory, 'tokenizer.json'))
    self.vocab_size = self.tokenizer.get_vocab_size(with_added_tokens=True)

  def encode(self, text: str) -> np.ndarray:
    """Running text -> ids, with no special tokens added (the text is one stream)."""
    return np.asarray(self.tokenizer.encode(text, add_special_tokens=False).ids, np.int32)

  def decode(self, ids) -> str:
    return self.tokenizer.decode(np.asarray(ids).reshape(-1).tolist(), skip_special_tokens=False)
