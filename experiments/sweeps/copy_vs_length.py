"""Long-range memory: every registered recurrent/attention LM on the copy task as the length grows.

  python launch.py --config=experiments/configs/copy_memory.py:small \
      --sweep=experiments/sweeps/copy_vs_length.py:small --workdir=runs/copy_vs_length_small

Widths give each architecture about the same parameter count (small: ~75k, full: ~1.1M; the counts are in the
report's params column). 'small' sweeps data.max_len over 5, 10, 20, 40 (short training, for a CPU budget); the
full variant over 10 to 500. min_len = max_len: every sequence has the swept length.
"""

from seqmodels import sweep
from seqmodels.models import registry

# model -> (width, layers) at about the same parameter count, per size
SIZES = {
    'small': {'rnn': (128, 2), 'lstm': (64, 2), 'gru': (74, 2), 'gpt': (48, 2)},
    'full': {'rnn': (512, 2), 'lstm': (256, 2), 'gru': (296, 2), 'gpt': (192, 2)},
}
LENGTHS = {'small': [5, 10, 20, 40], 'full': [10, 20, 50, 100, 200, 500]}


def get_sweep(arg: str = ''):
  size = arg or 'full'
  models = {m: wl for m, wl in SIZES[size].items() if m in registry.MODELS}
  return sweep.product(
      sweep.zip_(sweep.sweep('model.name', list(models)), sweep.sweep('model.width', [w for w, _ in models.values()]),
                 sweep.sweep('model.layers', [l for _, l in models.values()])),
      sweep.zip_(sweep.sweep('data.max_len', LENGTHS[size]), sweep.sweep('data.min_len', LENGTHS[size])),
  )
