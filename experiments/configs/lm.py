"""The LM backbone of sequence mixers (seqmodels/models/lm.py) as a character LM on a local text
file.

  python launch.py --config=experiments/configs/lm.py:small \
      --config.data.path=../shared/data/tinyshakespeare.txt \
      --config.model.mixer=lstm

Every block's mixer is `--config.model.mixer` (attention, the default, is Transformer++: RoPE,
RMSNorm, SwiGLU, no biases); a hybrid is `--config.model.pattern=rglru,rglru,attention`.
get_config('small') is CPU-sized.
"""

from experiments.configs.base import get_base_config
from seqmodels.sweep import variant


def get_config(arg: str = ''):
  size = variant(arg, ['small', 'full'], 'full', 'lm.py')
  c = get_base_config()
  c.data.name, c.data.path, c.data.seq_len = 'text', '', 256
  c.model.name, c.model.mixer = 'lm', 'attention'
  c.model.width, c.model.layers, c.model.heads = 384, 6, 6
  c.optim.lr, c.optim.warmup_steps, c.optim.weight_decay = 1e-3, 200, 0.1
  c.train.num_steps, c.train.batch_size = 5_000, 64
  c.train.eval_every, c.train.checkpoint_every, c.train.eval_batches = 500, 500, 50
  if size == 'small':
    c.data.seq_len = 64
    c.model.width, c.model.layers, c.model.heads = 96, 2, 4
    c.optim.lr = 3e-3
    c.train.num_steps, c.train.batch_size, c.train.eval_every, c.train.eval_batches = (
        1_000, 32, 250, 20)
  return c
