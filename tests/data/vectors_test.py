"""Word vector files: each format read against a file written here byte by byte, an exact round
trip, and the one-line refusals of unreadable, ragged and cut files."""

import struct

import numpy as np
import pytest

from seqmodels.data import vectors
from seqmodels.errors import DataError

WORDS = ['the', 'König', 'day']
TABLE = np.array([[0.1, -2.5, 3.0], [1e-8, 7.25, -0.0625], [123.456, 0.0, -1.0]], np.float32)


def _lines(header: bool) -> str:
  rows = [f'{w} ' + ' '.join(f'{x:.6g}' for x in row) for w, row in zip(WORDS, TABLE)]
  return '\n'.join(([f'{len(WORDS)} 3'] if header else []) + rows) + '\n'


@pytest.mark.parametrize('name, content', [
    ('w2v.txt', _lines(header=True)),       # word2vec text
    ('fasttext.vec', _lines(header=True).replace('\n', ' \n')),  # fastText: a space ends a line
    ('glove.txt', _lines(header=False)),    # GloVe: no header
])
def test_text_formats_read_as_written(tmp_path, name, content):
  path = tmp_path / name
  path.write_text(content, encoding='utf-8')
  words, table = vectors.read(str(path))
  assert words == WORDS
  np.testing.assert_allclose(table, TABLE, rtol=1e-6)
  assert vectors.dimension(str(path)) == 3
  words, table = vectors.read(str(path), wanted={'day'})
  assert words == ['day'] and table.shape == (1, 3)


@pytest.mark.parametrize('newline', [b'\n', b''])
def test_word2vec_binary_reads_as_written(tmp_path, newline):
  path = tmp_path / 'vectors.bin'
  data = b'3 3\n' + b''.join(w.encode() + b' ' + struct.pack('<3f', *row) + newline
                             for w, row in zip(WORDS, TABLE))
  path.write_bytes(data)
  words, table = vectors.read(str(path))
  assert words == WORDS
  np.testing.assert_array_equal(table, TABLE)


def test_writing_and_reading_back_is_exact(tmp_path):
  rng = np.random.default_rng(0)
  table = rng.normal(size=(50, 7)).astype(np.float32) * np.logspace(-6, 4, 50)[:, None]
  words = [f'w{i}' for i in range(50)]
  for write in (vectors.write_text, vectors.write_binary):
    path = str(tmp_path / write.__name__)
    write(path, words, table)
    got_words, got = vectors.read(path)
    assert got_words == words
    np.testing.assert_array_equal(got, table.astype(np.float32))


@pytest.mark.parametrize('content, message', [
    (b'2 3\nthe 1 2 3\nday 1 2\n', 'ragged: line 3 has 2 numbers'),
    (b'the 1 2 3\nday 1 2 3 4\n', 'ragged: line 2 has 4 numbers'),
    (b'3 3\nthe 1 2 3\nday 1 2 3\n', 'holds 2 vectors, and its header says 3'),
    (b'the 1 x 3\n', 'line 1 is not a word and numbers'),
    (b'2 3\nthe ' + struct.pack('<3f', 1, 2, 3) + b'\nday \x00\x00', 'ends at its vector 2'),
])
def test_bad_files_are_refused_in_one_line(tmp_path, content, message):
  path = tmp_path / 'bad.txt'
  path.write_bytes(content)
  with pytest.raises(DataError, match=message) as e:
    vectors.read(str(path))
  assert '\n' not in str(e.value)
  with pytest.raises(DataError, match='cannot be read'):
    vectors.read(str(tmp_path / 'missing.txt'))
