"""Long-range memory on the adding problem: RNN, LSTM, GRU, minGRU, minLSTM and a Transformer as T
grows.

  python launch.py --config=experiments/configs/adding.py:small \
      --sweep=experiments/sweeps/adding_vs_length.py:small --workdir=runs/adding_vs_length_small

Widths give each model about the same parameter count (small: ~4.5k, full: ~70k; the report's params
column has the counts). 'small' sweeps data.max_len over 10, 20, 50, 100; the full variant over 10
to 500.
"""

from seqmodels import sweep
from seqmodels.models import registry

# model -> (width, layers); minGRU/minLSTM gates read x_t only, so they need a second layer to mix
# steps
SIZES = {
    'small': {'rnn': (64, 1), 'lstm': (32, 1), 'gru': (37, 1), 'mingru': (44, 2),
              'minlstm': (36, 2), 'transformer_regressor': (16, 1)},
    'full': {'rnn': (256, 1), 'lstm': (128, 1), 'gru': (148, 1), 'mingru': (180, 2),
             'minlstm': (148, 2), 'transformer_regressor': (48, 2)},
}
LENGTHS = {'small': [10, 20, 50, 100], 'full': [10, 20, 50, 100, 200, 500]}


def get_sweep(arg: str = ''):
  size = sweep.variant(arg, list(SIZES), 'full', 'adding_vs_length.py')
  models = {m: wl for m, wl in SIZES[size].items() if m in registry.MODELS}
  return sweep.product(
      sweep.zip_(sweep.sweep('model.name', list(models)),
                 sweep.sweep('model.width', [w for w, _ in models.values()]),
                 sweep.sweep('model.layers', [l for _, l in models.values()])),
      sweep.zip_(sweep.sweep('data.max_len', LENGTHS[size]),
                 sweep.sweep('data.min_len', LENGTHS[size])),
  )
