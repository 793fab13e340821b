"""Word vector files: word2vec's text and binary formats, GloVe's .txt and fastText's .vec.

- word2vec text, fastText .vec: a header line 'V D', then V lines 'word x_1 ... x_D';
- GloVe .txt: the same lines without the header;
- word2vec binary (.bin): the header line, then per word its UTF-8 bytes, a space and D
  little-endian float32s (word2vec.c writes a newline after each vector; gensim reads either).
A seqmodels word2vec run writes its vectors as workdir/vectors.txt (word2vec text); its workdir
names them too.
"""

from __future__ import annotations

import io
import os

import numpy as np

from seqmodels.errors import DataError

RUN_VECTORS = 'vectors.txt'  # a word2vec run's vectors, in its workdir


def resolve(path: str) -> str:
  """The vectors file `path` names: itself, or a run's workdir/vectors.txt."""
  path = os.path.abspath(os.path.expanduser(path))
  return os.path.join(path, RUN_VECTORS) if os.path.isdir(path) else path


def _header(line: bytes) -> tuple[int, int] | None:
  fields = line.split()
  if len(fields) == 2 and all(f.isdigit() for f in fields):
    return int(fields[0]), int(fields[1])
  return None


def _is_binary(f: io.BufferedReader, dim: int) -> bool:
  """After a header: whether the first entry is binary (its line is not a word and D numbers)."""
  start = f.tell()
  line = f.readline()
  f.seek(start)
  try:
    fields = line.decode('utf-8').split()
    [float(x) for x in fields[1:]]
  except (UnicodeDecodeError, ValueError):
    return True
  return len(fields) != dim + 1


def read(path: str, wanted: set[str] | None = None) -> tuple[list[str], np.ndarray]:
  """(words, float32 vectors [n, D]) of a vectors file in any of the formats above (told apart by
  its content); with `wanted`, only those words' rows are kept. DataError for a file that cannot be
  read or is ragged."""
  path = resolve(path)
  try:
    with open(path, 'rb') as f:
      first = f.readline()
      header = _header(first)
      if header is not None and _is_binary(f, header[1]):
        return _read_binary(f, path, *header, wanted)
      lines = ([] if header else [first]) + f.readlines()
  except OSError as e:
    raise DataError(f'the vectors file {path} cannot be read ({e.strerror or e}): point '
                    'config.model.pretrained_vectors at a readable file') from e
  words, rows, dim = [], [], header[1] if header else None
  for number, line in enumerate(lines, start=2 if header else 1):
    try:
      fields = line.decode('utf-8').rstrip('\n').rstrip(' ').split(' ')
      values = [float(x) for x in fields[1:]]
    except (UnicodeDecodeError, ValueError) as e:
      raise DataError(f'the vectors file {path}: line {number} is not a word and numbers '
                      f'({e}): write it in the word2vec text, binary, GloVe or fastText '
                      'format') from e
    if not fields[0] and not values:
      continue  # an empty line (at the end)
    dim = dim or len(values)
    if len(values) != dim:
      raise DataError(f'the vectors file {path} is ragged: line {number} has {len(values)} '
                      f'numbers, and {"its header says" if header else "its first line has"} '
                      f'{dim}: repair or regenerate it')
    if wanted is None or fields[0] in wanted:
      words.append(fields[0])
      rows.append(values)
  if header and len(lines) - lines.count(b'\n') != header[0]:
    raise DataError(f'the vectors file {path} holds {len(lines)} vectors, and its header says '
                    f'{header[0]}: it is cut short or ragged: regenerate it')
  if dim is None:
    raise DataError(f'the vectors file {path} holds no vector: point '
                    'config.model.pretrained_vectors at a vectors file')
  return words, np.asarray(rows, np.float32).reshape(len(rows), dim)


def _read_binary(f, path: str, count: int, dim: int,
                 wanted: set[str] | None) -> tuple[list[str], np.ndarray]:
  data = f.read()
  words, rows, at, width = [], [], 0, 4 * dim
  for i in range(count):
    while at < len(data) and data[at:at + 1] in (b'\n', b' '):  # word2vec.c's newline
      at += 1
    space = data.find(b' ', at)
    if space < 0 or space + 1 + width > len(data):
      raise DataError(f'the word2vec binary file {path} ends at its vector {i + 1} of the '
                      f'{count} its header says: it is cut short: regenerate it')
    word = data[at:space].decode('utf-8', errors='replace')
    if wanted is None or word in wanted:
      words.append(word)
      rows.append(np.frombuffer(data, '<f4', dim, space + 1))
    at = space + 1 + width
  return words, np.asarray(rows, np.float32).reshape(len(rows), dim)


def dimension(path: str) -> int:
  """D of a vectors file, from its header or first line; DataError if it cannot be read."""
  path = resolve(path)
  try:
    with open(path, 'rb') as f:
      first = f.readline()
  except OSError as e:
    raise DataError(f'the vectors file {path} cannot be read ({e.strerror or e}): point '
                    'config.model.pretrained_vectors at a readable file') from e
  header = _header(first)
  return header[1] if header else len(first.split()) - 1


def write_text(path: str, words: list[str], vectors_VxD: np.ndarray) -> None:
  """word2vec's text format; each float32 in its shortest form that reads back to the same
  float32, so a write and a read are exact."""
  vectors_VxD = np.asarray(vectors_VxD, np.float32)
  with open(path, 'w', encoding='utf-8') as f:
    f.write(f'{len(words)} {vectors_VxD.shape[1]}\n')
    for word, row in zip(words, vectors_VxD):
      f.write(word + ' ' + ' '.join(map(str, row)) + '\n')


def write_binary(path: str, words: list[str], vectors_VxD: np.ndarray) -> None:
  """word2vec.c's binary format (a newline after each vector, as it writes)."""
  vectors_VxD = np.asarray(vectors_VxD, '<f4')
  with open(path, 'wb') as f:
    f.write(f'{len(words)} {vectors_VxD.shape[1]}\n'.encode())
    for word, row in zip(words, vectors_VxD):
      f.write(word.encode('utf-8') + b' ' + row.tobytes() + b'\n')
