"""Word-level LM: n-gram, LSTM, GRU and GPT (perplexity per word, bits per character).

  python launch.py --config=experiments/configs/word_lm.py:small \
      --config.data.path=../shared/data/tinyshakespeare.txt \
      --sweep=experiments/sweeps/word_lm_archs.py:small --workdir=runs/word_lm_small

At a word vocabulary the embedding and softmax hold most parameters, so the models share one width
rather than one parameter count. The n-gram is counted, not trained: its size is its order. The LSTM
also runs as Zaremba et al. (2014) and PyTorch's word_language_model train it, its state carried
from each window to the next (`train.carry_state`), which lets it condition on more than one
window's words.
"""

from seqmodels import sweep

GRIDS = {
    'small': [{'model.name': 'ngram', 'model.order': 3}, {'model.name': 'lstm'},
              {'model.name': 'lstm', 'train.carry_state': True}, {'model.name': 'gru'},
              {'model.name': 'gpt', 'model.layers': 4, 'model.dropout': 0.1}],
    'full': [{'model.name': 'ngram', 'model.order': 3}, {'model.name': 'ngram', 'model.order': 5},
             {'model.name': 'lstm'}, {'model.name': 'lstm', 'train.carry_state': True},
             {'model.name': 'gru'}, {'model.name': 'gpt', 'model.layers': 6, 'model.dropout': 0.2}],
}


def get_sweep(arg: str = ''):
  return GRIDS[sweep.variant(arg, list(GRIDS), 'full', 'word_lm_archs.py')]
