"""Character-level LM: n-gram, RNN, LSTM, GRU, minGRU, minLSTM and GPT at about the same size (bits
per character).

  python launch.py --config=experiments/configs/char_lm.py:small \
      --config.data.path=../shared/data/tinyshakespeare.txt \
      --sweep=experiments/sweeps/char_lm_archs.py:small --workdir=runs/char_lm_small

'small' (~280k parameters each, for experiments/configs/char_lm.py:small on a CPU) or the full
variant (~4.2M each, for the full char_lm config on a GPU). The n-gram is counted, not trained: its
size is its order. Models not in seqmodels.models.registry are left out.
"""

from seqmodels import sweep
from seqmodels.models import registry

# model -> the overrides that give it about the same parameter count (vocabulary ~65 characters)
SIZES = {
    'small': {
        'ngram': {'model.order': 5},
        'rnn': {'model.width': 248, 'model.layers': 2},
        'lstm': {'model.width': 128, 'model.layers': 2},
        'gru': {'model.width': 148, 'model.layers': 2},
        'mingru': {'model.width': 248, 'model.layers': 2},
        'minlstm': {'model.width': 204, 'model.layers': 2},
        'gpt': {'model.width': 104, 'model.layers': 2, 'model.heads': 4},
    },
    'full': {
        'ngram': {'model.order': 7},
        'rnn': {'model.width': 1000, 'model.layers': 2},
        'lstm': {'model.width': 512, 'model.layers': 2},
        'gru': {'model.width': 590, 'model.layers': 2},
        'mingru': {'model.width': 1000, 'model.layers': 2},
        'minlstm': {'model.width': 824, 'model.layers': 2},
        'gpt': {'model.width': 336, 'model.layers': 3, 'model.heads': 6},
    },
}


def get_sweep(arg: str = ''):
  size = sweep.variant(arg, list(SIZES), 'full', 'char_lm_archs.py')
  return [{'model.name': m, **o} for m, o in SIZES[size].items() if m in registry.MODELS]
