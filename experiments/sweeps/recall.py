"""The recall experiments' grids, one variant per variant of experiments/configs/recall.py.

  python launch.py --config=experiments/configs/recall.py:mqar_small \
      --sweep=experiments/sweeps/recall.py:mqar_small --workdir=runs/mqar_small
  python -m seqmodels.report runs/mqar_small --out runs/mqar_small/report

mqar: Zoology's figure 2, every mixer at each width and (seq_len, kv pairs), over its learning-rate
grid (the report keeps each mixer's best lr: metric_vs_width, metric_vs_state). induction: each
mixer trained at 256 tokens and tested at 2^8..2^16 (attention with RoPE and with learned positions,
which cannot embed past 256 and so is tested at 256 only). selective: each mixer once. The _small
variants are CPU-sized: fewer mixers, widths and lengths, one learning rate.
"""

from seqmodels import sweep

# the lm backbone's mixers, then the classic models (model.name) where they apply
MIXERS = ('attention', 'mamba', 'mamba2', 'rglru', 'gla', 'retnet', 'mlstm', 'lstm', 'gru',
          'mingru')
CLASSIC = ('gpt', 'lstm', 'gru')
SMALL = ('attention', 'mamba', 'gla', 'retnet', 'lstm')
# Zoology figure 2: (seq_len, kv pairs, batch size)
ZOOLOGY = [(64, 4, 512), (128, 8, 512), (256, 16, 256), (512, 64, 128)]
LRS = [1e-4, 4.6e-4, 2.2e-3, 1e-2]  # np.logspace(-4, -2, 4), Zoology's grid


def models(mixers, classic=()) -> list[sweep.Overrides]:
  return ([{'model.mixer': m} for m in mixers] + [{'model.name': n} for n in classic])


def get_sweep(arg: str = ''):
  which = sweep.variant(arg, ['mqar', 'mqar_small', 'induction', 'induction_small', 'selective',
                              'selective_small'], 'mqar', 'recall.py')
  if which == 'mqar':
    grid = [{'data.seq_len': T, 'data.kv_pairs': kv, 'train.batch_size': b} for T, kv, b in ZOOLOGY]
    return sweep.product(grid, models(MIXERS, CLASSIC), sweep.sweep('model.width', [64, 128, 256,
                                                                                    512]),
                         sweep.sweep('optim.lr', LRS))
  if which == 'mqar_small':
    return sweep.product(models(SMALL), sweep.sweep('model.width', [16, 64]))
  if which.startswith('induction'):
    trained = 256 if which == 'induction' else 64  # the config's data.seq_len
    learned = {'model.mixer': 'attention', 'model.position': 'learned',
               'data.eval_lens': str(trained)}
    mixers = MIXERS if which == 'induction' else SMALL
    return models(mixers, ('lstm', 'gru') if which == 'induction' else ()) + [learned]
  return models(MIXERS if which == 'selective' else SMALL,
                ('lstm', 'gru') if which == 'selective' else ())
