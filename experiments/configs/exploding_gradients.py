"""Exploding gradients (Bengio et al. 1994; Pascanu et al. 2013): a tanh RNN with a large recurrent init.

The recurrent matrix starts as `recurrent_init_scale` (3) times an orthogonal one, so backpropagation through time
multiplies gradients by up to ~3 per step: their global norm grows into the millions over 50 steps, and past about
1e19 its float32 square overflows (grad_norm = inf in metrics.jsonl). experiments/sweeps/clip_norm.py trains it
with and without optim.clip_norm on the adding problem. A run whose loss becomes NaN stops with
NonFiniteLossError (the sweep marks it failed; metrics.jsonl keeps the steps before, logged every 5 steps).
get_config('small') is CPU-sized (~1 min a run), get_config() GPU-sized.
"""

from experiments.configs.adding import get_config as adding_config


def get_config(arg: str = ''):
  c = adding_config(arg)
  c.model.name, c.model.layers = 'rnn', 1
  c.model.recurrent_init_scale = 3.0
  c.optim.clip_norm = 0.0          # the sweep turns it on
  c.train.log_every = 5
  if arg == 'small':
    c.data.min_len = c.data.max_len = 50
    c.model.width = 64
    c.train.num_steps = 300
  else:
    c.data.min_len = c.data.max_len = 200
    c.model.width = 256
  return c
