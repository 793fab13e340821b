"""Every sequence mixer of the LM backbone, and two hybrids, at one non-embedding parameter count on
the same text.

  python launch.py --config=experiments/configs/lm.py:small \
      --config.data.path=../shared/data/tinyshakespeare.txt \
      --sweep=experiments/sweeps/mixers.py:small --workdir=runs/mixers_small

The mixer is the only difference (seqmodels/models/lm.py: the same embedding, RMSNorm, SwiGLU, init
and recipe). Each trial asks for the attention LM's non-embedding parameters (`model.params`,
'small': 2 blocks at width 96 with 4 heads, 221,664; 'full': 6 blocks at width 384 with 6 heads,
10,621,824) and the run solves for its width (seqmodels/models/size.py; summary.json records what
it got). The hybrids repeat a pattern of three blocks: Griffin ('rglru,rglru,attention', local
attention of a window of 32 / 128 positions) and a Jamba-like 'mamba,mamba,attention'; they have 3 /
6 blocks. What the solver gives at a 65-character vocabulary (width: non-embedding parameters),
'small' then 'full' (each within 3.5% of the target in 'small', 3.2% in 'full'):
  attention 96: 221,664 / 384: 10,621,824     rnn 104: 218,712 / 420: 10,591,980
  lstm 84: 226,884 / 332: 10,609,724          gru 88: 221,144 / 356: 10,680,356
  mingru 104: 218,920 / 420: 10,594,500       minlstm 100: 224,300 / 400: 10,610,800
  mamba 84: 220,500 / 348: 10,590,684         mamba2 88: 228,880 / 348: 10,282,728
  rglru 96: 213,984 / 396: 10,687,644         gla 96: 226,416 / 384: 10,678,656
  retnet 96: 221,712 / 384: 10,622,208        mlstm 84: 212,452 / 348: 10,407,012
  rglru,rglru,attention 80: 227,760 / 396: 10,890,396
  mamba,mamba,attention 72: 226,584 / 360: 10,663,560
"""

from seqmodels import sweep
from seqmodels.layers.mixers import MIXERS

# size -> (non-embedding parameters asked of every trial, blocks, blocks of a hybrid)
SIZES = {'small': (221_664, 2, 3), 'full': (10_621_824, 6, 6)}
PATTERNS = ('attention', 'rnn', 'lstm', 'gru', 'mingru', 'minlstm', 'mamba', 'mamba2', 'rglru',
            'gla', 'retnet', 'mlstm', 'rglru,rglru,attention', 'mamba,mamba,attention')
WINDOW = {'small': 32, 'full': 128}


def get_sweep(arg: str = ''):
  size = sweep.variant(arg, list(SIZES), 'full', 'mixers.py')
  params, layers, hybrid_layers = SIZES[size]
  trials = []
  for pattern in PATTERNS:
    if not all(p in MIXERS for p in pattern.split(',')):
      continue
    trial = {'model.pattern': pattern, 'model.params': params,
             'model.layers': hybrid_layers if ',' in pattern else layers}
    if ',' in pattern:
      trial['model.window'] = WINDOW[size]
    trials.append(trial)
  return trials
