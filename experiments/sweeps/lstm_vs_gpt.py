"""LSTM vs GPT at about the same parameter count (the default job)."""

from seqmodels import sweep


def get_sweep(arg: str = ''):
  sweep.variant(arg, [], '', 'lstm_vs_gpt.py')  # one grid: no variants
  return sweep.zip_(
      sweep.sweep('model.name', ['lstm', 'gpt']),
      sweep.sweep('model.width', [96, 64]),
      sweep.sweep('model.layers', [2, 2]),
  )
