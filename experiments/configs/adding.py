"""The adding problem (Hochreiter & Schmidhuber 1997): read T (value, marker) pairs, output the sum
of the 2 marked.

A many-to-one regression (task kind 'regression'): the recurrent models read the sequence and
predict from their final state; 'transformer_regressor' attends over all steps. Metrics: mse (the
loss; predicting 1.0 scores 1/6) and accuracy = share of predictions within 0.04 of the target.
min_len = max_len: every sequence has length T, and the two marked values are one in each half, so
the memory span grows with T.
Used by experiments/sweeps/adding_vs_length.py; get_config('small') is CPU-sized, get_config()
GPU-sized.
"""

from experiments.configs.base import get_base_config
from seqmodels.sweep import variant


def get_config(arg: str = ''):
  size = variant(arg, ['small', 'full'], 'full', 'adding.py')
  c = get_base_config()
  c.data.name = 'adding'
  c.model.name = 'lstm'
  c.optim.lr, c.optim.clip_norm = 3e-3, 1.0
  if size == 'small':  # a shared 2-core CPU: ~20 s a run at T <= 100
    c.data.min_len = c.data.max_len = 20
    c.data.num_train, c.data.num_validation, c.data.num_test = 8_000, 256, 8
    c.model.width, c.model.layers, c.model.heads = 32, 1, 2
    c.optim.warmup_steps = 25
    c.train.num_steps, c.train.batch_size = 400, 32
    c.train.log_every, c.train.eval_every, c.train.checkpoint_every = 20, 200, 400
  else:
    c.data.min_len = c.data.max_len = 100
    c.data.num_train, c.data.num_validation, c.data.num_test = 100_000, 2_000, 2_000
    c.model.width, c.model.layers, c.model.heads = 128, 1, 4
    c.optim.warmup_steps = 200
    c.train.num_steps, c.train.batch_size = 10_000, 64
    c.train.log_every, c.train.eval_every, c.train.checkpoint_every = 100, 1_000, 2_000
  return c
