"""BERT pre-training (masked LM + next sentence) on the lines of a local text file; byte tokens.

  python launch.py --config=experiments/configs/bert_pretrain.py --workdir=runs/bert_pt \
      --config.data.path=../shared/data/tinyshakespeare.txt
get_config('small') is CPU-sized (about 6 minutes on 2 loaded cores); then fine-tune with
bert_finetune.py. At that size masked-LM takes about 1,500 steps at lr 3e-3 to get well past unigram
statistics (at lr 1e-3 and 600 steps it stayed near them, and lr 1e-2 collapsed to predicting
spaces), hence 3,000 steps.
"""

from experiments.configs.base import get_base_config
from seqmodels.sweep import variant


def get_config(arg: str = ''):
  size = variant(arg, ['small', 'full'], 'full', 'bert_pretrain.py')
  c = get_base_config()
  c.data.name, c.data.source, c.data.path = 'mlm', '', '../shared/data/tinyshakespeare.txt'
  c.data.seq_len, c.data.mask_prob = 128, 0.15
  c.model.name = 'bert'
  c.model.width, c.model.layers, c.model.heads, c.model.ffn, c.model.dropout = 256, 4, 4, 1024, 0.1
  c.optim.lr, c.optim.warmup_steps, c.optim.weight_decay = 1e-3, 200, 0.01
  c.train.num_steps, c.train.batch_size = 10_000, 64
  c.train.eval_every, c.train.checkpoint_every, c.train.eval_batches = 1_000, 1_000, 50
  if size == 'small':
    c.data.seq_len = 64
    c.model.width, c.model.layers, c.model.heads, c.model.ffn, c.model.dropout = 64, 2, 4, 256, 0.0
    c.optim.lr, c.optim.warmup_steps = 3e-3, 50
    c.train.num_steps, c.train.batch_size, c.train.eval_every, c.train.checkpoint_every = (
        3_000, 32, 500, 500)
    c.train.eval_batches, c.train.log_every = 20, 100
  return c
