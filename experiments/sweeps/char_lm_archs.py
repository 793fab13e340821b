"""Character-level LM: n-gram, RNN, LSTM, GRU, minGRU, minLSTM and GPT at one non-embedding
parameter count (bits per character).

  python launch.py --config=experiments/configs/char_lm.py:small \
      --config.data.path=../shared/data/tinyshakespeare.txt \
      --sweep=experiments/sweeps/char_lm_archs.py:small --workdir=runs/char_lm_small

'small' (for experiments/configs/char_lm.py:small on a CPU) asks every model for the 2 x 128
LSTM's non-embedding parameters, 271,553 at a 65-character vocabulary; the full variant (the full
char_lm config, on a GPU) for the 2 x 512 LSTM's, 4,231,745. Each run solves for its width
(`model.params`, seqmodels/models/size.py) and records what it got in summary.json. What the solver
gives at 65 characters (width: non-embedding parameters), 'small' then 'full', each within 3.4%:
  rnn 252: 270,965 / 1020: 4,230,005       lstm 128: 271,553 / 512: 4,231,745
  gru 148: 274,309 / 592: 4,251,217        mingru 252: 271,469 / 1020: 4,232,045
  minlstm 208: 274,417 / 832: 4,212,481    gpt 104: 262,496 / 342: 4,224,726 (2 / 3 blocks)
The n-gram is counted, not trained: its size is its order. Models not in seqmodels.models.registry
are left out.
"""

from seqmodels import sweep
from seqmodels.models import registry

# size -> (non-embedding parameters asked of every trained model, the n-gram's order)
SIZES = {'small': (271_553, 5), 'full': (4_231_745, 7)}
# model -> the overrides beside the size (its depth, and the GPT's heads)
SHAPES = {
    'small': {'rnn': {'model.layers': 2}, 'lstm': {'model.layers': 2}, 'gru': {'model.layers': 2},
              'mingru': {'model.layers': 2}, 'minlstm': {'model.layers': 2},
              'gpt': {'model.layers': 2, 'model.heads': 4}},
    'full': {'rnn': {'model.layers': 2}, 'lstm': {'model.layers': 2}, 'gru': {'model.layers': 2},
             'mingru': {'model.layers': 2}, 'minlstm': {'model.layers': 2},
             'gpt': {'model.layers': 3, 'model.heads': 6}},
}


def get_sweep(arg: str = ''):
  size = sweep.variant(arg, list(SIZES), 'full', 'char_lm_archs.py')
  params, order = SIZES[size]
  trials = [{'model.name': 'ngram', 'model.order': order}]
  trials += [{'model.name': m, 'model.params': params, **o} for m, o in SHAPES[size].items()]
  return [t for t in trials if t['model.name'] in registry.MODELS]
