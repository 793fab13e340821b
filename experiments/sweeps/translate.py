"""Context vector vs attention on one dataset: LSTM, GRU + context (Cho), GRU + additive, LSTM + general attention.

  python launch.py --config=experiments/configs/translate.py --sweep=experiments/sweeps/translate.py
"""

from experiments.configs.translate import VARIANTS
from seqmodels import sweep


def get_sweep():
  names, attention, context = zip(*VARIANTS.values())
  return sweep.zip_(sweep.sweep('model.name', list(names)), sweep.sweep('model.attention', list(attention)),
                    sweep.sweep('model.feed_context', list(context)))
