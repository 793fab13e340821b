"""Exploding gradients (Bengio et al. 1994; Pascanu et al. 2013): a tanh RNN trained by SGD, with
and without gradient clipping, on the adding problem.

The recurrent matrix starts as `recurrent_init_scale` (2) times an orthogonal one, and the optimizer
is SGD with heavy-ball momentum 0.9 (lr 0.04, full-size 0.02). Adam would hide the effect: it
normalises every step, and unclipped it trains this model fine. Without clipping, a gradient spike
(norm 1e2 to 1e6) throws the recurrent weights into saturation and the loss grows by 6+ orders of
magnitude, usually to inf within ~100 steps: NonFiniteLossError, a failed sweep trial whose
metrics.jsonl keeps the steps before (logged every 5). With optim.clip_norm = 1 the same run trains
to an eval MSE far below the mean predictor's 1/6, and so does the orthogonal init (scale 1) with or
without clipping. experiments/sweeps/clip_norm.py runs init scale {1, 2} x clip_norm {0, 1}.
get_config('small') is CPU-sized (20-60 s a run on a loaded 2-core CPU); get_config() is GPU-sized,
its sweep not run yet (on CPU, the first 1-2k of its 10k steps behaved the same way: scale 2
unclipped reached inf by step ~290 in 3 seeds, scale 1 unclipped and scale 2 clipped kept falling).
"""

from experiments.configs.adding import get_config as adding_config
from seqmodels.sweep import variant


def get_config(arg: str = ''):
  size = variant(arg, ['small', 'full'], 'full', 'exploding_gradients.py')
  c = adding_config(size)
  c.model.name, c.model.layers = 'rnn', 1
  c.model.recurrent_init_scale = 2.0
  c.optim.name, c.optim.lr, c.optim.b1 = 'momentum', 0.04, 0.9
  c.optim.weight_decay = 0.0
  c.optim.clip_norm = 0.0          # the sweep turns it on
  c.train.log_every = 5
  if size == 'small':
    c.data.min_len = c.data.max_len = 20
    c.model.width = 64
    c.train.num_steps, c.train.eval_every, c.train.checkpoint_every = 1_500, 250, 1_500
  else:
    # twice the width: a wider saturated state makes the output layer unstable at lr 0.04 even from
    # scale 1
    c.data.min_len = c.data.max_len = 50
    c.model.width = 128
    c.optim.lr = 0.02
  return c
