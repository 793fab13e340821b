"""Translation data: the toy task matches its definition; TFDS builders and tokenizers give exact
seq2seq batches from generated, local and (mocked) online corpora; BLEU of a perfect translation is
100."""


import numpy as np
import pytest
import tensorflow_datasets as tfds

from experiments.configs.base import get_base_config
from seqmodels import errors
from seqmodels.data import registry, translation


def _data_cfg(tmp_path, **kw):
  d = get_base_config().data
  d.data_dir = str(tmp_path / 'tfds')
  for k, v in kw.items():
    d[k] = v
  return d


def test_toy_translation_swaps_adjective_noun_pairs_by_hand():
  # num_words 8: ids 0 and 1 are adjectives.
  assert translation.toy_translate([0, 5, 6, 1, 0, 7], 8) == [5, 0, 6, 1, 7, 0]
  assert translation.toy_translate([4, 1], 8) == [4, 1]  # an adjective at the end stays


def test_toy_generator_matches_its_definition():
  num_words = 20
  src_words, tgt_words = translation.toy_lexicon(num_words, seed=3)
  assert len(set(src_words)) == len(set(tgt_words)) == num_words
  src_index = {w: i for i, w in enumerate(src_words)}
  for index in range(50):
    ex = translation.toy_example(seed=3, split='train', index=index, min_len=2, max_len=9,
                                 num_words=num_words)
    ids = [src_index[w] for w in ex['src'].split()]
    assert 2 <= len(ids) <= 9
    # Independent statement of the rule: scan left to right, swapping each (adjective, noun) pair
    # once.
    expected, i = [], 0
    while i < len(ids):
      pair = ids[i:i + 2]
      if len(pair) == 2 and pair[0] < num_words // 4 <= pair[1]:
        expected += [tgt_words[pair[1]], tgt_words[pair[0]]]
        i += 2
      else:
        expected.append(tgt_words[ids[i]])
        i += 1
    assert ex['tgt'].split() == expected
    again = translation.toy_example(seed=3, split='train', index=index, min_len=2, max_len=9,
                                    num_words=num_words)
    assert again == ex


def _check_batches(data, pairs, seq_len):
  batch = next(data.eval_batches(batch_size=4, split='validation'))
  assert set(batch) == {'src', 'src_len', 'tgt_in', 'tgt_out', 'weights'}
  assert (batch['src'].shape == batch['tgt_in'].shape == (4, seq_len) and
          batch['src'].dtype == np.int32)
  for i in range(4):
    n = int(batch['weights'][i].sum())
    assert (batch['tgt_in'][i, 0] == translation.BOS and
            batch['tgt_out'][i, n - 1] == translation.EOS)
    np.testing.assert_array_equal(batch['tgt_in'][i, 1:n], batch['tgt_out'][i, :n - 1])
    assert (np.all(batch['src'][i, batch['src_len'][i]:] == 0) and
            np.all(batch['src'][i, :batch['src_len'][i]] > 0))
    assert data.decode(batch['tgt_out'][i]) == pairs[i][1]  # detokenizes to the reference


def test_toy_dataset_with_sentencepiece_gives_seq2seq_batches(tmp_path):
  d = _data_cfg(tmp_path, name='toy_translation', num_symbols=12, min_len=2, max_len=5,
                num_train=300, num_validation=8, num_test=0, vocab_size=48, seq_len=16,
                tokenizer='bpe')
  registry.prepare(d)
  data = registry.load(d)
  assert (data.kind == 'seq2seq' and data.seq_len == 16 and
          data.meta['src_vocab_size'] == data.vocab_size)
  assert set(data.splits) == {'train', 'validation'} and data.splits['train'].size == 300
  assert data.meta['no_test'] == 'config.data.num_test=0'  # for train.test_eval's error
  pairs = data.meta['pairs']['validation']
  assert pairs[0] == tuple(translation.toy_example(seed=0, split='validation', index=0, min_len=2,
                                                   max_len=5, num_words=12).values())
  _check_batches(data, pairs, 16)
  # Special tokens are named alike in every vocabulary (attention maps label their rows and columns
  # with them).
  specials = [translation.PAD, translation.BOS, translation.EOS, translation.UNK]
  named = ['<pad>', '<s>', '</s>', '<unk>']
  assert data.meta['tgt_tokenizer'].pieces(specials) == named
  # before: PAD and BOS were '</s>'
  assert translation.CharLevel('ab').pieces(specials + [4]) == named + ['a']


def test_parallel_text_reads_local_files_with_char_vocabularies(tmp_path):
  corpus = tmp_path / 'corpus'
  corpus.mkdir()
  lines = {
      'train': (['ein Haus', 'das Haus', '', 'ein Boot'], ['a house', 'the house', 'x', 'a boat']),
      'dev': (['das Boot', 'ein Haus', 'das Haus', 'ein Boot'],
              ['the boat', 'a house', 'the house', 'a boat'])}
  for split, (src, tgt) in lines.items():
    (corpus / f'{split}.de').write_text('\n'.join(src) + '\n')
    (corpus / f'{split}.en').write_text('\n'.join(tgt) + '\n')
  d = _data_cfg(tmp_path, name='parallel_text', src_path=str(corpus / '{split}.de'),
                tgt_path=str(corpus / '{split}.en'), tokenizer='char', shared_vocab=False,
                seq_len=12)
  registry.prepare(d)
  data = registry.load(d)
  assert data.splits['train'].size == 3  # the pair with an empty side is skipped
  assert (data.meta['no_test'] ==
          f'no pair of test files matches {corpus}/test.de and {corpus}/test.en')
  assert data.meta['src_vocab_size'] != data.meta['tgt_vocab_size']
  _check_batches(data, data.meta['pairs']['validation'], 12)


def test_parallel_lines_split_at_newlines_only_so_pairs_stay_aligned(tmp_path):
  # U+2028, U+2029, \x0c, \x0b, \x1c and \x85 inside a sentence (str.splitlines breaks lines at
  # each); \r\n and a missing final newline on one side.
  src = 'ein\u2028Haus\ndas\x0cBoot\nein\x85Auto\r\nder\x1cHund\n'
  tgt = 'a\u2029house\nthe\x0bboat\na car\nthe dog'
  corpus = tmp_path / 'corpus'
  corpus.mkdir()
  for split in ('train', 'validation'):
    (corpus / f'{split}.de').write_text(src, encoding='utf-8', newline='')
    (corpus / f'{split}.en').write_text(tgt, encoding='utf-8', newline='')
  d = _data_cfg(tmp_path, name='parallel_text', src_path=str(corpus / '{split}.de'),
                tgt_path=str(corpus / '{split}.en'), tokenizer='char', seq_len=12)
  registry.prepare(d)
  pairs = registry.load(d).meta['pairs']['train']
  assert pairs == [('ein\u2028Haus', 'a\u2029house'), ('das\x0cBoot', 'the\x0bboat'),
                   ('ein\x85Auto', 'a car'), ('der\x1cHund', 'the dog')]


def test_a_byte_order_mark_starting_a_parallel_file_is_not_part_of_its_first_sentence(tmp_path):
  corpus = tmp_path / 'corpus'
  corpus.mkdir()
  for split in ('train', 'validation'):
    (corpus / f'{split}.de').write_bytes(b'\xef\xbb\xbfein Haus\ndas Boot\n')
    (corpus / f'{split}.en').write_bytes(b'\xef\xbb\xbfa house\nthe boat\n')
  d = _data_cfg(tmp_path, name='parallel_text', src_path=str(corpus / '{split}.de'),
                tgt_path=str(corpus / '{split}.en'), tokenizer='char', seq_len=12)
  registry.prepare(d)
  data = registry.load(d)
  assert data.meta['pairs']['train'] == [('ein Haus', 'a house'), ('das Boot', 'the boat')]
  assert '\ufeff' not in data.meta['src_tokenizer'].chars


def test_sentences_longer_than_seq_len_are_cut_with_a_warning_per_split_saying_how_many(
    tmp_path, caplog):
  corpus = tmp_path / 'corpus'
  corpus.mkdir()
  # 14 characters: cut
  (corpus / 'train.de').write_text('ein Haus\ndas Boot\nein langes Haus\nein Boot\n')
  (corpus / 'train.en').write_text('a house\nthe boat\na boat\nthe long boat\n')  # 13 + EOS: cut
  (corpus / 'validation.de').write_text('das Haus\n')
  (corpus / 'validation.en').write_text('the house\n')
  d = _data_cfg(tmp_path, name='parallel_text', src_path=str(corpus / '{split}.de'),
                tgt_path=str(corpus / '{split}.en'), tokenizer='char', seq_len=12)
  registry.prepare(d)
  with caplog.at_level('WARNING'):
    data = registry.load(d)
  assert (f"the train split of config.data.src_path={corpus / '{split}.de'} and "
          f"config.data.tgt_path={corpus / '{split}.en'}: 1 of its 4 source sentences (25.0%) are "
          "longer than config.data.seq_len=12 "
          'tokens and 1 targets '
          '(25.0%) longer than 11') in caplog.text and 'validation split' not in caplog.text
  caplog.clear()
  with caplog.at_level('WARNING'):
    registry.load(d)  # as a resume, a sweep's next trial or an analysis does: said once a process
  assert 'longer than config.data.seq_len' not in caplog.text
  batch = data.splits['train'].gather(np.arange(4))
  assert (batch['src_len'].tolist() == [8, 8, 12, 8] and
          batch['weights'].sum(1).tolist() == [8, 9, 7, 12])


@pytest.mark.parametrize('train_de,train_en,words', [
    ('ein Haus\ndas Boot\n'.encode(), b'a house\n', 'has 2 lines but'),
    ('gro\u00df\n'.encode('latin-1'), b'big\n', 'is not UTF-8 text'),
    (b'ein Haus\n\n', b'\nthe boat\n', 'hold no sentence pair'),
])
def test_unusable_parallel_files_fail_with_one_line_naming_the_file(
    tmp_path, train_de, train_en, words):
  corpus = tmp_path / 'corpus'
  corpus.mkdir()
  (corpus / 'train.de').write_bytes(train_de)
  (corpus / 'train.en').write_bytes(train_en)
  (corpus / 'validation.de').write_text('das Haus\n')
  (corpus / 'validation.en').write_text('the house\n')
  d = _data_cfg(tmp_path, name='parallel_text', src_path=str(corpus / '{split}.de'),
                tgt_path=str(corpus / '{split}.en'), tokenizer='char', seq_len=12)
  with pytest.raises(errors.DataError) as e:
    registry.prepare(d)
  message = str(e.value)
  assert words in message and str(corpus / 'train.de') in message and '\n' not in message


def test_a_vocab_size_too_small_for_the_characters_is_one_line_naming_it_and_leaves_no_file(
    tmp_path):
  corpus = tmp_path / 'corpus'
  corpus.mkdir()
  for split in ('train', 'validation'):
    (corpus / f'{split}.de').write_text('abcdefghijklmnopqrstuvwxyz\nABCDEFGHIJKLMNOPQRSTUVWXYZ\n')
    (corpus / f'{split}.en').write_text('0123456789\n.,;:!?-+*/\n')
  d = _data_cfg(tmp_path, name='parallel_text', src_path=str(corpus / '{split}.de'),
                tgt_path=str(corpus / '{split}.en'), tokenizer='bpe', vocab_size=20, seq_len=12)
  with pytest.raises(errors.DataError,
                     match=r'^config.data.vocab_size=20 for the source and target text of '
                     r'config.data.src_path=.*: a vocabulary of 20 pieces .* at least \d+$'):
    registry.prepare(d)
  assert not [p.name for p in (tmp_path / 'tfds' / 'translation_tokenizers').rglob('*')
              if p.is_file()]


@pytest.mark.parametrize('name', ['wmt14_translate/de-en', 'ted_hrlr_translate/pt_to_en'])
def test_online_translation_sets_load_through_tfds_mock_data(tmp_path, name):
  d = _data_cfg(tmp_path, name=name, tokenizer='byte', seq_len=24)
  with tfds.testing.mock_data(num_examples=6, policy=tfds.testing.MockPolicy.USE_CODE):
    registry.prepare(d)
    data = registry.load(d)
  src, tgt = translation.ONLINE[name]
  assert data.kind == 'seq2seq' and data.splits['train'].size == 6 and data.vocab_size == 260
  batch = next(data.eval_batches(batch_size=2))
  assert batch['src'].shape == (2, 24) and (src, tgt) != (tgt, src)


def test_bleu_of_a_perfect_translation_is_100_and_buckets_by_source_length():
  refs = ['the cat sat on the mat', 'a dog barked at the moon tonight',
          'it rained all day long in the city']
  scores = translation.corpus_scores(refs, refs)
  assert scores['bleu'] == pytest.approx(100.0) and scores['chrf'] == pytest.approx(100.0)
  assert scores['bleu_signature'].startswith('nrefs:1') and 'tok:13a' in scores['bleu_signature']
  assert translation.corpus_scores(['completely unrelated words here'] * 3, refs)['bleu'] < 5
  buckets = translation.bleu_by_length([3, 12, 14], refs, refs, width=5)
  assert [(b['min_len'], b['sentences']) for b in buckets] == [(0, 1), (10, 2)]
  assert all(b['bleu'] == pytest.approx(100.0) for b in buckets)


def test_attention_maps_npz_holds_weights_and_tokens(tmp_path):
  w = np.full((2, 3), 1 / 3, np.float32)
  translation.save_attention_maps(str(tmp_path), [(w, ['▁a', '▁b', '▁c'], ['▁x', '</s>'])])
  z = np.load(tmp_path / 'attention_maps.npz')
  assert (int(z['count']) == 1 and z['weights_0'].shape == (2, 3) and
          list(z['tgt_0']) == ['▁x', '</s>'])


BAD = [  # (field, value, words the one-line message must contain)
    ('model.attention', 'luong', ['config.model.attention', 'choose one of']),
    ('model.teacher_forcing', 1.5, ['config.model.teacher_forcing', '[0, 1]']),
    ('data.tokenizer', 'wordpiece', ['config.data.tokenizer', 'choose one of']),
    ('data.src_path', 'corpus.de', ['config.data.src_path', "'{split}'"]),
    ('decode.beam_size', 0, ['config.decode.beam_size', '>= 1']),
    ('decode.split', 'train', ['config.decode.split', "'validation' or 'test'"]),
]


@pytest.mark.parametrize('field,value,words', BAD, ids=[b[0] for b in BAD])
def test_bad_translation_config_gives_one_line_error_naming_field(field, value, words):
  from experiments.configs.translate import get_config
  from seqmodels import validation
  c = get_config()
  if field == 'data.src_path':
    c.data.name = 'parallel_text'
  section, name = field.split('.')
  c[section][name] = value
  with pytest.raises(errors.ConfigError) as e:
    validation.validate(c)
  assert '\n' not in str(e.value) and all(w in str(e.value) for w in words), str(e.value)
