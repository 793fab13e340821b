"""Tokenizers of running text: word ids and lines, and lossless subword pieces."""

import numpy as np
import pytest

from seqmodels.data import tokenizers


def test_word_ids_are_unk_eos_then_training_words_by_frequency_and_a_newline_is_eos():
  tok = tokenizers.WordTokenizer.from_lines(['b a a', 'c b a', '<unk> d'], min_count=2)
  # c, d seen once; the corpus's <unk>
  assert tok.words == ['<unk>', '<eos>', 'a', 'b'] and tok.vocab_size == 4
  ids = tok.encode('a  c\n\nb <unk>')
  np.testing.assert_array_equal(ids, [2, 0, 1, 1, 3, 0])
  assert ids.dtype == np.int32
  assert tok.decode(ids) == 'a <unk>\n\nb <unk>'
  # a final newline is kept
  assert tok.encode('a\n').tolist() == [2, 1] and tok.decode([2, 1]) == 'a\n'


def test_subword_lines_give_the_text_back_exactly_with_eos_for_each_newline():
  train = ['the quick brown fox jumps over the lazy dog', 'a stitch in time saves nine'] * 20
  tok = tokenizers.SubwordLines(tokenizers.train_sentencepiece(train, 320, 'bpe', lossless=True))
  # runs of spaces, a blank line, a character never trained on
  text = '  the  lazy fox €\n\nsaves  nine time\n'
  ids = tok.encode(text)
  assert tok.decode(ids) == text
  assert (ids == tokenizers.SP_EOS).sum() == text.count('\n') and ids.dtype == np.int32
  # the unseen character is spelled in UTF-8 byte pieces
  assert tokenizers.SP_UNK not in ids.tolist()
  # pieces longer than characters
  assert len(tok.encode('the quick brown fox')) < len('the quick brown fox')


def test_a_vocabulary_too_small_for_the_characters_is_one_line_naming_the_size_needed():
  with pytest.raises(ValueError,
                     match=r'a vocabulary of 60 pieces is smaller than the \d+ that the characters '
                     r'of the text and the 256 byte pieces need: use a vocab_size of at least \d+'):
    tokenizers.train_sentencepiece(['some text to learn pieces of'] * 10, 60, 'unigram',
                                   lossless=True)
