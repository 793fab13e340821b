"""Character-level language modelling on a local text file (e.g. tinyshakespeare), 90/10 split by
position.

  --config.data.path=FILE is required. `--config.model.name=gpt|rnn|gru` switches architecture.
  get_config('small') is a CPU-sized variant (minutes on 2 cores).
"""

from experiments.configs.base import get_base_config
from seqmodels.sweep import variant


def get_config(arg: str = ''):
  size = variant(arg, ['small', 'full'], 'full', 'char_lm.py')
  c = get_base_config()
  c.data.name = 'text'
  c.data.path = ''
  c.data.seq_len = 128
  c.model.name = 'lstm'
  c.model.width, c.model.layers, c.model.heads = 512, 2, 8
  c.model.dropout = 0.2
  c.optim.lr, c.optim.warmup_steps, c.optim.weight_decay = 2e-3, 200, 0.1
  c.train.num_steps, c.train.batch_size = 5_000, 64
  c.train.eval_every, c.train.checkpoint_every, c.train.eval_batches = 500, 500, 50
  if size == 'small':
    c.data.seq_len = 64
    c.model.width, c.model.layers, c.model.heads, c.model.dropout = 128, 2, 4, 0.0
    c.train.num_steps, c.train.batch_size, c.train.eval_every, c.train.eval_batches = (
        1_000, 32, 250, 20)
  return c
