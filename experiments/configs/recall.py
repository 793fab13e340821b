"""Recall and length generalisation (seqmodels/data/recall.py): MQAR as Zoology trains it,
induction heads and selective copying as the Mamba paper does, on the LM backbone.

  python launch.py --config=experiments/configs/recall.py:mqar_small \
      --sweep=experiments/sweeps/recall.py:mqar_small --workdir=runs/mqar_small

Variants: mqar, induction, selective (the papers' sizes, for a GPU) and mqar_small,
induction_small, selective_small (CPU-sized). Every model is 2 blocks; the mixer, width and learning
rate are the sweeps' (experiments/sweeps/recall.py).
"""

from experiments.configs.base import get_base_config
from seqmodels.sweep import variant

VARIANTS = ['mqar', 'mqar_small', 'induction', 'induction_small', 'selective', 'selective_small']


def get_config(arg: str = ''):
  which = variant(arg, VARIANTS, 'mqar', 'recall.py')
  c = get_base_config()
  c.model.name, c.model.mixer, c.model.layers = 'lm', 'attention', 2
  c.optim.warmup_steps, c.optim.weight_decay = 100, 0.1
  c.train.eval_batches, c.train.checkpoint_every = 0, 0
  if which.startswith('mqar'):
    # Zoology figure 2: V = 8192, 100k training and 3k test examples, no MLP (its state mixer is
    # the identity), attention of 1 head, 64 epochs, the batch by length (512 at 64 and 128 tokens)
    c.data.name, c.data.seq_len, c.data.kv_pairs, c.data.num_symbols = 'mqar', 64, 4, 8192
    c.data.num_train, c.data.num_validation, c.data.num_test = 100_000, 3_000, 3_000
    c.model.mlp, c.model.heads, c.model.width = 'none', 1, 128
    c.optim.lr = 1e-3
    c.train.batch_size, c.train.num_epochs, c.train.eval_every = 512, 64, 0
  if which == 'mqar_small':
    c.data.seq_len, c.data.kv_pairs, c.data.num_symbols = 32, 4, 64
    c.data.num_train, c.data.num_validation, c.data.num_test = 16_000, 512, 512
    c.model.width = 32
    c.optim.lr, c.optim.warmup_steps = 3e-3, 50
    c.train.batch_size, c.train.num_epochs, c.train.num_steps = 32, 0, 500
    c.train.eval_every, c.train.log_every = 500, 100
  if which.startswith('induction'):
    # Mamba 4.1.2: trained at 256 tokens over a vocabulary of 16, fresh data every step (batch 8:
    # a training split of batch x steps examples), 2 layers of width 64, then tested at 2^8..2^16
    # (the paper goes on to 2^20 for Mamba)
    c.data.name, c.data.seq_len, c.data.num_symbols = 'induction_heads', 256, 16
    c.data.num_train, c.data.num_validation, c.data.num_test = 8 * 25_000, 512, 256
    c.data.eval_lens = ','.join(str(2**k) for k in range(8, 17))
    c.model.width, c.model.heads = 64, 4
    c.optim.lr = 1e-3
    c.train.batch_size, c.train.num_steps, c.train.eval_every = 8, 25_000, 5_000
  if which == 'induction_small':
    # CPU: trained at 64 tokens, tested at 2^6..2^10
    c.data.seq_len, c.data.eval_lens = 64, '64,128,256,512,1024'
    c.data.num_train, c.data.num_validation, c.data.num_test = 16 * 500, 256, 128
    c.model.width = 32
    c.optim.lr, c.optim.warmup_steps = 3e-3, 50
    c.train.batch_size, c.train.num_steps, c.train.eval_every, c.train.log_every = 16, 500, 500, 100
  if which.startswith('selective'):
    # Mamba App. E.1: 16 data tokens in 4096 positions, a vocabulary of 16 (noise and marker
    # included), 2 layers of width 64, 400k steps of batch 64 at a constant 1e-4
    c.data.name, c.data.seq_len, c.data.copy_tokens, c.data.num_symbols = (
        'selective_copying', 4096, 16, 16)
    c.data.num_train, c.data.num_validation, c.data.num_test = 20_000, 1_024, 1_024
    c.model.width = 64
    c.optim.lr, c.optim.min_lr_ratio, c.optim.warmup_steps = 1e-4, 1.0, 0
    c.train.batch_size, c.train.num_steps, c.train.eval_every = 64, 400_000, 10_000
  if which == 'selective_small':
    c.data.seq_len, c.data.copy_tokens, c.data.num_symbols = 32, 4, 8
    c.data.num_train, c.data.num_validation, c.data.num_test = 32 * 500, 512, 512
    c.model.width = 32
    c.optim.lr, c.optim.min_lr_ratio, c.optim.warmup_steps = 3e-3, 0.1, 50
    c.train.batch_size, c.train.num_steps, c.train.eval_every, c.train.log_every = 32, 500, 500, 100
  return c
