"""Fine-tuning a model imported from Hugging Face (python -m seqmodels.hf import SOURCE
--workdir=W): its run's config, starting from its parameters.

  python launch.py --config=experiments/configs/hf.py:W --workdir=runs/finetuned \
      --config.data.path=FILE

The model fields and the tokenizer (data.tokenizer=hf:W) are the imported checkpoint's; the recipe
below is a short, gentle one (a pre-trained model needs a small learning rate), any field can be
overridden as usual.
"""

import json
import os

import ml_collections


def get_config(arg: str = ''):
  if not arg:
    raise ValueError('name the imported workdir: --config=experiments/configs/hf.py:W')
  path = os.path.join(os.path.expanduser(arg), 'config.json')
  if not os.path.isfile(path):
    raise ValueError(f'{arg} holds no config.json: import a checkpoint there first '
                     '(python -m seqmodels.hf import SOURCE --workdir=W)')
  with open(path) as f:
    c = ml_collections.ConfigDict(json.load(f))
  c.train.init_from = os.path.abspath(os.path.expanduser(arg))
  c.optim.lr, c.optim.warmup_steps, c.optim.weight_decay = 1e-4, 20, 0.01
  c.train.num_steps, c.train.batch_size = 200, 8
  c.train.log_every, c.train.eval_every, c.train.checkpoint_every = 20, 100, 100
  return c
