"""word2vec (skip-gram or CBOW, negative sampling) on a local text, gensim's defaults.

  python launch.py --config=experiments/configs/word2vec.py:small \
      --config.data.path=../shared/data/tinyshakespeare.txt --workdir=runs/w2v
writes the run's vectors to runs/w2v/vectors.txt (word2vec's text format), which
`python -m seqmodels.analysis.word_vectors` evaluates and
`--config.model.pretrained_vectors=runs/w2v` loads into a word-level LM.
`--config.model.name=cbow` trains CBOW. The hyperparameters are
gensim's Word2Vec defaults (vector_size 100, window 5, negative 5, sample 1e-3, min_count 5, alpha
0.025 falling linearly to 1e-4, 5 epochs), with one difference the batching needs: a step updates
every pair of batch_size centers at once, on the mean loss of its pairs, so optim.lr is gensim's
alpha times the pairs of a batch (about 0.025 * batch_size * 5: with W = 5 a center has 6 context
words on average, fewer at a line's ends and after subsampling; CBOW, one pair a center:
--config.optim.lr=6.4, 0.025 * batch_size).
"""

from experiments.configs.base import get_base_config
from seqmodels.sweep import variant


def get_config(arg: str = ''):
  size = variant(arg, ['small', 'full'], 'full', 'word2vec.py')
  c = get_base_config()
  c.data.name, c.data.path, c.data.min_count = 'word2vec', '', 5
  c.data.window, c.data.negatives, c.data.subsample, c.data.ns_exponent = 5, 5, 1e-3, 0.75
  c.data.seq_len = 1  # a row is one center word
  c.model.name = 'skipgram'
  c.model.width, c.model.embed = 100, 0
  c.optim.name, c.optim.schedule = 'sgd', 'linear'
  c.train.batch_size = 256
  c.optim.lr = 0.025 * c.train.batch_size * 5
  c.optim.min_lr_ratio = 1e-4 / 0.025
  c.optim.warmup_steps, c.optim.weight_decay, c.optim.clip_norm = 0, 0.0, 0.0
  c.train.num_epochs = 5.0
  c.train.eval_every, c.train.checkpoint_every, c.train.log_every = 0, 0, 100
  c.train.eval_batches = 20
  if size == 'small':
    c.model.width = 50
    c.train.num_epochs = 1.0
  return c
