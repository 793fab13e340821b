"""The char-LM comparison under the protocol of docs/protocol.md: every LM at matched non-embedding
parameters, the same learning-rate grid, 3 seeds at each one's best, strided evaluation.

  python launch.py --config=experiments/configs/char_lm_compare.py:small \
      --config.data.path=../shared/data/tinyshakespeare.txt \
      --sweep=experiments/sweeps/char_lm_compare.py:small --workdir=runs/char_lm_compare_small

The validation text's second half is the test split (data.test_from_validation): the sweep chooses
each architecture's learning rate on the first half and reports the second. Evaluation is strided
(each character scored once, with at least 3/4 of a window of context), so a Transformer is not
scored on half a window of context on average while a recurrent LM carries more.
'small' is a CPU size (~100k non-embedding parameters, 300 steps); the default is for a GPU.
"""

from experiments.configs.base import get_base_config
from seqmodels.sweep import variant


def get_config(arg: str = ''):
  size = variant(arg, ['small', 'full'], 'full', 'char_lm_compare.py')
  c = get_base_config()
  c.data.name, c.data.path = 'text', ''
  c.data.seq_len, c.data.test_from_validation = 256, True
  c.model.name, c.model.dropout = 'lm', 0.1
  c.optim.lr, c.optim.warmup_steps, c.optim.weight_decay = 3e-3, 200, 0.1
  c.train.num_steps, c.train.batch_size = 5_000, 64
  c.train.eval_every, c.train.checkpoint_every, c.train.eval_batches = 1_000, 1_000, 0
  c.train.eval_mode, c.train.eval_stride, c.train.test_eval = 'strided', 64, True
  if size == 'small':
    c.data.seq_len, c.model.dropout = 64, 0.0
    c.optim.warmup_steps = 30
    c.train.num_steps, c.train.batch_size, c.train.eval_every, c.train.checkpoint_every = (
        300, 16, 300, 300)
    # 8 batches of 64 windows, each scoring its last 16 characters: 8,192 of each split
    c.train.eval_batches, c.train.eval_batch_size, c.train.eval_stride = 8, 64, 16
  return c
