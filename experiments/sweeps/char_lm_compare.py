"""Every character LM under one protocol (docs/protocol.md): matched non-embedding parameters, the
same learning-rate grid for each, then 3 seeds at each one's best learning rate on validation,
reported on test. One command (a seqmodels.tuning.Tuning: launch.py runs both stages):

  python launch.py --config=experiments/configs/char_lm_compare.py:small \
      --config.data.path=../shared/data/tinyshakespeare.txt \
      --sweep=experiments/sweeps/char_lm_compare.py:small --workdir=runs/char_lm_compare_small

Sizes are matched by the width solver (`model.params`, seqmodels/models/size.py): every arm asks
for the non-embedding parameters of the attention LM ('small': 2 blocks at width 64 with 4 heads,
100,672 at a 65-character vocabulary; 'full': 6 blocks at width 384 with 6 heads, 10,621,824) and
each run solves for its width; summary.json's size_target records what it got. Non-embedding:
every parameter but the token (and GPT's position) embedding; an untied output layer counts. The
classic LMs have 2 layers, GPT and the backbone 2 / 6 blocks. Models that read windows longer than
they trained on are also evaluated at 2x, 4x and 8x (GPT cannot: learned positions).
"""

from seqmodels import sweep, tuning
from seqmodels.models import registry

LENGTHS = '2,4,8'  # multiples of the training window, where the model can read them
# the same search for every arm: 3 log-spaced learning rates, 3 seeds at each arm's best
SEARCH = {'small': tuning.lr_grid(1e-3, 1e-2, 3), 'full': tuning.lr_grid(3e-4, 3e-3, 3)}


# size -> (non-embedding parameters every arm asks for, blocks of GPT and the backbone, heads)
TARGETS = {'small': (100_672, 2, 4), 'full': (10_621_824, 6, 6)}
CLASSIC = ('rnn', 'lstm', 'gru')
MIXERS = ('attention', 'mamba', 'mamba2', 'rglru', 'gla', 'retnet', 'mlstm', 'rnn', 'lstm', 'gru',
          'mingru', 'minlstm')


def arms(size: str) -> list[dict]:
  """Every arm's overrides: the same parameter target, its own shape."""
  params, blocks, heads = TARGETS[size]
  same = {'model.params': params}
  return ([{'model.name': 'gpt', 'model.layers': blocks, 'model.heads': heads, **same}] +
          [{'model.name': cell, 'model.layers': 2, **same} for cell in CLASSIC] +
          [{'model.name': 'lm', 'model.mixer': mixer, 'model.layers': blocks,
            'model.heads': heads, **same} for mixer in MIXERS])


def get_sweep(arg: str = ''):
  size = sweep.variant(arg, list(TARGETS), 'full', 'char_lm_compare.py')
  chosen = []
  for overrides in arms(size):
    if overrides['model.name'] not in registry.MODELS:
      continue
    reads_longer = not registry.MODELS[overrides['model.name']].longer_windows(
        _model_fields(overrides))
    chosen.append({**overrides, **({'train.eval_lengths': LENGTHS} if reads_longer else {})})
  return tuning.Tuning(arms=chosen, search=SEARCH[size], seeds=3)


def _model_fields(overrides: dict) -> dict:
  """The model fields an arm sets, as entry.longer_windows reads them (m.get('position'))."""
  return {k.split('.', 1)[1]: v for k, v in overrides.items() if k.startswith('model.')}
