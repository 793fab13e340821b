"""Tests of the recall plots: each mixer at its best learning rate vs width and vs decoding state,
and recall accuracy vs test length."""

import json

from experiments.configs.base import get_base_config
from seqmodels.report import plots, tables


def _run(root, name, *, mixer, width, lr, seed, acc, lengths=None):
  d = root / name
  d.mkdir(parents=True)
  model = {**get_base_config().model.to_dict(), 'name': 'lm', 'mixer': mixer, 'width': width}
  data = {'name': 'mqar', 'seq_len': 64, 'kv_pairs': 4}
  (d / 'config.json').write_text(json.dumps({'seed': seed, 'model': model, 'data': data,
                                             'optim': {'lr': lr}}))
  ev = {'loss': 1.0, 'accuracy': acc, 'recall_accuracy': acc,
        **{f'recall_accuracy_len{n}': a for n, a in (lengths or {}).items()}}
  (d / 'summary.json').write_text(json.dumps({'status': 'done', 'model': 'lm', 'eval': ev}))


def _runs(tmp_path):
  for mixer in ('attention', 'mamba'):
    for width in (16, 64):
      for lr in (1e-3, 1e-2):
        for seed in (0, 1):
          # mamba's best lr is the high one; seed 1 pulls attention's high lr below its low one
          acc = {('attention', 1e-3): 0.9, ('attention', 1e-2): 0.95 - 0.4 * seed,
                 ('mamba', 1e-3): 0.1, ('mamba', 1e-2): 0.3}[mixer, lr] * width / 64
          _run(tmp_path, f'{mixer},{width},{lr},{seed}', mixer=mixer, width=width, lr=lr,
               seed=seed, acc=acc, lengths={64: acc, 256: acc / 2})
  return tables.load_runs(tables.find_runs([str(tmp_path)]))


def test_each_mixer_is_drawn_at_its_best_learning_rate_vs_width_and_state(tmp_path):
  runs = _runs(tmp_path / 'runs')
  best = plots._best_over_lr(plots._recall_runs(runs), lambda r: r['config']['model']['width'])
  cells = best['mqar, seq_len 64, 4 kv pairs']
  assert cells[('attention', 64)] == 0.9  # the mean over seeds: 0.9 beats (0.95 + 0.55) / 2
  assert cells[('mamba', 64)] == 0.3 and cells[('mamba', 16)] == 0.3 / 4
  for draw in (plots.metric_vs_width, plots.metric_vs_state, plots.metric_vs_eval_length):
    path = str(tmp_path / f'{draw.__name__}.png')
    assert draw(runs, path) == path
  assert 'final eval recall accuracy' in tables.markdown_table(runs)


def test_no_recall_runs_no_recall_plots(tmp_path):
  _run(tmp_path, 'one', mixer='mamba', width=16, lr=1e-3, seed=0, acc=0.5)
  runs = tables.load_runs([str(tmp_path / 'one')])
  assert plots.metric_vs_width(runs, str(tmp_path / 'w.png')) is None  # one width: no curve
  assert plots.metric_vs_eval_length(runs, str(tmp_path / 'l.png')) is None  # no test lengths
