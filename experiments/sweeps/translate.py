"""Context vector vs attention vs the Transformer on one dataset: LSTM, GRU + context (Cho), GRU +
additive, LSTM + general attention, Transformer.

  python launch.py --config=experiments/configs/translate.py --sweep=experiments/sweeps/translate.py
  python launch.py --config=experiments/configs/translate.py:full \
      --sweep=experiments/sweeps/translate.py:full
"""

from experiments.configs.translate import VARIANTS, variant_overrides
from seqmodels import sweep


def get_sweep(arg: str = ''):
  size = sweep.variant(arg, ['cpu', 'full'], 'cpu', 'translate.py')
  return [variant_overrides(v, size) for v in VARIANTS]
