"""Character-level LM: RNN vs LSTM vs GRU vs GPT at about the same parameter count (bits per character).

  python launch.py --config=experiments/configs/char_lm.py:small --config.data.path=../shared/data/tinyshakespeare.txt \
      --sweep=experiments/sweeps/char_lm_archs.py:small --workdir=runs/char_lm_small

'small' (~280k parameters each, for experiments/configs/char_lm.py:small on a CPU) or the full variant (~4.2M each,
for the full char_lm config on a GPU). Models not in seqmodels.models.registry are left out.
"""

from seqmodels import sweep
from seqmodels.models import registry

# model -> (width, layers, heads) at about the same parameter count (vocabulary ~65 characters)
SIZES = {
    'small': {'rnn': (248, 2, 4), 'lstm': (128, 2, 4), 'gru': (148, 2, 4), 'gpt': (104, 2, 4)},
    'full': {'rnn': (1000, 2, 8), 'lstm': (512, 2, 8), 'gru': (590, 2, 8), 'gpt': (336, 3, 6)},
}


def get_sweep(arg: str = ''):
  models = {m: s for m, s in SIZES[arg or 'full'].items() if m in registry.MODELS}
  return sweep.zip_(sweep.sweep('model.name', list(models)),
                    *(sweep.sweep(f'model.{f}', [s[i] for s in models.values()])
                      for i, f in enumerate(('width', 'layers', 'heads'))))
