"""The report's plots: which panels and series they draw, and a PNG for each figure they make."""

import json

import numpy as np

from seqmodels.report import document, plots, tables
from tests.report.workdirs import PNG, adding_run


def test_metric_vs_length_panels_follow_the_task(adding_dir, sweep_dir):
  done = lambda d: [r for r in tables.load_runs(tables.find_runs([str(d)]))
                    if r['status'] == 'done']
  assert [k for k, _ in plots.length_metrics(done(adding_dir))] == ['eval.mse', 'eval.accuracy']
  assert ([k for k, _ in plots.length_metrics(done(sweep_dir))] ==
          ['eval.bits_per_token', 'eval.sequence_accuracy'])


def test_failed_runs_curves_and_grad_norm_are_plotted(adding_dir, tmp_path):
  adding_run(adding_dir, 'model.name=rnn,data.max_len=10,seed=0,optim.clip_norm=0', 'rnn', 0, 10,
             1.0, status='failed', clip_norm=0.0)
  runs = tables.load_runs(tables.find_runs([str(adding_dir)]))
  series = plots.curve_series(runs, tables.length_axis(runs))
  name = 'model.name=rnn,data.max_len=10,seed=0,optim.clip_norm=0'
  assert [r['name'] for r in series[f'{name} (failed: loss nan at step 401)']] == [name]
  files = document.write_report([str(adding_dir)], str(tmp_path / 'out'))
  for kind in ('learning_curves', 'grad_norm', 'metric_vs_length'):
    with open(files[kind], 'rb') as f:
      data = f.read()
    assert data.startswith(PNG) and len(data) > 10_000, kind
  assert '![grad norm](grad_norm.png)' in open(files['markdown']).read()
  # runs logged before train records carried their training seconds
  assert 'loss_vs_time' not in files


def test_attention_tick_labels_show_newlines_and_lone_spaces():
  assert (
      [plots._tick(t) for t in ['\n', ' ', 'Good', '<unk>']] == ['\\n', '\u2423', 'Good', '<unk>'])


def test_gradient_flow_lines_of_two_runs_of_one_model_are_told_apart_by_run(tmp_path):
  """A GRU with and without attention: one model name, two runs, so their labels and colours name
  the runs; a model with one run keeps its name. A translation's encoder series is marked as
  measured from the source's end."""
  (tmp_path / 'gradient_flow.json').write_text(json.dumps({'series': [
      {'model': 'seq2seq_gru', 'run': 'gru_context', 'site': 'encoder/layer0/h', 'time': 'source',
       'loss_position': 2, 'norms': [1.0, 2.0, 3.0, 0.0]},
      {'model': 'seq2seq_gru', 'run': 'gru_additive', 'site': 'encoder/layer0/h',
       'norms': [1.0, 1.0, 1.0]},
      {'model': 'transformer', 'run': 'transformer', 'site': 'encoder_0/output',
       'norms': [1.0, 1.0]}]}))
  series = plots.gradient_flow_series([str(tmp_path / 'gradient_flow.json')])
  assert [label for _, label, *_ in series] == ["gru_context encoder/layer0/h, "
                                                "from the source's end",
                                                'gru_additive encoder/layer0/h',
                                                'transformer encoder_0/output']
  assert len({group for group, *_ in series}) == 3
  np.testing.assert_array_equal(series[0][2], [2, 1, 0, -1])  # the distance from loss_position
  np.testing.assert_array_equal(series[1][2], [2, 1, 0])  # no loss_position: the last entry
