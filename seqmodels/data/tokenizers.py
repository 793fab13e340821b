"""Character and byte tokenizers for language-modelling data."""

import json
import os

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

    Works through `chunk` characters at a time, so a corpus of N characters needs about 4N bytes beyond the text.
    """
    ids = np.empty(len(text), np.int32)
    for start in range(0, len(text), chunk):
      piece = text[start:start + chunk]
      codepoints = np.frombuffer(piece.encode('utf-32-le'), np.uint32)
      found = np.minimum(np.searchsorted(self._codepoints, codepoints), self.vocab_size - 1)
      unknown = self._codepoints[found] != codepoints
      if unknown.any():
        raise ValueError(f'Characters not in vocabulary: {sorted({piece[i] for i in np.flatnonzero(unknown)})}')
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
