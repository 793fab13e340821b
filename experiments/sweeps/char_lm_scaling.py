"""A scaling sweep: a few sizes of each of four character LMs, each trained for the same number of
tokens per non-embedding parameter, for the report's loss-vs-parameters and loss-vs-FLOPs plot
with a power-law fit per architecture (docs/protocol.md).

  python launch.py --config=experiments/configs/char_lm_compare.py:small \
      --config.data.path=../shared/data/tinyshakespeare.txt \
      --sweep=experiments/sweeps/char_lm_scaling.py:small --workdir=runs/char_lm_scaling_small

'small': ~25k, ~55k and ~100k non-embedding parameters at 10 tokens per parameter (a CPU size);
'full': ~1.3M, ~5M and ~10.6M at 20 tokens per parameter (Chinchilla's ratio; a GPU size). One
learning rate per size for all (the config's); tune it first with char_lm_compare.py where the
ranking matters more than the slope. Widths are matched by hand (the non-embedding parameters
beside each).
"""

from seqmodels import sweep, tuning
from seqmodels.models import registry


def _lm(mixer: str, width: int, blocks: int, heads: int) -> dict:
  return {'model.name': 'lm', 'model.mixer': mixer, 'model.width': width, 'model.layers': blocks,
          'model.heads': heads}


# size -> (tokens per parameter, {architecture: [(overrides, non-embedding parameters), ...]})
SIZES = {
    'small': (10, {
        'gpt': [({'model.name': 'gpt', 'model.width': w, 'model.layers': 2, 'model.heads': 4}, n)
                for w, n in ((32, 25_472), (48, 56_640), (64, 100_096))],
        'lstm': [({'model.name': 'lstm', 'model.width': w, 'model.layers': 2}, n)
                 for w, n in ((40, 28_585), (56, 54_329), (76, 98_029))],
        'lm:attention': [(_lm('attention', w, 2, 4), n)
                         for w, n in ((32, 25_248), (48, 55_536), (64, 100_672))],
        'lm:rglru': [(_lm('rglru', w, 2, 4), n) for w, n in ((32, 24_736), (48, 54_000),
                                                            (64, 97_600))],
    }),
    'full': (20, {
        'gpt': [({'model.name': 'gpt', 'model.width': w, 'model.layers': 6, 'model.heads': 6}, n)
                for w, n in ((144, 1_504_512), (264, 5_039_232), (384, 10_647_552))],
        'lm:attention': [(_lm('attention', w, 6, 6), n)
                         for w, n in ((144, 1_494_864), (264, 5_021_544), (384, 10_621_824))],
        'lm:rglru': [(_lm('rglru', w, 6, 6), n)
                     for w, n in ((144, 1_418_832), (264, 4_755_432), (384, 10_050_432))],
        'lstm': [({'model.name': 'lstm', 'model.width': w, 'model.layers': 2}, n)
                 for w, n in ((296, 1_423_529), (560, 5_058_545), (816, 10_713_329))],
    }),
}
TOKENS_PER_STEP = {'small': 16 * 64, 'full': 64 * 256}  # the config's batch_size x seq_len


def get_sweep(arg: str = ''):
  size = sweep.variant(arg, list(SIZES), 'full', 'char_lm_scaling.py')
  ratio, archs = SIZES[size]
  trials = []
  for sizes in archs.values():
    for overrides, params in sizes:
      steps = tuning.steps_for_tokens(params * ratio, TOKENS_PER_STEP[size])
      if overrides['model.name'] in registry.MODELS:  # one evaluation and checkpoint, at the end
        trials.append({**overrides, 'train.num_steps': steps, 'train.eval_every': steps,
                       'train.checkpoint_every': steps})
  return trials
