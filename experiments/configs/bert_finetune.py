"""Sequence classification: BERT fine-tuned from a pre-training run, the same encoder from scratch, or an LSTM.

The default task is local: is a line of data.path real or word-shuffled (data.source='shuffled')? Set
data.source='' and data.path=FILE.tsv for your own (text[, text_b], label) rows, or glue/sst2 / imdb_reviews.
  python launch.py --config=experiments/configs/bert_finetune.py:small --workdir=runs/bert_ft \
      --config.train.init_from=runs/bert_pt        # full fine-tuning of the pre-trained encoder
  ... --config.optim.freeze=bert                   # feature extraction: only the new head is trained
  ... --config.train.init_from=                    # the same encoder from scratch
  ... --config.model.name=lstm_classifier          # the LSTM baseline
The encoder fields (width, layers, heads, ffn, seq_len) must match the pre-training run's.
"""

from experiments.configs import bert_pretrain


def get_config(arg: str = ''):
  c = bert_pretrain.get_config(arg)
  c.data.name, c.data.source = 'classify', 'shuffled'
  c.train.init_from = ''  # the pre-training workdir, e.g. runs/bert_pt
  c.optim.lr, c.optim.warmup_steps = 1e-4, 100
  c.train.num_steps, c.train.eval_every, c.train.checkpoint_every = 2_000, 500, 500
  c.train.eval_batches = 0
  if arg == 'small':
    c.optim.lr, c.optim.warmup_steps = 5e-4, 20
    c.train.num_steps, c.train.eval_every, c.train.checkpoint_every = 300, 150, 300
  return c
