"""Tests for seqmodels/data/bert.py: MLM masking statistics (15%, 80/10/10), NSP pairs 50/50, exact
(resumable) masked batches, classification from TSV, the local 'shuffled'/'scrambled' tasks, no
validation line seen in pre-training, and TFDS sources (mocked)."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from experiments.configs.base import get_base_config
from seqmodels import errors
from seqmodels.data import bert, registry

WORDS = ('the a king queen lord lady speaks sleeps runs sees loves hates good bad '
         'old young here there'.split())


def write_text(path, n=400, seed=0):
  rng = np.random.default_rng(seed)
  lines = [' '.join(rng.choice(WORDS, rng.integers(4, 10))) for _ in range(n)]
  path.write_text('\n'.join(lines) + '\n')
  return str(path)


def data_config(tmp_path, name='mlm', source='', seq_len=32):
  c = get_base_config().data
  c.name, c.source, c.seq_len, c.data_dir = name, source, seq_len, str(tmp_path / 'tfds')
  c.path = write_text(tmp_path / 'text.txt')
  return c


def test_mlm_masking_chooses_15_percent_and_replaces_80_10_10():
  rng = np.random.default_rng(0)
  tokens_BxT = rng.integers(bert.NUM_SPECIALS, bert.VOCAB_SIZE, (4000, 64)).astype(np.int32)
  tokens_BxT[:, 0], tokens_BxT[:, 40:] = bert.CLS, bert.PAD  # 39 real tokens per row
  out = bert.mask_tokens(tokens_BxT, np.arange(4000), seed=3)
  chosen = out['weights'] > 0
  # specials and padding are never chosen
  assert not chosen[:, 0].any() and not chosen[:, 40:].any()
  np.testing.assert_allclose(chosen.sum(1), round(0.15 * 39))
  np.testing.assert_array_equal(out['targets'], tokens_BxT)
  masked = (out['inputs'] == bert.MASK)[chosen].mean()
  kept = (out['inputs'] == tokens_BxT)[chosen].mean()
  randomized = 1 - masked - kept
  assert (abs(masked - 0.8) < 0.01 and abs(kept - 0.1 - 0.1 / 256) < 0.01 and
          abs(randomized - 0.1) < 0.01)
  np.testing.assert_array_equal(out['inputs'][~chosen], tokens_BxT[~chosen])
  again = bert.mask_tokens(tokens_BxT[:5], np.arange(5), seed=3)
  np.testing.assert_array_equal(again['inputs'], out['inputs'][:5])  # a function of (seed, row)


def test_nsp_pairs_are_half_real_next_sentences_with_segments():
  lines = [f'line {i}' for i in range(4000)]
  pairs = bert.nsp_pairs(lines, 24, seed=0)
  assert abs(pairs['next'].mean() - 0.5) < 0.03
  for i in range(50):
    text = bert.decode(pairs['tokens'][i])
    a, b = text.split(' [SEP] ')[:2]
    assert a == f'[CLS] line {i}' and (b == f'line {i + 1}') == bool(pairs['next'][i])
    sep = list(pairs['tokens'][i]).index(bert.SEP)
    assert pairs['segments'][i, :sep + 1].sum() == 0 and pairs['segments'][i, sep + 1] == 1


def test_mlm_training_batches_are_exact_under_resume_and_process_split(tmp_path):
  c = data_config(tmp_path)
  registry.prepare(c)
  data = registry.load(c)
  assert data.kind == 'mlm' and data.vocab_size == bert.VOCAB_SIZE
  # for train.test_eval
  assert data.meta['no_test'] == 'a single file is split 90%/10% into train and validation'
  one = data.train_batches(batch_size=8, start_step=0, seed=1)
  batches = [next(one) for _ in range(3)]
  resumed = next(data.train_batches(batch_size=8, start_step=2, seed=1))
  half = next(data.train_batches(batch_size=4, start_step=2, seed=1, process_index=1,
                                 process_count=2))
  for k in batches[2]:
    np.testing.assert_array_equal(resumed[k], batches[2][k])
    np.testing.assert_array_equal(half[k], batches[2][k][4:])
  assert not np.array_equal(batches[0]['inputs'], batches[1]['inputs'])
  assert set(batches[0]) == {'inputs', 'segments', 'targets', 'weights', 'next', 'weight'}
  ev = next(data.eval_batches(batch_size=8))
  np.testing.assert_array_equal(ev['inputs'], next(data.eval_batches(batch_size=8))['inputs'])


def test_classification_from_tsv_with_pairs_and_named_labels(tmp_path):
  rows = ['text\ttext_b\tlabel'] + [f'first {i}\tsecond {i}\t{"yes" if i % 3 else "no"}'
                                    for i in range(30)]
  (tmp_path / 'pairs.tsv').write_text('\n'.join(rows) + '\n')
  c = data_config(tmp_path, 'classify')
  c.path = str(tmp_path / 'pairs.tsv')
  data = registry.load(c)
  assert (data.kind == 'classify' and data.meta['num_classes'] == 2 and
          data.meta['classes'] == ['no', 'yes'])
  assert data.splits['train'].size == 27 and data.splits['validation'].size == 3
  assert data.meta['no_test'] == 'a single file is split 90%/10% into train and validation'
  batch = next(data.eval_batches(batch_size=4))
  assert batch['weight'].tolist() == [1, 1, 1, 0]  # the padding row
  text = bert.decode(batch['inputs'][0])
  i = int(text.split()[2])
  assert (text == f'[CLS] first {i} [SEP] second {i} [SEP] ' and
          batch['label'][0] == (1 if i % 3 else 0))


def test_a_table_is_tsv_by_its_extension_in_any_case(tmp_path):
  (tmp_path / 'UPPER.TSV').write_text(''.join(f'good, fine film {i}\t{i % 2}\n' for i in range(10)))
  c = data_config(tmp_path, 'classify')
  c.path = str(tmp_path / 'UPPER.TSV')
  data = registry.load(c)
  assert data.meta['classes'] == ['0', '1']  # as CSV, ' fine film 0\t0' was a label
  assert bert.decode(data.splits['train'].gather(np.arange(1))['inputs'][0]).startswith(
      '[CLS] good, fine film ')


def test_a_train_split_of_one_class_is_refused_and_a_class_it_lacks_is_a_warning(tmp_path, caplog):
  (tmp_path / 'train.tsv').write_text('text\tlabel\n' + 'a good film\tpos\n' * 5)
  (tmp_path / 'dev.tsv').write_text('text\tlabel\na good film\tpos\na bad film\tneg\n')
  c = data_config(tmp_path, 'classify')
  c.path = str(tmp_path / '{split}.tsv')
  with pytest.raises(
      errors.DataError, match=r"^the train split of config.data.path='.*\{split\}.tsv' holds "
      r'examples of 1 class only \(pos\): a classifier needs examples of at least 2'):
    registry.load(c)
  (tmp_path / 'train.tsv').write_text('text\tlabel\n' + 'a good film\tpos\nan old film\tmeh\n' * 3)
  with caplog.at_level('WARNING'):
    data = registry.load(c)
  assert data.meta['classes'] == ['meh', 'neg', 'pos']
  assert ("the validation split of config.data.path=" in caplog.text and
          "1 examples of label(s) 'neg'" in caplog.text)


def test_classification_from_glue_style_split_files_by_their_header(tmp_path):
  # QNLI's layout: an index column, two named text columns, string labels; dev.tsv is the validation
  # split; the test file has no labels; sentences hold unpaired quotes, which a .tsv keeps (no
  # quoting)
  header = 'index\tquestion\tsentence\tlabel\n'
  rows = lambda n, labels: ''.join(f'{i}\tis "it {i}?\tit is {i}\t{labels[i % 2]}\n'
                                   for i in range(n))
  (tmp_path / 'train.tsv').write_text(header + rows(10, ['entailment', 'not_entailment']))
  (tmp_path / 'dev.tsv').write_text(header + rows(4, ['not_entailment', 'not_entailment']))
  (tmp_path / 'test.tsv').write_text('index\tquestion\tsentence\n0\tis it?\tit is\n')
  c = data_config(tmp_path, 'classify')
  c.path = str(tmp_path / '{split}.tsv')
  data = registry.load(c)
  assert (data.meta['classes'] == ['entailment', 'not_entailment'] and
          set(data.splits) == {'train', 'validation'})
  assert 'test.tsv has no labels' in data.meta['no_test']
  assert data.splits['train'].size == 10 and data.splits['validation'].size == 4
  train = data.splits['train'].gather(np.arange(10))
  assert (bert.decode(train['inputs'][3]) == '[CLS] is "it 3? [SEP] it is 3 [SEP] ' and
          train['label'][3] == 1)
  assert data.splits['validation'].gather(np.arange(4))['label'].tolist() == [1, 1, 1, 1]


def test_mlm_reads_one_text_file_per_split_with_a_fixed_test_split(tmp_path):
  for split, seed in (('train', 0), ('valid', 1), ('test', 2)):
    write_text(tmp_path / f'{split}.txt', n=60, seed=seed)
  c = data_config(tmp_path, 'mlm', seq_len=128)
  c.path = str(tmp_path / '{split}.txt')
  data = registry.load(c)
  lines = bert.split_lines(c.path)
  assert set(data.splits) == {'train', 'validation', 'test'} and len(lines['test']) == 60
  test = data.splits['test'].gather(np.arange(data.splits['test'].size))
  np.testing.assert_array_equal(test['inputs'],
                                registry.load(c).splits['test'].gather(np.arange(60))['inputs'])
  first = bert.decode(test['targets'][0])[len('[CLS] '):].split(' [SEP] ')[0]
  assert first == lines['test'][0] and (test['weights'] > 0).any()


def test_classification_paths_that_cannot_work_are_one_line_naming_the_fix(tmp_path):
  from seqmodels import validation
  (tmp_path / 'train.tsv').write_text('text\tlabel\ngood\t1\n')
  c = get_base_config()
  c.model.name, c.data.name, c.data.source = 'bert', 'classify', 'scrambled'
  for path, message in ((tmp_path / 'train.tsv',
                         r"is a table, but config.data.source='scrambled' makes a task of "
                         r"the lines of a text file: set --config.data.source= \(empty\)"),
                        (tmp_path / '{split}.tsv', r"config.data.path='.*\{split\}.tsv': no "
                         r"validation file \(.*validation/valid/val/dev.tsv\): a TSV/CSV \(.tsv: "
                         r"tab-separated, no quoting")):
    c.data.path = str(path)
    with pytest.raises(errors.ConfigError, match=message):
      validation.validate(c)
    c.data.source = ''


@pytest.mark.parametrize('name,content,words', [
    ('ragged.tsv', 'text\tlabel\ngood one\t1\nno label here\n'.encode(),
     'row 3 has 1 tab-separated fields'),
    ('header_only.csv', b'text,label\n', 'has no rows'),
    ('wide.tsv', b'a\tb\tc\tlabel\nx\ty\tz\t1\n', 'names no text column, or more than two'),
    ('four.csv', b'x,y,z,1\n', 'row 1 has 4 comma-separated fields'),
    ('unlabelled.tsv', b'index\tsentence\n0\tgood\n', "names no label column: name it 'label'"),
    ('latin.csv', 'gro\u00df,1\n'.encode('latin-1'), 'is not UTF-8 text'),
])
def test_unusable_classification_tables_fail_with_one_line_naming_file_and_row(
    tmp_path, name, content, words):
  (tmp_path / name).write_bytes(content)
  c = data_config(tmp_path, 'classify')
  c.path = str(tmp_path / name)
  with pytest.raises(errors.DataError) as e:
    registry.load(c)
  assert words in str(e.value) and name in str(e.value) and '\n' not in str(e.value)


@pytest.mark.parametrize('name,source,files,words', [
    ('mlm', '', {'one.txt': 'the only line\n\n'},
     'holds 1 line(s) of text: its first 90% of lines train'),
    ('mlm', '', {'c.train.txt': 'a line\nanother\n', 'c.valid.txt': ' \n'}, 'the validation file'),
    ('classify', '', {'one.tsv': 'a fine film\t1\n'},
     'has 1 row: its rows are shuffled and split 90/10'),
    ('classify', 'shuffled', {'short.txt': 'two words\n' * 20},
     "'shuffled' can corrupt none of the 18 lines"),
])
def test_too_little_text_for_the_splits_is_one_line_naming_the_path(
    tmp_path, name, source, files, words):
  for file, content in files.items():
    (tmp_path / file).write_text(content)
  c = data_config(tmp_path, name, source)
  c.path = str(tmp_path / (next(iter(files)) if len(files) == 1 else 'c.{split}.txt'))
  with pytest.raises(errors.DataError) as e:
    registry.load(c)
  assert (words in str(e.value) and f'config.data.path={c.path!r}' in str(e.value) and
          '\n' not in str(e.value))


def test_local_tasks_are_balanced_and_keep_the_first_and_last_word_or_letter(tmp_path):
  for source in ('shuffled', 'scrambled'):
    data = registry.load(data_config(tmp_path, 'classify', source))
    labels = data.splits['train'].gather(np.arange(data.splits['train'].size))['label']
    assert abs(labels.mean() - 0.5) < 0.1 and data.meta['classes'] == [source, 'real']
  lines = ['A b c d e.', 'One two three four!', 'So so so end.']
  texts, labels = bert.corrupted_task(lines * 20, seed=0, source='shuffled')
  assert len(texts) == 40  # 'So so so end.' has no second order of its inner words
  for text, label in zip(texts, labels):
    assert (text in lines[:2]) == bool(label)
    # only the inner words move: case and final punctuation do not give the label away
    words = text.split()
    assert (words[0], words[-1]) in (('A', 'e.'), ('One', 'four!')) and len(words) in (4, 5)
  # words of >= 4 letters, 2 inner ones differ
  lines = ['Kate, be good.', 'I see a crab and Kate', 'You look so']
  texts, labels = bert.corrupted_task(lines * 20, seed=0, source='scrambled')
  # only 'crab' and 'Kate' qualify ('Kate,' 'good.' 'look' not)
  assert len(texts) == 20 and 0 < labels.sum() < 20
  assert (set(texts) == {lines[1], 'I see a carb and Ktae'} and
          all((t == lines[1]) == y for t, y in zip(texts, labels)))


def test_pretraining_never_sees_the_lines_the_classification_task_validates_on(tmp_path):
  c = data_config(tmp_path, 'mlm', seq_len=128)  # 128 bytes hold any two lines of write_text
  lines = bert.split_lines(c.path)
  n = len(lines['train']) + len(lines['validation'])
  assert len(lines['validation']) == n - int(n * bert.TRAIN_FRACTION)
  held_out = set(lines['validation']) - set(lines['train'])
  mlm = registry.load(c).splits['train']
  tokens = mlm.gather(np.arange(mlm.size))['tokens']
  seen = {s for row in tokens for s in bert.decode(row)[len('[CLS] '):].split(' [SEP] ') if s}
  # sentence B too: random lines of the same split
  assert seen <= set(lines['train']) and not seen & held_out
  c = data_config(tmp_path, 'classify', 'shuffled', seq_len=128)
  ev = registry.load(c).splits['validation']
  batch = ev.gather(np.arange(ev.size))
  real = {bert.decode(row)[len('[CLS] '):-len(' [SEP] ')]
          for row, y in zip(batch['inputs'], batch['label']) if y}
  assert real and real <= set(lines['validation'])


def test_tfds_sources_read_through_data_source(tmp_path):
  with tfds.testing.mock_data(num_examples=10):
    c = data_config(tmp_path, 'classify', 'imdb_reviews')
    data = registry.load(c)
    assert data.splits['train'].size == 10 and data.meta['num_classes'] == 2
    c = data_config(tmp_path, 'mlm', 'lm1b')
    data = registry.load(c)
    assert data.splits['train'].size == 10
    assert next(data.train_batches(batch_size=2, start_step=0, seed=0))['inputs'].shape == (2, 32)


def test_glue_sst2_builds_without_tensorflow_and_loads(tmp_path, monkeypatch):
  sst = tmp_path / 'SST-2'
  sst.mkdir()
  rows = (
      lambda n: 'sentence\tlabel\n' +
      ''.join(f'movie number {i} was {"good" if i % 2 else "bad"} \t{i % 2}\n' for i in range(n)))
  (sst / 'train.tsv').write_text(rows(12))
  (sst / 'dev.tsv').write_text(rows(4))
  (sst / 'test.tsv').write_text('index\tsentence\n0\tan unlabelled one\n')
  monkeypatch.setattr(bert.GlueSst2, '_extracted_dir', lambda self, dl_manager: sst)
  c = data_config(tmp_path, 'classify', 'glue/sst2')
  registry.prepare(c)
  data = registry.load(c)
  assert data.splits['train'].size == 12 and data.splits['validation'].size == 4
  batch = data.splits['validation'].gather(np.arange(4))
  assert (batch['label'].tolist() == [0, 1, 0, 1] and
          bert.decode(batch['inputs'][1]).startswith('[CLS] movie number 1'))


def test_a_dataset_that_cannot_be_prepared_here_is_one_data_error_naming_the_fix(
    tmp_path, monkeypatch):
  # its TFDS builder imports TensorFlow, which is not installed
  c = data_config(tmp_path, 'mlm', 'wiki40b/en')
  with pytest.raises(errors.DataError, match=r'wiki40b/en is not prepared in .*tfds build '
                     r'wiki40b/en --file_format=array_record'):
    registry.prepare(c)

  def offline(self, **kwargs):
    raise OSError('Failed to resolve host: Name or service not known\nmore detail')
  monkeypatch.setattr(tfds.core.DatasetBuilder, 'download_and_prepare', offline)
  c = data_config(tmp_path, 'mlm', 'lm1b')
  with pytest.raises(errors.DataError,
                     match=r'^config\.data\.source=lm1b could not be downloaded and prepared in '
                     r'.* \(Failed to resolve host: Name or service not known\): run once'):
    registry.prepare(c)
