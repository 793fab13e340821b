"""Every character LM under one protocol (docs/protocol.md): matched non-embedding parameters, the
same learning-rate grid for each, then 3 seeds at each one's best learning rate on validation,
reported on test. One command (a seqmodels.tuning.Tuning: launch.py runs both stages):

  python launch.py --config=experiments/configs/char_lm_compare.py:small \
      --config.data.path=../shared/data/tinyshakespeare.txt \
      --sweep=experiments/sweeps/char_lm_compare.py:small --workdir=runs/char_lm_compare_small

Widths are matched by hand to the non-embedding parameters of the attention LM at a 65-character
vocabulary ('small': 2 blocks/layers, ~100k each, within 6%; 'full': 6 blocks for the backbone and
GPT, 2 layers for the classic LMs, ~10.6M, within 7%), listed beside each. Non-embedding: every
parameter but the token (and GPT's position) embedding; an untied output layer counts. Models
that read windows longer than they trained on are also evaluated at 2x, 4x and 8x (GPT cannot:
learned positions).
"""

from seqmodels import sweep, tuning
from seqmodels.models import registry

from experiments.sweeps.mixers import SIZES as MIXER_SIZES

LENGTHS = '2,4,8'  # multiples of the training window, where the model can read them
# the same search for every arm: 3 log-spaced learning rates, 3 seeds at each arm's best
SEARCH = {'small': tuning.lr_grid(1e-3, 1e-2, 3), 'full': tuning.lr_grid(3e-4, 3e-3, 3)}


def _lm(mixer: str, width: int, blocks: int, heads: int) -> dict:
  return {'model.name': 'lm', 'model.mixer': mixer, 'model.width': width, 'model.layers': blocks,
          'model.heads': heads}


# (cell, width, non-embedding parameters) of the classic LMs at the full size, 2 layers
FULL_CLASSIC = (('rnn', 1624, 10_658_377), ('lstm', 816, 10_713_329), ('gru', 936, 10_585_289))
# arm -> (overrides, non-embedding parameters at a 65-character vocabulary)
SIZES = {
    'small': {
        'gpt': ({'model.name': 'gpt', 'model.width': 64, 'model.layers': 2, 'model.heads': 4},
                100_096),
        'rnn': ({'model.name': 'rnn', 'model.width': 148, 'model.layers': 2}, 97_597),
        'lstm': ({'model.name': 'lstm', 'model.width': 76, 'model.layers': 2}, 98_029),
        'gru': ({'model.name': 'gru', 'model.width': 88, 'model.layers': 2}, 99_769),
        **{f'lm:{mixer}': (_lm(mixer, width, 2, 4), params) for mixer, width, params in (
            ('attention', 64, 100_672), ('mamba', 56, 103_096), ('mamba2', 56, 94_704),
            ('rglru', 64, 97_600), ('gla', 64, 103_840), ('retnet', 64, 100_704),
            ('mlstm', 56, 98_632), ('rnn', 72, 104_184), ('lstm', 56, 101_976),
            ('gru', 60, 101_820), ('mingru', 72, 104_328), ('minlstm', 68, 103_564))},
    },
    'full': {
        'gpt': ({'model.name': 'gpt', 'model.width': 384, 'model.layers': 6, 'model.heads': 6},
                10_647_552),
        **{cell: ({'model.name': cell, 'model.width': width, 'model.layers': 2}, params)
           for cell, width, params in FULL_CLASSIC},
        # experiments/sweeps/mixers.py's widths, matched there to the attention LM's 10.6M
        **{f'lm:{mixer}': (_lm(mixer, width, blocks, 6), params)
           for mixer, (width, blocks, params) in MIXER_SIZES['full'].items() if ',' not in mixer},
    },
}


def get_sweep(arg: str = ''):
  size = sweep.variant(arg, list(SIZES), 'full', 'char_lm_compare.py')
  arms = []
  for overrides, _ in SIZES[size].values():
    if overrides['model.name'] not in registry.MODELS:
      continue
    reads_longer = not registry.MODELS[overrides['model.name']].longer_windows(
        _model_fields(overrides))
    arms.append({**overrides, **({'train.eval_lengths': LENGTHS} if reads_longer else {})})
  return tuning.Tuning(arms=arms, search=SEARCH[size], seeds=3)


def _model_fields(overrides: dict) -> dict:
  """The model fields an arm sets, as entry.longer_windows reads them (m.get('position'))."""
  return {k.split('.', 1)[1]: v for k, v in overrides.items() if k.startswith('model.')}
