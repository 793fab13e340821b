"""Word- or subword-level language modelling on any local corpus: perplexity per word, bits per
character.

  python launch.py --config=experiments/configs/word_lm.py:small \
      --config.data.path='wikitext-2/wiki.{split}.tokens' --config.train.test_eval=True \
          --workdir=runs/wt2_lstm
data.path is one file (split 90/10 by position) or a path with '{split}' (train, validation under
any of the names validation/valid/val/dev, and test: WikiText's and PTB's layouts as they unpack).
Tokens are whitespace-separated words with '<eos>' for each newline (WikiText and PyTorch's
word_language_model), words seen fewer than data.min_count times in training being '<unk>';
`--config.data.tokenizer=bpe` (or unigram) learns data.vocab_size sentencepiece pieces from the
train split instead, for raw text. Every text run reports bits per character too, which compares
runs of any tokenization (char_lm.py's among them).
The full variant is Zaremba et al. (2014)'s medium LSTM (2 x 650, dropout 0.5, 35-token windows);
`:small` is CPU-sized (minutes on 2 cores). `--config.model.name=gpt|gru|ngram|...` switches
architecture. `--config.train.carry_state=True` trains a recurrent LM as Zaremba et al. and
PyTorch's word_language_model do: batch_size contiguous streams of the text, each window starting
from the state the last one ended in, and evaluates it the same way (bench/word_lm.py runs it beside
that example).
"""

from experiments.configs.base import get_base_config
from seqmodels.sweep import variant


def get_config(arg: str = ''):
  size = variant(arg, ['small', 'full'], 'full', 'word_lm.py')
  c = get_base_config()
  c.data.name, c.data.path, c.data.tokenizer, c.data.min_count = 'text', '', 'word', 1
  c.data.seq_len = 35
  c.model.name = 'lstm'
  c.model.width, c.model.layers, c.model.heads = 650, 2, 10
  c.model.dropout = 0.5
  c.model.order = 3  # the n-gram: trigrams
  c.optim.lr, c.optim.warmup_steps, c.optim.weight_decay, c.optim.clip_norm = 2e-3, 200, 0.1, 0.25
  c.train.num_steps, c.train.batch_size = 10_000, 32
  c.train.eval_every, c.train.checkpoint_every, c.train.eval_batches = 1_000, 1_000, 0
  c.train.keep_best = True
  # the softmax over the vocabulary is most of a step: words seen once are <unk> here
  if size == 'small':
    c.data.seq_len, c.data.min_count = 32, 2
    c.model.width, c.model.layers, c.model.heads, c.model.dropout = 128, 2, 4, 0.2
    c.optim.clip_norm = 1.0
    c.train.num_steps, c.train.batch_size, c.train.eval_every, c.train.checkpoint_every = (
        1_000, 32, 250, 250)
  return c
