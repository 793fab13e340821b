"""Long-range memory: every registered language model on the copy task as the length grows.

  python launch.py --config=experiments/configs/copy_memory.py:small \
      --sweep=experiments/sweeps/copy_vs_length.py:small --workdir=runs/copy_vs_length_small

Widths give each architecture about the same parameter count (small: ~70k, full: ~1.1M; the counts
are in the report's params column); the n-gram's size is its order. 'small' sweeps data.max_len over
5, 10, 20, 40 (short training, for a CPU budget); the full variant over 10 to 500. min_len =
max_len: every sequence has the swept length.
"""

from seqmodels import sweep
from seqmodels.models import registry

# model -> the overrides that give it about the same parameter count
SIZES = {
    'small': {
        'ngram': {'model.order': 5},
        'rnn': {'model.width': 128, 'model.layers': 2},
        'lstm': {'model.width': 64, 'model.layers': 2},
        'gru': {'model.width': 74, 'model.layers': 2},
        'mingru': {'model.width': 128, 'model.layers': 2},
        'minlstm': {'model.width': 104, 'model.layers': 2},
        'gpt': {'model.width': 48, 'model.layers': 2},
    },
    'full': {
        'ngram': {'model.order': 5},
        'rnn': {'model.width': 512, 'model.layers': 2},
        'lstm': {'model.width': 256, 'model.layers': 2},
        'gru': {'model.width': 296, 'model.layers': 2},
        'mingru': {'model.width': 512, 'model.layers': 2},
        'minlstm': {'model.width': 424, 'model.layers': 2},
        'gpt': {'model.width': 192, 'model.layers': 2},
    },
}
LENGTHS = {'small': [5, 10, 20, 40], 'full': [10, 20, 50, 100, 200, 500]}


def get_sweep(arg: str = ''):
  size = sweep.variant(arg, list(SIZES), 'full', 'copy_vs_length.py')
  models = [{'model.name': m, **o} for m, o in SIZES[size].items() if m in registry.MODELS]
  return sweep.product(models, sweep.zip_(sweep.sweep('data.max_len', LENGTHS[size]),
                                          sweep.sweep('data.min_len', LENGTHS[size])))
