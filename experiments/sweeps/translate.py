"""Context vector vs attention vs the Transformer on one dataset: LSTM, GRU + context (Cho), GRU + additive,
LSTM + general attention, Transformer.

  python launch.py --config=experiments/configs/translate.py --sweep=experiments/sweeps/translate.py
  python launch.py --config=experiments/configs/translate.py:full --sweep=experiments/sweeps/translate.py:full
"""

from experiments.configs.translate import VARIANTS, variant_overrides


def get_sweep(size: str = 'cpu'):
  return [variant_overrides(v, size) for v in VARIANTS]
