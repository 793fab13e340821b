"""Long-range memory: the copy task at one fixed length (min_len = max_len), for sweeps over
data.max_len.

The model reads max_len symbols, a separator, then must reproduce them: the first target symbol is
max_len + 1 steps after the symbol it copies, so the length is the memory span. Used by
experiments/sweeps/copy_vs_length.py. get_config('small') is the CPU-sized variant (under a minute
per run on 2 cores); get_config() the GPU-sized one. The small variant trains 600 steps of 32
sequences: at its earlier 250 steps of 16, the LSTM and GRU had not yet learned to copy even 10
symbols, which says more about the budget than about the architectures.
"""

from experiments.configs.base import get_base_config
from seqmodels.sweep import variant


def get_config(arg: str = ''):
  size = variant(arg, ['small', 'full'], 'full', 'copy_memory.py')
  c = get_base_config()
  c.data.name = 'copy'
  c.data.num_symbols = 8
  c.model.name = 'lstm'
  c.optim.lr, c.optim.warmup_steps = 3e-3, 100
  # sized for 2 CPU cores: ~15 minutes for the 28 runs of copy_vs_length.py:small
  if size == 'small':
    c.data.min_len = c.data.max_len = 10
    c.data.num_train, c.data.num_validation = 4_000, 128
    c.model.width, c.model.layers, c.model.heads = 64, 2, 4
    c.optim.warmup_steps = 50
    c.train.num_steps, c.train.batch_size = 600, 32
    c.train.log_every, c.train.eval_every, c.train.checkpoint_every = 50, 200, 600
  else:
    c.data.min_len = c.data.max_len = 100
    c.data.num_train, c.data.num_validation = 100_000, 1_000
    c.model.width, c.model.layers, c.model.heads = 256, 2, 4
    c.train.num_steps, c.train.batch_size = 5_000, 64
    c.train.log_every, c.train.eval_every, c.train.checkpoint_every = 100, 500, 1_000
  return c
