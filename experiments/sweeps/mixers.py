"""Every sequence mixer of the LM backbone, and two hybrids, at about one parameter count on the
same text.

  python launch.py --config=experiments/configs/lm.py:small \
      --config.data.path=../shared/data/tinyshakespeare.txt \
      --sweep=experiments/sweeps/mixers.py:small --workdir=runs/mixers_small

The mixer is the only difference (seqmodels/models/lm.py: the same embedding, RMSNorm, SwiGLU, init
and recipe); widths are chosen so each LM has about the non-embedding parameters of the attention
one, 'small': 2 blocks at width 96 (222k), 'full': 6 blocks at width 384 (10.6M) with 6 heads (each
within 7%, listed beside each). The hybrids repeat a pattern of three blocks: Griffin
('rglru,rglru,attention', local attention of a window of 32 / 128 positions) and a Jamba-like
'mamba,mamba,attention'; they have 3 / 6 blocks.
"""

from seqmodels import sweep
from seqmodels.layers.mixers import MIXERS

# mixer (or pattern) -> (width, blocks, non-embedding parameters at a 65-character vocabulary)
SIZES = {
    'small': {
        'attention': (96, 2, 221_664), 'rnn': (104, 2, 218_712), 'lstm': (84, 2, 226_884),
        'gru': (88, 2, 221_144), 'mingru': (104, 2, 218_920), 'minlstm': (100, 2, 224_300),
        'mamba': (84, 2, 220_500), 'mamba2': (88, 2, 228_880), 'rglru': (96, 2, 213_984),
        'gla': (96, 2, 226_416), 'retnet': (96, 2, 221_712), 'mlstm': (84, 2, 212_452),
        'rglru,rglru,attention': (80, 3, 227_760), 'mamba,mamba,attention': (72, 3, 226_584),
    },
    'full': {
        'attention': (384, 6, 10_621_824), 'rnn': (432, 6, 11_205_648),
        'lstm': (336, 6, 10_850_448), 'gru': (360, 6, 10_904_040), 'mingru': (432, 6, 11_208_240),
        'minlstm': (408, 6, 10_999_272), 'mamba': (360, 6, 11_327_400),
        'mamba2': (360, 6, 11_000_148), 'rglru': (384, 6, 10_050_432), 'gla': (384, 6, 10_678_656),
        'retnet': (384, 6, 10_622_208), 'mlstm': (360, 6, 11_128_752),
        'rglru,rglru,attention': (384, 6, 10_240_896),
        'mamba,mamba,attention': (360, 6, 10_663_560),
    },
}
WINDOW = {'small': 32, 'full': 128}


def get_sweep(arg: str = ''):
  size = sweep.variant(arg, list(SIZES), 'full', 'mixers.py')
  trials = []
  for pattern, (width, layers, _) in SIZES[size].items():
    if not all(p in MIXERS for p in pattern.split(',')):
      continue
    trial = {'model.pattern': pattern, 'model.width': width, 'model.layers': layers}
    if ',' in pattern:
      trial['model.window'] = WINDOW[size]
    trials.append(trial)
  return trials
