"""One corpus over characters, subword pieces and words: n-gram, LSTM and GPT compared in bits per
character.

  python launch.py --config=experiments/configs/word_lm.py:small \
      --config.data.path=../shared/data/tinyshakespeare.txt \
      --sweep=experiments/sweeps/tokenizers.py:small --workdir=runs/tokenizers_small

Each tokenization's window holds about the same text (~160 characters: 160 characters, 56 BPE pieces
of a 2,000-piece vocabulary, 32 words), so every step trains on about the same characters. Bits per
character compare the characters and the lossless pieces exactly; words seen once in training are
'<unk>' (word_lm.py:small), which the word models need not spell, so their bits per character are a
lower bound of what spelling them would cost.
"""

from seqmodels import sweep

TOKENIZATIONS = {  # tokenizer -> (its overrides, the n-gram order)
    'char': ({'data.tokenizer': 'char', 'data.seq_len': 160}, 5),
    'bpe': ({'data.tokenizer': 'bpe', 'data.vocab_size': 2000, 'data.seq_len': 56}, 3),
    'word': ({'data.tokenizer': 'word', 'data.seq_len': 32}, 3),
}
MODELS = {'small': [{'model.name': 'lstm'},
                    {'model.name': 'gpt', 'model.layers': 4, 'model.dropout': 0.1}],
          'full': [{'model.name': 'lstm'},
                   {'model.name': 'gpt', 'model.layers': 6, 'model.dropout': 0.2}]}


def get_sweep(arg: str = ''):
  size = sweep.variant(arg, list(MODELS), 'full', 'tokenizers.py')
  return [{**data, **model} for data, order in TOKENIZATIONS.values()
          for model in [{'model.name': 'ngram', 'model.order': order}] + MODELS[size]]
