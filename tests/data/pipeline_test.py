"""Tests of batch formatting, the train/eval batching contract, and prepare/load of every dataset."""

import itertools
import os
import subprocess
import sys
import textwrap

import chex
import ml_collections
import numpy as np
import pytest
import tensorflow_datasets as tfds
from tensorflow_datasets.testing import mocking as tfds_mocking

from seqmodels import errors
from seqmodels.data import pipeline
from seqmodels.data import tasks

PAD, BOS, SEP, EOS = pipeline.PAD, pipeline.BOS, pipeline.SEP, pipeline.EOS


def _cfg(data_dir, **overrides) -> ml_collections.ConfigDict:
  cfg = dict(name='reverse', min_len=1, max_len=6, num_symbols=5, num_train=40, num_validation=11,
             num_test=5, seed=0, path='', seq_len=8, stride=0, data_dir=str(data_dir))
  return ml_collections.ConfigDict({**cfg, **overrides})


@pytest.fixture(scope='module')
def reverse_cfg(tmp_path_factory):
  cfg = _cfg(tmp_path_factory.mktemp('tfds'))
  pipeline.prepare(cfg)
  return cfg


@pytest.fixture(scope='module')
def reverse_data(reverse_cfg):
  return pipeline.load(reverse_cfg)


def _ids_data(num_examples: int) -> pipeline.Data:
  """A Data whose train/validation examples are just their index, to track rows."""
  examples = pipeline.Examples(num_examples, lambda indices: {
      'id': indices.astype(np.int32), 'weights': np.ones((len(indices), 2), np.float32)})
  return pipeline.Data('lm', 1, 2, {'train': examples, 'validation': examples})


def _take(batches, n):
  return list(itertools.islice(batches, n))


def test_seq_example_is_bos_inputs_sep_targets_eos_with_weights_on_the_answer():
  ex = pipeline.format_seq_example(np.array([0, 2, 1]), np.array([1, 2, 0]), max_len=4)
  #        positions: 0    1  2  3  4    5  6  7  8    9   10
  seq = np.array([BOS, 4, 6, 5, SEP, 5, 6, 4, EOS, PAD, PAD])
  np.testing.assert_array_equal(ex['inputs'], seq[:-1])
  np.testing.assert_array_equal(ex['targets'], seq[1:])
  np.testing.assert_array_equal(ex['weights'], [0, 0, 0, 0, 1, 1, 1, 1, 0, 0])
  chex.assert_shape([ex['inputs'], ex['targets'], ex['weights']], (2 * 4 + 2,))
  assert ex['inputs'].dtype == np.int32 and ex['weights'].dtype == np.float32


def test_weighted_targets_of_lm_batches_are_exactly_the_answer_and_eos(reverse_data):
  batch = next(reverse_data.train_batches(batch_size=16, start_step=0, seed=0))
  chex.assert_shape([batch['inputs'], batch['targets'], batch['weights']], (16, 14))  # T = 2 * max_len + 2.
  for targets_T, weights_T in zip(batch['targets'], batch['weights']):
    answer = targets_T[weights_T == 1]
    assert answer[-1] == EOS and np.all(answer[:-1] >= pipeline.NUM_SPECIALS)
    sep = list(targets_T).index(SEP)
    np.testing.assert_array_equal(answer[:-1], targets_T[:sep][::-1])  # Reversed question.
  assert reverse_data.vocab_size == 5 + 4 and reverse_data.kind == 'lm'


def test_adding_batches_are_padded_with_mask_and_target(tmp_path):
  cfg = _cfg(tmp_path, name='adding', min_len=2, max_len=7)
  pipeline.prepare(cfg)
  data = pipeline.load(cfg)
  assert (data.kind, data.vocab_size, data.seq_len) == ('regression', 0, 7)
  batch = next(data.eval_batches(batch_size=4))
  chex.assert_shape([batch['values'], batch['markers'], batch['mask']], (4, 7))
  chex.assert_shape(batch['target'], (4,))
  for index in range(4):
    ex = tasks.adding_example(seed=0, split='validation', index=index, min_len=2, max_len=7)
    n = len(ex['values'])
    np.testing.assert_array_equal(batch['values'][index, :n], ex['values'])
    np.testing.assert_array_equal(batch['markers'][index, :n], ex['markers'])
    np.testing.assert_array_equal(batch['mask'][index], np.arange(7) < n)
    assert batch['target'][index] == ex['target']
  assert all(v.dtype == np.float32 for v in batch.values())


def test_two_processes_concatenated_equal_one_process_with_the_global_batch(reverse_data):
  single = _take(reverse_data.train_batches(batch_size=6, start_step=0, seed=5), 10)
  halves = [_take(reverse_data.train_batches(batch_size=3, start_step=0, seed=5, process_index=p,
                                             process_count=2), 10) for p in range(2)]
  for step in range(10):  # 10 steps of 6 rows span epochs of 40 examples.
    chex.assert_trees_all_equal(
        single[step], {k: np.concatenate([halves[0][step][k], halves[1][step][k]])
                       for k in single[step]})


def test_resuming_at_step_k_continues_the_same_batches(reverse_data):
  full = _take(reverse_data.train_batches(batch_size=4, start_step=0, seed=1), 15)
  resumed = _take(reverse_data.train_batches(batch_size=4, start_step=9, seed=1), 6)
  chex.assert_trees_all_equal(full[9:], resumed)
  multi = _take(reverse_data.train_batches(batch_size=2, start_step=9, seed=1, process_index=1,
                                           process_count=2), 6)
  chex.assert_trees_all_equal([{k: v[2:] for k, v in b.items()} for b in full[9:]], multi)


def test_train_stream_visits_every_example_once_per_epoch_reshuffled():
  data = _ids_data(12)
  ids = np.concatenate([b['id'] for b in _take(data.train_batches(batch_size=4, start_step=0,
                                                                  seed=0), 9)])
  epochs = ids.reshape(3, 12)
  for epoch in epochs:
    assert sorted(epoch.tolist()) == list(range(12))
  assert len({tuple(e) for e in epochs}) == 3  # A new permutation each epoch.
  again = np.concatenate([b['id'] for b in _take(data.train_batches(batch_size=4, start_step=0,
                                                                    seed=0), 9)])
  np.testing.assert_array_equal(ids, again)
  other = np.concatenate([b['id'] for b in _take(data.train_batches(batch_size=4, start_step=0,
                                                                    seed=1), 3)])
  assert not np.array_equal(ids[:12], other)


@pytest.mark.parametrize('process_count,batch_size', [(1, 4), (2, 3), (3, 2)])
def test_eval_covers_each_example_once_across_processes_with_zero_weight_padding(
    process_count, batch_size):
  data = _ids_data(11)
  per_process = [list(data.eval_batches(batch_size=batch_size, process_index=p,
                                        process_count=process_count))
                 for p in range(process_count)]
  assert len({len(batches) for batches in per_process}) == 1  # Same number of steps everywhere.
  seen = []
  for batches in per_process:
    for batch in batches:
      chex.assert_shape(batch['weights'], (batch_size, 2))
      real = batch['weights'][:, 0] == 1
      assert np.all(batch['weights'][~real] == 0)
      seen += batch['id'][real].tolist()
  assert sorted(seen) == list(range(11))


def test_eval_batches_are_the_split_in_order_and_stop_at_max_batches(reverse_data):
  batches = list(reverse_data.eval_batches(batch_size=4, split='validation'))
  assert len(batches) == 3  # 11 examples -> 4 + 4 + 3 and one padding row.
  for index in range(11):
    ex = tasks.seq_example('reverse', seed=0, split='validation', index=index, min_len=1,
                           max_len=6, num_symbols=5)
    expected = pipeline.format_seq_example(ex['inputs'], ex['targets'], max_len=6)
    chex.assert_trees_all_equal({k: v[index % 4] for k, v in batches[index // 4].items()},
                                expected)
  assert not batches[-1]['weights'][-1].any()
  assert len(list(reverse_data.eval_batches(batch_size=4, max_batches=2))) == 2
  with pytest.raises(ValueError, match='No split'):
    reverse_data.eval_batches(batch_size=4, split='dev')


def test_streamed_splits_batch_exactly_like_cached_ones(reverse_cfg, reverse_data, monkeypatch):
  monkeypatch.setattr(pipeline, 'MAX_CACHED_EXAMPLES', 0)
  streamed = pipeline.load(reverse_cfg)
  kwargs = dict(batch_size=7, start_step=3, seed=2, process_index=1, process_count=2)
  chex.assert_trees_all_equal(_take(reverse_data.train_batches(**kwargs), 8),
                              _take(streamed.train_batches(**kwargs), 8))
  chex.assert_trees_all_equal(list(reverse_data.eval_batches(batch_size=4)),
                              list(streamed.eval_batches(batch_size=4)))


def test_decode_renders_symbols_and_specials(reverse_data):
  assert reverse_data.decode(np.array([BOS, 4, 6, SEP, 6, 4, EOS, PAD])) == '<bos> 0 2 <sep> 2 0 <eos>'


def test_prepare_twice_is_a_no_op_and_concurrent_prepares_agree(tmp_path):
  cfg = _cfg(tmp_path, name='copy')
  script = textwrap.dedent(f"""
      import ml_collections
      from seqmodels.data import pipeline
      pipeline.prepare(ml_collections.ConfigDict({cfg.to_dict()!r}))
  """)
  repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  env = {**os.environ, 'PYTHONPATH': repo}
  procs = [subprocess.Popen([sys.executable, '-c', script], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE) for _ in range(2)]
  outputs = [proc.communicate(timeout=120) for proc in procs]
  for proc, (_, err) in zip(procs, outputs):
    assert proc.returncode == 0, err.decode()[-2000:]
    assert b'examples/s' not in err and b'\r' not in err  # TFDS's progress bars on a terminal only, not a pipe
  assert sum(b'Downloading and preparing' in out for out, _ in outputs) == 1  # Built once.
  dataset_dir = next((tmp_path / 'synthetic_seq').glob('copy_*/1.0.0'))
  mtimes = {p: p.stat().st_mtime_ns for p in dataset_dir.iterdir()}
  pipeline.prepare(cfg)
  assert {p: p.stat().st_mtime_ns for p in dataset_dir.iterdir()} == mtimes
  assert not list(tmp_path.glob('synthetic_seq/*/incomplete*'))
  batch = next(pipeline.load(cfg).eval_batches(batch_size=2))
  ex = tasks.seq_example('copy', seed=0, split='validation', index=0, min_len=1, max_len=6,
                         num_symbols=5)
  n = len(ex['inputs'])
  np.testing.assert_array_equal(batch['targets'][0, n + 1:2 * n + 1], ex['inputs'] + 4)


def test_local_text_lm_batches_are_next_char_windows(tmp_path):
  text = ''.join(f'{i}: all the world is a stage\n' for i in range(30))
  (tmp_path / 'play.txt').write_text(text)
  cfg = _cfg(tmp_path / 'tfds', name='text', path=str(tmp_path / 'play.txt'), seq_len=10)
  pipeline.prepare(cfg)
  data = pipeline.load(cfg)
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
  crops = pipeline.load(cfg)
  assert crops.splits['train'].size == split_at - 10
  window = crops.splits['train'].gather(np.array([7]))
  assert crops.decode(window['inputs'][0]) == text[7:17]


def test_stream_batches_read_every_stream_in_order_and_score_each_eval_token_once():
  data = pipeline.Data('lm', 200, 4, tokens={'train': np.arange(103), 'validation': np.arange(57)})
  # Training: 4 streams (2 rows x 2 processes) of 103 // 4 = 25 tokens, (25 - 1) // 4 = 6 windows an epoch.
  both = [list(itertools.islice(data.stream_batches(batch_size=2, process_index=p, process_count=2), 8))
          for p in range(2)]
  for step in range(8):
    k = step % 6
    inputs = np.concatenate([both[0][step]['inputs'], both[1][step]['inputs']])
    np.testing.assert_array_equal(inputs, 25 * np.arange(4)[:, None] + 4 * k + np.arange(4))
    np.testing.assert_array_equal(both[1][step]['targets'], 25 * np.arange(2, 4)[:, None] + 4 * k + 1 + np.arange(4))
    np.testing.assert_array_equal(both[0][step]['reset'], [float(k == 0)] * 2)
  resumed = next(data.stream_batches(batch_size=2, start_step=7, process_index=1, process_count=2))
  chex.assert_trees_all_equal(resumed, both[1][7])
  assert data.steps_per_epoch(4, streams=True) == 6  # train.num_epochs counts these epochs
  # Evaluation: 2 streams of 28 tokens, ceil(27 / 4) = 7 windows, the last one with 3 targets: every token but
  # the streams' first (0 and 28) and the one left over (56) is scored once.
  batches = list(data.stream_batches(batch_size=2, split='validation'))
  assert len(batches) == 7 and 'reset' not in batches[0]
  scored = np.concatenate([b['targets'][b['weights'] > 0] for b in batches])
  np.testing.assert_array_equal(np.sort(scored), [t for t in range(57) if t not in (0, 28, 56)])
  np.testing.assert_array_equal(batches[-1]['weights'], [[1, 1, 1, 0]] * 2)
  assert len(list(data.stream_batches(batch_size=2, split='validation', max_batches=3))) == 3
  with pytest.raises(errors.DataError, match=r'its 103 tokens in 32 streams \(config.train.batch_size\) are 3 '
                     r'tokens each, fewer than one window of config.data.seq_len \+ 1 = 5 tokens'):
    next(data.stream_batches(batch_size=32))
  with pytest.raises(ValueError, match="the 'test' split is not running text"):
    next(data.stream_batches(batch_size=2, split='test'))


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
    pipeline.prepare(cfg)
    data = pipeline.load(cfg)
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
  np.testing.assert_array_equal(data.encode(train_text[:4]), windows['inputs'][0])  # text -> the same ids
  assert 'eos_id' not in data.meta  # running text never ends


def test_lm1b_sentences_are_bos_bytes_eos_cut_or_padded(tmp_path, mock_tfds):
  ex = pipeline.format_sentence(b'hi', seq_len=5)
  np.testing.assert_array_equal(ex['inputs'], [BOS, 108, 109, EOS, PAD])
  np.testing.assert_array_equal(ex['weights'], [1, 1, 1, 0, 0])
  cut = pipeline.format_sentence('abcdefgh', seq_len=3)
  np.testing.assert_array_equal(cut['inputs'], [BOS, 101, 102])
  assert cut['weights'].all()
  cfg = _cfg(tmp_path, name='lm1b', seq_len=6)
  with mock_tfds(num_examples=3):
    pipeline.prepare(cfg)
    data = pipeline.load(cfg)
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
  pipeline.prepare(cfg)
  data = pipeline.load(cfg)
  assert sorted(data.splits) == ['test', 'train', 'validation']
  assert data.vocab_size == 2 + 5 + 7  # <unk>, <eos>; the cat sat on mat; 0..6 ('dog' and 'a' are not in train)
  words = lambda split, n: [data.decode(b['inputs'][0]) for b in data.eval_batches(batch_size=1, split=split)][:n]
  assert words('validation', 2) == ['the <unk> sat on mat', '3\nthe <unk> sat']  # windows of 5 tokens
  assert words('test', 1) == ['<unk> cat sat on the']
  # Each split's share of <unk> tokens is reported beside its bits/char, which <unk> makes a lower bound.
  for split, split_ids in data.tokens.items():
    assert data.meta['unk_fraction'][split] == np.mean(split_ids == 0)
  assert data.meta['unk_fraction']['train'] == 0 < data.meta['unk_fraction']['validation']
  metrics = pipeline.with_bits_per_char({'bits_per_token': 2.0}, data, 'validation')
  assert metrics['unk_fraction'] == data.meta['unk_fraction']['validation'] and 'bits_per_char' in metrics
  train = data.splits['train'].gather(np.arange(1))
  assert data.decode(train['inputs'][0]) == 'the cat sat on mat' and data.decode(train['targets'][0]) == (
      'cat sat on mat 0')
  np.testing.assert_array_equal(data.encode('cat dog\n'), [2, 0, 1])  # 60 times each: ties alphabetical


@pytest.mark.parametrize('tokenizer', ['char', 'word'])
def test_a_byte_order_mark_starting_each_file_is_not_part_of_the_text(tmp_path, tokenizer):
  texts = _split_files(tmp_path)
  for name, text in texts.items():
    (tmp_path / f'wiki.{name}.tokens').write_bytes(b'\xef\xbb\xbf' + text.encode())  # as Windows editors save
  cfg = _cfg(tmp_path / 'tfds', name='text', path=str(tmp_path / 'wiki.{split}.tokens'), seq_len=4,
             tokenizer=tokenizer, min_count=1)
  pipeline.prepare(cfg)
  data = pipeline.load(cfg)
  assert data.vocab_size == (2 + 5 + 7 if tokenizer == 'word' else len(set(''.join(texts.values()))))
  first = lambda split: data.decode(data.splits[split].gather(np.arange(1))['inputs'][0])
  assert first('train').startswith('the ') and first('validation').startswith('the ')


def test_text_subword_tokens_give_each_split_back_exactly(tmp_path):
  texts = _split_files(tmp_path)
  cfg = _cfg(tmp_path / 'tfds', name='text', path=str(tmp_path / 'wiki.{split}.tokens'), seq_len=4,
             tokenizer='bpe', vocab_size=300)
  pipeline.prepare(cfg)
  data = pipeline.load(cfg)
  for split, name in (('validation', 'valid'), ('test', 'test')):
    batches = list(data.eval_batches(batch_size=4, split=split))
    ids = np.concatenate([b['inputs'][b['weights'][:, 0] > 0].ravel() for b in batches])  # the windows, tiled
    every = data.encode(texts[name])
    assert data.decode(every) == texts[name]  # lossless
    np.testing.assert_array_equal(ids, every[:len(ids)])
    assert len(every) - len(ids) <= 4  # all but the tokens after the last whole window
  assert data.vocab_size <= 300
  cfg.tokenizer = 'char'  # another tokenization of the same files is another dataset
  pipeline.prepare(cfg)
  assert pipeline.load(cfg).vocab_size == len(set(''.join(texts.values())))


def test_a_min_count_that_keeps_no_word_is_one_line_naming_it_and_the_most_a_word_occurs(tmp_path):
  _split_files(tmp_path)
  cfg = _cfg(tmp_path / 'tfds', name='text', path=str(tmp_path / 'wiki.{split}.tokens'), seq_len=5,
             tokenizer='word', min_count=61)  # 'the', 'cat', 'sat', 'on', 'mat': 60 times each
  with pytest.raises(pipeline.errors.DataError, match=r"^config.data.min_count=61 keeps no word of the train split "
                     r"of .*wiki.\{split\}.tokens \(its most frequent word, 'the', occurs 60 times\), so every word "
                     r'would be <unk>: lower config.data.min_count to at most 60$'):
    pipeline.prepare(cfg)
  cfg.min_count = 60
  pipeline.prepare(cfg)
  assert pipeline.load(cfg).vocab_size == 2 + 5


def test_text_without_a_test_split_says_why_for_test_eval(tmp_path):
  texts = _split_files(tmp_path)
  (tmp_path / 'wiki.test.tokens').unlink()
  cfg = _cfg(tmp_path / 'tfds', name='text', path=str(tmp_path / 'wiki.{split}.tokens'), seq_len=5)
  pipeline.prepare(cfg)
  data = pipeline.load(cfg)
  assert 'test' not in data.splits and data.meta['no_test'] == f'no test file matches {tmp_path}/wiki.test.tokens'
  (tmp_path / 'one.txt').write_text(texts['train'])
  cfg.path = str(tmp_path / 'one.txt')
  pipeline.prepare(cfg)
  data = pipeline.load(cfg)
  assert 'test' not in data.splits and data.meta['no_test'] == (
      'a single file is split 90%/10% into train and validation')
  _split_files(tmp_path)
  cfg.path = str(tmp_path / 'wiki.{split}.tokens')
  pipeline.prepare(cfg)
  assert 'no_test' not in pipeline.load(cfg).meta


def test_a_train_file_of_whitespace_is_one_line_naming_it(tmp_path):
  (tmp_path / 'c.train.txt').write_text(' \n\n')
  (tmp_path / 'c.valid.txt').write_text('some words here\n' * 5)
  cfg = _cfg(tmp_path / 'tfds', name='text', path=str(tmp_path / 'c.{split}.txt'), seq_len=4, tokenizer='word')
  with pytest.raises(pipeline.errors.DataError, match=r'the train split of .*c.\{split\}.txt holds no text \(only '
                     r'whitespace\): fill it'):
    pipeline.prepare(cfg)
