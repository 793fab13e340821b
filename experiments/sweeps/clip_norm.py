"""Gradient clipping against exploding gradients: optim.clip_norm {0 (off), 1} x recurrent init
scale {1, 2}.

  python launch.py --config=experiments/configs/exploding_gradients.py:small \
      --sweep=experiments/sweeps/clip_norm.py --workdir=runs/clip_norm_small
  python -m seqmodels.report runs/clip_norm_small --out runs/clip_norm_small/report

Without clipping, momentum SGD from init scale 2 diverges within ~100 steps (the trial fails with a
non-finite loss, or its loss stays orders of magnitude up); the orthogonal init (scale 1) trains
either way, and scale 2 with clipping. The report's learning_curves.png draws failed trials up to
their last logged step and grad_norm.png the gradient norm before clipping (log scale, clip_norm
dotted).
"""

from seqmodels import sweep


def get_sweep(arg: str = ''):
  # the same grid for the small and the full config
  sweep.variant(arg, ['small', 'full'], 'full', 'clip_norm.py')
  return sweep.product(sweep.sweep('model.recurrent_init_scale', [1.0, 2.0]),
                       sweep.sweep('optim.clip_norm', [0.0, 1.0]))
