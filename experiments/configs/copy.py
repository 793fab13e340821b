"""The copy task as language modelling: read a sequence, then reproduce it after a separator.

Default: a 2-layer LSTM. `--config.model.name=gpt` (or the sweep experiments/sweeps/lstm_vs_gpt.py)
for GPT. `get_config('long')` makes the sequences longer (up to 64 symbols).
"""

from experiments.configs.base import get_base_config
from seqmodels.sweep import variant


def get_config(arg: str = ''):
  length = variant(arg, ['short', 'long'], 'short', 'copy.py')
  c = get_base_config()
  c.data.name = 'copy'
  c.data.min_len, c.data.max_len = 1, (64 if length == 'long' else 16)
  c.data.num_symbols = 8
  c.data.num_train, c.data.num_validation = 20_000, 512
  c.model.name = 'lstm'
  c.model.width, c.model.layers = 128, 2
  c.optim.lr, c.optim.warmup_steps = 3e-3, 50
  c.train.num_steps = 600
  c.train.batch_size = 64
  c.train.log_every, c.train.eval_every, c.train.checkpoint_every = 50, 200, 200
  return c
