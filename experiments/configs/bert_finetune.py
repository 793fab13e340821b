"""Sequence classification: BERT fine-tuned from a pre-training run, the same encoder from scratch,
or an LSTM.

The default task is local: is a line of data.path real, or are the inner letters of its words of 4+
letters scrambled (data.source='scrambled', a spelling judgement)? 'shuffled' (inner words
reordered) is the harder word-order task; data.source='' with data.path=FILE.tsv (or
'DIR/{split}.tsv', one file per split) reads your own (text[, text_b], label) rows or the columns a
header names (GLUE's files: seqmodels/data/bert.py); glue/sst2 and imdb_reviews are TFDS sources.
  python launch.py --config=experiments/configs/bert_finetune.py:small --workdir=runs/bert_ft \
      --config.train.init_from=runs/bert_pt       # full fine-tuning of the pre-trained encoder
  ... --config.optim.freeze=bert                  # feature extraction: only the new head is trained
  ... --config.train.init_from=                   # the same encoder from scratch
  ... --config.model.name=lstm_classifier         # the LSTM baseline
experiments/sweeps/bert.py runs all four with their own learning rates. The encoder fields (width,
layers, heads, ffn, seq_len) must match the pre-training run's.
get_config('small') reads the mean of the last layer's token vectors (model.pool='mean'), not BERT's
[CLS] pooler: at that size next-sentence prediction, the only thing that trains the pooler, reaches
about 63%, and frozen [CLS] features classify at chance.
"""

from experiments.configs import bert_pretrain
from seqmodels.sweep import variant


def get_config(arg: str = ''):
  size = variant(arg, ['small', 'full'], 'full', 'bert_finetune.py')
  c = bert_pretrain.get_config(size)
  c.data.name, c.data.source = 'classify', 'scrambled'
  c.train.init_from = ''  # the pre-training workdir, e.g. runs/bert_pt
  c.optim.lr, c.optim.warmup_steps = 1e-4, 100
  c.train.num_steps, c.train.eval_every, c.train.checkpoint_every = 2_000, 500, 500
  c.train.eval_batches = 0
  if size == 'small':
    c.model.pool = 'mean'
    c.optim.lr, c.optim.warmup_steps = 1.5e-3, 20
    c.train.num_steps, c.train.eval_every, c.train.checkpoint_every = 300, 50, 300
    c.train.log_every = 50
  return c
