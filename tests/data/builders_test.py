"""Tests that the TFDS builders write array_record files that read back exactly, without
TensorFlow."""

import io
import sys
import tarfile
from unittest import mock

import ml_collections
import numpy as np
import pytest
import tensorflow_datasets as tfds

from seqmodels import errors
from seqmodels.data import builders
from seqmodels.data import registry
from seqmodels.data import tokenizers

def _prepare(builder_cls, data_dir, **kwargs):
  builder = builder_cls(data_dir=str(data_dir), file_format='array_record', **kwargs)
  builder.download_and_prepare()
  return builder


def _write(path, text):
  path.write_text(text, encoding='utf-8')
  return str(path)


def test_local_text_saves_vocab_and_splits_90_10_by_position(tmp_path, monkeypatch):
  monkeypatch.setattr(builders, 'TEXT_CHUNK', 50)  # several records per split
  text = ''.join(f'line {i}: the quick brown fox é\n' for i in range(40))
  path = _write(tmp_path / 'corpus.txt', text)
  config = builders.local_text_config(path)
  _prepare(builders.LocalText, tmp_path / 'tfds', config=config)
  name = f'local_text/{config.name}'
  train = tfds.data_source(name, split='train', data_dir=tmp_path / 'tfds')
  validation = tfds.data_source(name, split='validation', data_dir=tmp_path / 'tfds')
  tokenizer = tokenizers.CharTokenizer(train.dataset_info.metadata['chars'])
  assert tokenizer.chars == ''.join(sorted(set(text)))
  split_at = int(len(text) * 0.9)
  assert len(train) == -(-split_at // 50) and train[0]['tokens'].dtype == np.int32
  assert ''.join(tokenizer.decode(train[i]['tokens']) for i in range(len(train))) == text[:split_at]
  assert (''.join(tokenizer.decode(validation[i]['tokens']) for i in range(len(validation))) ==
          text[split_at:])
  assert 'tensorflow' not in sys.modules


def test_local_text_config_name_changes_with_content_and_path(tmp_path):
  path = _write(tmp_path / 'a.txt', 'hello world ' * 20)
  name = builders.local_text_config(path).name
  assert name.startswith('a_') and builders.local_text_config(path).name == name
  other = _write(tmp_path / 'b.txt', 'hello world ' * 20)
  assert builders.local_text_config(other).name[2:] != name[2:]
  _write(tmp_path / 'a.txt', 'hello there ' * 20)
  assert builders.local_text_config(path).name != name


def test_local_text_refuses_a_file_changed_after_its_config_was_made(tmp_path):
  path = _write(tmp_path / 'a.txt', 'hello world ' * 20)
  config = builders.local_text_config(path)
  _write(tmp_path / 'a.txt', 'changed ' * 20)
  with pytest.raises(ValueError, match='changed'):
    _prepare(builders.LocalText, tmp_path / 'tfds', config=config)


@pytest.mark.parametrize('name', ['text', 'mlm'])
def test_text_that_is_not_utf8_fails_with_one_line_naming_the_file_and_the_fix(tmp_path, name):
  from experiments.configs.base import get_base_config
  path = tmp_path / 'latin.txt'
  path.write_bytes(('gro\u00df\n' * 200).encode('latin-1'))
  d = get_base_config().data
  d.name, d.path, d.data_dir, d.seq_len = name, str(path), str(tmp_path / 'tfds'), 16
  with pytest.raises(errors.DataError,
                     match=r'latin.txt is not UTF-8 text \(byte 3: .*\): convert it, e.g. iconv'):
    registry.prepare(d)
    registry.load(d)


def test_char_tokenizer_round_trips_and_saves_to_json(tmp_path):
  text = 'To be, or not to be: ünïcode\n'
  tokenizer = tokenizers.CharTokenizer.from_text(text)
  ids = tokenizer.encode(text)
  assert ids.dtype == np.int32 and ids.max() == tokenizer.vocab_size - 1
  assert tokenizer.decode(ids) == text
  tokenizer.save(tmp_path / 'vocab.json')
  assert tokenizers.CharTokenizer.load(tmp_path / 'vocab.json').chars == tokenizer.chars
  with pytest.raises(ValueError, match='not in vocabulary'):
    tokenizer.encode('xyz')
  # encoding works through the text a chunk at a time: boundaries change nothing
  for chunk in (1, 4, 7):
    np.testing.assert_array_equal(tokenizer.encode(text * 3, chunk=chunk), np.tile(ids, 3))
  with pytest.raises(ValueError, match=r"\['x'\]"):  # an unknown character in a later chunk
    tokenizer.encode(text + 'x', chunk=4)


def test_byte_tokenizer_offsets_bytes_and_round_trips():
  tokenizer = tokenizers.ByteTokenizer(offset=4)
  ids = tokenizer.encode('aé')
  np.testing.assert_array_equal(ids, [ord('a') + 4, 0xC3 + 4, 0xA9 + 4])
  assert tokenizer.vocab_size == 260
  assert tokenizer.decode(np.concatenate([[1], ids, [3, 0]])) == 'aé'


def _fake_lm1b_archive(path):
  root = '1-billion-word-language-modeling-benchmark-r13output'
  members = {
      f'{root}/training-monolingual.tokenized.shuffled/news.en-00001-of-00100': 'a b\nc d\n',
      f'{root}/training-monolingual.tokenized.shuffled/news.en-00002-of-00100': 'e f\n',
      f'{root}/heldout-monolingual.tokenized.shuffled/news.en.heldout-00000-of-00050': 'x y\n',
      f'{root}/README': 'not data\n',
  }
  with tarfile.open(path, 'w:gz') as tar:
    for name, content in members.items():
      info = tarfile.TarInfo(name)
      info.size = len(content.encode())
      tar.addfile(info, io.BytesIO(content.encode()))
  return str(path)


def test_tiny_shakespeare_and_lm1b_generate_without_tensorflow_from_their_downloads(tmp_path):
  text = ''.join(f'ROMEO {i}: hark\n' for i in range(100))
  downloads = {'input.txt': _write(tmp_path / 'input.txt', text),
               '.tar.gz': _fake_lm1b_archive(tmp_path / 'lm1b.tar.gz')}
  fake_download = lambda self, url: next(v for k, v in downloads.items() if url.endswith(k))
  with mock.patch.object(tfds.download.DownloadManager, 'download', fake_download):
    _prepare(builders.TinyShakespeare, tmp_path / 'tfds')
    _prepare(builders.Lm1b, tmp_path / 'tfds')
  read = lambda name, split: tfds.data_source(name, split=split, data_dir=tmp_path / 'tfds')
  parts = [read('tiny_shakespeare', s)[0]['text'].decode() for s in ('train', 'validation', 'test')]
  assert ''.join(parts) == text and len(parts[0]) == int(len(text) * 0.9)
  train = read('lm1b', 'train')
  assert sorted(train[i]['text'] for i in range(len(train))) == [b'a b', b'c d', b'e f']
  assert [read('lm1b', 'test')[0]['text']] == [b'x y']
  # And the datasets read the real (bytes) records back.
  cfg = lambda name: ml_collections.ConfigDict(
      {'name': name, 'seq_len': 7, 'stride': 0, 'data_dir': str(tmp_path / 'tfds')})
  shakespeare = registry.load(cfg('tiny_shakespeare'))
  assert shakespeare.decode(shakespeare.splits['test'].gather(np.array([0]))['inputs']) == (
      parts[2][:7])
  lm1b = registry.load(cfg('lm1b'))
  assert lm1b.decode(next(lm1b.eval_batches(batch_size=1))['inputs']) == 'x y'
  assert 'tensorflow' not in sys.modules
