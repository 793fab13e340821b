"""Gradient clipping against exploding gradients: optim.clip_norm {0 (off), 1} x recurrent init scale {1, 3}.

  python launch.py --config=experiments/configs/exploding_gradients.py:small \
      --sweep=experiments/sweeps/clip_norm.py --workdir=runs/clip_norm_small

Every trial logs grad_norm (before clipping) to metrics.jsonl: the learning-curve and grad-norm plots of the
report show the scale-3 runs' norms in the millions (or inf) and what clipping does to the loss.
"""

from seqmodels import sweep


def get_sweep(arg: str = ''):
  del arg  # the same grid for the small and the full config
  return sweep.product(sweep.sweep('model.recurrent_init_scale', [1.0, 3.0]),
                       sweep.sweep('optim.clip_norm', [0.0, 1.0]))
