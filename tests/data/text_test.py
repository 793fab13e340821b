"""Tests of running text: local text files (characters, bytes, words, subword pieces; one file or
one per split), tiny_shakespeare and lm1b (mocked TFDS), as windows, streams and sentences."""

import sys

import chex
import ml_collections
import numpy as np
import pytest
import tensorflow_datasets as tfds
from tensorflow_datasets.testing import mocking as tfds_mocking

from seqmodels import errors
from seqmodels.data import core
from seqmodels.data import registry
from seqmodels.data import text as text_data

PAD, BOS, EOS = core.PAD, core.BOS, core.EOS


def _cfg(data_dir, **overrides) -> ml_collections.ConfigDict:
  cfg = dict(name='reverse', min_len=1, max_len=6, num_symbols=5, num_train=40, num_validation=11,
             num_test=5, seed=0, path='', seq_len=8, stride=0, data_dir=str(data_dir))
  return ml_collections.ConfigDict({**cfg, **overrides})


def test_local_text_lm_batches_are_next_char_windows(tmp_path):
  text = ''.join(f'{i}: all the world is a stage\n' for i in range(30))
  (tmp_path / 'play.txt').write_text(text)
  cfg = _cfg(tmp_path / 'tfds', name='text', path=str(tmp_path / 'play.txt'), seq_len=10)
  registry.prepare(cfg)
  data = registry.load(cfg)
  assert (data.kind, data.vocab_size, data.seq_len) == ('lm', len(set(text)), 10)
  batch = next(data.eval_batches(batch_size=2))
  split_at = int(len(text) * 0.9)
  assert data.decode(batch['inputs'][1]) == text[split_at + 10:split_at + 20]
  assert data.decode(batch['targets'][1]) == text[split_at + 11:split_at + 21]
  assert batch['weights'].all()
  train = next(data.train_batches(batch_size=3, start_step=0, seed=0))
  chex.assert_shape(list(train.values()), (3, 10))
  assert 'tensorflow' not in sys.modules
  cfg.stride = 1  # every offset is a training window (nanoGPT's random crops), from the same build
  crops = registry.load(cfg)
  assert crops.splits['train'].size == split_at - 10
  window = crops.splits['train'].gather(np.array([7]))
  assert crops.decode(window['inputs'][0]) == text[7:17]


@pytest.mark.parametrize('tokenizer,text,unit,token', [
    ('auto', '\0' * 400, 'character', "'\\x00'"), ('byte', 'a' * 400, 'byte', "'a'")])
def test_a_text_of_one_distinct_token_is_refused_at_load(tmp_path, tokenizer, text, unit, token):
  path = tmp_path / 'nul.txt'
  path.write_text(text)  # before: trained to 0 bits/token without a word
  cfg = _cfg(tmp_path / 'tfds', name='text', path=str(path), seq_len=10, tokenizer=tokenizer,
             byte_level=tokenizer == 'byte')
  registry.prepare(cfg)
  with pytest.raises(errors.DataError) as e:
    registry.load(cfg)
  assert str(e.value) == (f"config.data.path='{path}': its text has one distinct {unit} ({token}, "
                          '360 times in the train split): there is nothing to predict: point it at '
                          'real text')


@pytest.fixture
def mock_tfds(monkeypatch):
  """`tfds.testing.mock_data` whose data sources also serve `__getitems__`.

  TFDS 4.9.10 installs its fake `__getitems__` on a MagicMock without binding `self`, so batch
  reads raise TypeError; this stand-in takes the arguments the mock actually passes.
  """
  monkeypatch.setattr(tfds_mocking, '_getitems',
                      lambda keys, generator, serialized=False: [generator[k] for k in keys])
  return lambda num_examples: tfds.testing.mock_data(
      num_examples=num_examples, policy=tfds.testing.MockPolicy.USE_CODE)


def test_tiny_shakespeare_windows_the_text_of_each_split(tmp_path, mock_tfds):
  cfg = _cfg(tmp_path, name='tiny_shakespeare', seq_len=4, stride=2)
  with mock_tfds(num_examples=2):
    registry.prepare(cfg)
    data = registry.load(cfg)
    source = tfds.data_source('tiny_shakespeare', split='train', data_dir=tmp_path)
    train_text = ''.join(source[i]['text'] for i in range(len(source)))
    val_source = tfds.data_source('tiny_shakespeare', split='validation', data_dir=tmp_path)
    val_text = ''.join(val_source[i]['text'] for i in range(len(val_source)))
  train = data.splits['train']
  assert train.size == (len(train_text) - 5) // 2 + 1
  windows = train.gather(np.arange(train.size))
  for i in range(train.size):
    assert data.decode(windows['inputs'][i]) == train_text[2 * i:2 * i + 4]
    assert data.decode(windows['targets'][i]) == train_text[2 * i + 1:2 * i + 5]
  val = data.splits['validation']
  val_windows = [data.decode(x) for x in val.gather(np.arange(val.size))['inputs']]
  assert val_windows == [val_text[s:s + 4] for s in range(0, len(val_text) - 4, 4)]  # No overlap.
  batch = next(data.train_batches(batch_size=3, start_step=0, seed=0))
  chex.assert_shape(list(batch.values()), (3, 4))
  # text -> the same ids
  np.testing.assert_array_equal(data.encode(train_text[:4]), windows['inputs'][0])
  assert 'eos_id' not in data.meta  # running text never ends


def test_lm1b_sentences_are_bos_bytes_eos_cut_or_padded(tmp_path, mock_tfds):
  ex = text_data.format_sentence(b'hi', seq_len=5)
  np.testing.assert_array_equal(ex['inputs'], [BOS, 108, 109, EOS, PAD])
  np.testing.assert_array_equal(ex['weights'], [1, 1, 1, 0, 0])
  cut = text_data.format_sentence('abcdefgh', seq_len=3)
  np.testing.assert_array_equal(cut['inputs'], [BOS, 101, 102])
  assert cut['weights'].all()
  cfg = _cfg(tmp_path, name='lm1b', seq_len=6)
  with mock_tfds(num_examples=3):
    registry.prepare(cfg)
    data = registry.load(cfg)
    batch = next(data.eval_batches(batch_size=2, split='validation'))
    text = tfds.data_source('lm1b', split='test', data_dir=tmp_path)[0]['text']
  assert (data.vocab_size, data.seq_len) == (260, 6)
  chex.assert_shape(list(batch.values()), (2, 6))
  assert data.decode(batch['inputs'][0]) == text[:5]
  # a prompt for samples: a sentence begun, ending where the sentence's EOS will
  np.testing.assert_array_equal(data.encode('hi'), [BOS, 108, 109])
  assert data.meta['eos_id'] == EOS


def _split_files(tmp_path) -> dict[str, str]:
  """A corpus in WikiText's layout: wiki.train.tokens, wiki.valid.tokens, wiki.test.tokens."""
  texts = {'train': ''.join(f'the cat sat on mat {i % 7}\n' for i in range(60)),
           'valid': 'the dog sat on mat 3\n' * 6, 'test': 'a cat sat on the mat\n' * 6}
  for split, text in texts.items():
    (tmp_path / f'wiki.{split}.tokens').write_text(text)
  return texts


def test_text_split_files_are_the_splits_and_words_are_learned_from_train_only(tmp_path):
  _split_files(tmp_path)
  cfg = _cfg(tmp_path / 'tfds', name='text', path=str(tmp_path / 'wiki.{split}.tokens'), seq_len=5,
             tokenizer='word', min_count=1)
  registry.prepare(cfg)
  data = registry.load(cfg)
  assert sorted(data.splits) == ['test', 'train', 'validation']
  # <unk>, <eos>; the cat sat on mat; 0..6 ('dog' and 'a' are not in train)
  assert data.vocab_size == 2 + 5 + 7
  words = lambda split, n: [data.decode(b['inputs'][0])
                            for b in data.eval_batches(batch_size=1, split=split)][:n]
  # windows of 5 tokens
  assert words('validation', 2) == ['the <unk> sat on mat', '3\nthe <unk> sat']
  assert words('test', 1) == ['<unk> cat sat on the']
  # Each split's share of <unk> tokens is reported beside its bits/char, which <unk> makes a lower
  # bound.
  for split, split_ids in data.tokens.items():
    assert data.meta['unk_fraction'][split] == np.mean(split_ids == 0)
  assert data.meta['unk_fraction']['train'] == 0 < data.meta['unk_fraction']['validation']
  metrics = core.with_bits_per_char({'bits_per_token': 2.0}, data, 'validation')
  assert (metrics['unk_fraction'] == data.meta['unk_fraction']['validation'] and
          'bits_per_char' in metrics)
  train = data.splits['train'].gather(np.arange(1))
  assert (data.decode(train['inputs'][0]) == 'the cat sat on mat' and
          data.decode(train['targets'][0]) == ('cat sat on mat 0'))
  # 60 times each: ties alphabetical
  np.testing.assert_array_equal(data.encode('cat dog\n'), [2, 0, 1])


@pytest.mark.parametrize('tokenizer', ['char', 'word'])
def test_a_byte_order_mark_starting_each_file_is_not_part_of_the_text(tmp_path, tokenizer):
  texts = _split_files(tmp_path)
  for name, text in texts.items():
    # as Windows editors save
    (tmp_path / f'wiki.{name}.tokens').write_bytes(b'\xef\xbb\xbf' + text.encode())
  cfg = _cfg(tmp_path / 'tfds', name='text', path=str(tmp_path / 'wiki.{split}.tokens'), seq_len=4,
             tokenizer=tokenizer, min_count=1)
  registry.prepare(cfg)
  data = registry.load(cfg)
  assert (
      data.vocab_size == (2 + 5 + 7 if tokenizer == 'word' else len(set(''.join(texts.values())))))
  first = lambda split: data.decode(data.splits[split].gather(np.arange(1))['inputs'][0])
  assert first('train').startswith('the ') and first('validation').startswith('the ')


def test_text_subword_tokens_give_each_split_back_exactly(tmp_path):
  texts = _split_files(tmp_path)
  cfg = _cfg(tmp_path / 'tfds', name='text', path=str(tmp_path / 'wiki.{split}.tokens'), seq_len=4,
             tokenizer='bpe', vocab_size=300)
  registry.prepare(cfg)
  data = registry.load(cfg)
  for split, name in (('validation', 'valid'), ('test', 'test')):
    batches = list(data.eval_batches(batch_size=4, split=split))
    # the windows, tiled
    ids = np.concatenate([b['inputs'][b['weights'][:, 0] > 0].ravel() for b in batches])
    every = data.encode(texts[name])
    assert data.decode(every) == texts[name]  # lossless
    np.testing.assert_array_equal(ids, every[:len(ids)])
    assert len(every) - len(ids) <= 4  # all but the tokens after the last whole window
  assert data.vocab_size <= 300
  cfg.tokenizer = 'char'  # another tokenization of the same files is another dataset
  registry.prepare(cfg)
  assert registry.load(cfg).vocab_size == len(set(''.join(texts.values())))


def test_a_min_count_that_keeps_no_word_is_one_line_naming_it_and_the_most_a_word_occurs(tmp_path):
  _split_files(tmp_path)
  cfg = _cfg(tmp_path / 'tfds', name='text', path=str(tmp_path / 'wiki.{split}.tokens'), seq_len=5,
             tokenizer='word', min_count=61)  # 'the', 'cat', 'sat', 'on', 'mat': 60 times each
  with pytest.raises(errors.DataError, match=r"^config.data.min_count=61 keeps no word of the "
                     r"train split of .*wiki.\{split\}.tokens \(its most frequent word, 'the', "
                     r"occurs 60 times\), so every word "
                     r'would be <unk>: lower config.data.min_count to at most 60$'):
    registry.prepare(cfg)
  cfg.min_count = 60
  registry.prepare(cfg)
  assert registry.load(cfg).vocab_size == 2 + 5


def test_text_without_a_test_split_says_why_for_test_eval(tmp_path):
  texts = _split_files(tmp_path)
  (tmp_path / 'wiki.test.tokens').unlink()
  cfg = _cfg(tmp_path / 'tfds', name='text', path=str(tmp_path / 'wiki.{split}.tokens'), seq_len=5)
  registry.prepare(cfg)
  data = registry.load(cfg)
  assert ('test' not in data.splits and
          data.meta['no_test'] == f'no test file matches {tmp_path}/wiki.test.tokens')
  (tmp_path / 'one.txt').write_text(texts['train'])
  cfg.path = str(tmp_path / 'one.txt')
  registry.prepare(cfg)
  data = registry.load(cfg)
  assert 'test' not in data.splits and data.meta['no_test'] == (
      'a single file is split 90%/10% into train and validation')
  _split_files(tmp_path)
  cfg.path = str(tmp_path / 'wiki.{split}.tokens')
  registry.prepare(cfg)
  assert 'no_test' not in registry.load(cfg).meta


def test_a_train_file_of_whitespace_is_one_line_naming_it(tmp_path):
  (tmp_path / 'c.train.txt').write_text(' \n\n')
  (tmp_path / 'c.valid.txt').write_text('some words here\n' * 5)
  cfg = _cfg(tmp_path / 'tfds', name='text', path=str(tmp_path / 'c.{split}.txt'), seq_len=4,
             tokenizer='word')
  with pytest.raises(errors.DataError, match=r'the train split of .*c.\{split\}.txt holds no text '
                     r'\(only whitespace\): fill it'):
    registry.prepare(cfg)
