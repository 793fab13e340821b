"""BERT pre-training (masked LM + next sentence) on the lines of a local text file; byte tokens.

  python launch.py --config=experiments/configs/bert_pretrain.py --workdir=runs/bert_pt \
      --config.data.path=../shared/data/tinyshakespeare.txt
get_config('small') is CPU-sized (a few minutes on 2 cores); then fine-tune with bert_finetune.py.
"""

from experiments.configs.base import get_base_config


def get_config(arg: str = ''):
  c = get_base_config()
  c.data.name, c.data.source, c.data.path = 'mlm', '', '../shared/data/tinyshakespeare.txt'
  c.data.seq_len, c.data.mask_prob = 128, 0.15
  c.model.name = 'bert'
  c.model.width, c.model.layers, c.model.heads, c.model.ffn, c.model.dropout = 256, 4, 4, 1024, 0.1
  c.optim.lr, c.optim.warmup_steps, c.optim.weight_decay = 1e-3, 200, 0.01
  c.train.num_steps, c.train.batch_size = 10_000, 64
  c.train.eval_every, c.train.checkpoint_every, c.train.eval_batches = 1_000, 1_000, 50
  if arg == 'small':
    c.data.seq_len = 64
    c.model.width, c.model.layers, c.model.heads, c.model.ffn, c.model.dropout = 64, 2, 4, 256, 0.0
    c.optim.warmup_steps = 50
    c.train.num_steps, c.train.batch_size, c.train.eval_every, c.train.checkpoint_every = 600, 32, 300, 300
    c.train.eval_batches, c.train.log_every = 20, 50
  return c
