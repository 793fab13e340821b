"""LSTM vs GPT at one non-embedding parameter count, 2 layers each (the default job).

`model.params` asks each for the 2-block, width-64 GPT's 100,096 non-embedding parameters; the run
solves for its width (seqmodels/models/size.py): the GPT 64 (100,096), the LSTM 80 (104,012, its
output layer over the copy task's 12 tokens included).
"""

from seqmodels import sweep


def get_sweep(arg: str = ''):
  sweep.variant(arg, [], '', 'lstm_vs_gpt.py')  # one grid: no variants
  return sweep.product(
      sweep.sweep('model.name', ['lstm', 'gpt']),
      sweep.sweep('model.params', [100_096]),
      sweep.sweep('model.layers', [2]),
  )
