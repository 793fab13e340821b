"""nanoGPT's shakespeare_char recipe: a 6-layer, 6-head, 384-wide GPT on characters of
tinyshakespeare.

  python launch.py --config=experiments/configs/char_gpt.py --workdir=runs/char_gpt
nanoGPT reports a validation loss of about 1.47 nats/char after 5000 steps (on one A100, a few
minutes). Training windows start at every character (data.stride=1), the deterministic counterpart
of nanoGPT's random crops; validation tiles the last 10% of the text. get_config('small') is a
CPU-sized variant (minutes on 2 cores).
"""

from experiments.configs.base import get_base_config
from seqmodels.sweep import variant


def get_config(arg: str = ''):
  size = variant(arg, ['small', 'full'], 'full', 'char_gpt.py')
  c = get_base_config()
  c.data.name, c.data.path = 'text', '../shared/data/tinyshakespeare.txt'
  c.data.seq_len, c.data.stride = 256, 1          # block_size 256; every offset is a training
                                                  # window
  c.model.name = 'gpt'
  c.model.width, c.model.layers, c.model.heads, c.model.ffn = 384, 6, 6, 0  # ffn 0: 4 * width
  c.model.dropout = 0.2
  c.optim.lr, c.optim.min_lr_ratio, c.optim.warmup_steps = 1e-3, 0.1, 100  # cosine 1e-3 -> 1e-4
  c.optim.b1, c.optim.b2, c.optim.weight_decay, c.optim.clip_norm = 0.9, 0.99, 0.1, 1.0
  c.train.num_steps, c.train.batch_size = 5_000, 64
  c.train.log_every, c.train.eval_every, c.train.eval_batches = 50, 250, 200
  c.train.checkpoint_every = 1_000
  c.train.dtype = 'bfloat16'                        # as nanoGPT on GPU; use float32 on CPU
  if size == 'small':
    c.data.seq_len, c.data.stride = 64, 8
    c.model.width, c.model.layers, c.model.heads, c.model.dropout = 128, 4, 4, 0.0
    c.train.num_steps, c.train.batch_size = 1_000, 32
    c.train.eval_every, c.train.eval_batches, c.train.checkpoint_every = 250, 20, 500
    c.train.dtype = 'float32'
  return c
