"""The gradient-flow CLI: a finished run's checkpoint -> gradient_flow.json that seqmodels.report
plots."""

import json

import numpy as np
import pytest

from experiments.configs.base import get_base_config
from seqmodels import report, validation
from seqmodels.analysis import gradient_flow
from seqmodels.train import loop
from tests.data.bert_test import write_text


def _run(tmp_path, name, data='copy'):
  c = get_base_config()
  c.data.name, c.data.min_len, c.data.max_len, c.data.num_symbols = data, 4, 4, 4
  c.data.num_train, c.data.num_validation, c.data.num_test = 64, 16, 8
  c.data.data_dir = str(tmp_path / 'tfds')
  # a biLM reads running text (seqmodels/validation.py): windows of 10 next-token pairs
  if data == 'text':
    c.data.path, c.data.seq_len, c.data.byte_level = write_text(tmp_path / 'text.txt'), 10, True
  c.model.name, c.model.width, c.model.layers, c.model.heads = name, 16, 1, 2
  validation.validate(c)
  c.train.num_steps, c.train.batch_size, c.train.log_every = 2, 8, 1
  c.train.eval_every = c.train.checkpoint_every = 2
  workdir = str(tmp_path / 'runs' / f'{name}_{data}')
  loop.train_and_evaluate(c, workdir)
  return workdir


def test_cli_writes_the_json_the_report_plots(tmp_path):
  runs = [_run(tmp_path, 'rnn'), _run(tmp_path, 'gpt')]
  out = tmp_path / 'runs' / 'gradient_flow.json'
  gradient_flow.main(sum((['--workdir', r] for r in runs), []) + ['--out', str(out)])
  series = json.loads(out.read_text())['series']
  assert {s['model'] for s in series} == {'rnn', 'gpt'}
  T = 2 * 4 + 2
  for s in series:
    assert len(s['norms']) == T and s['step'] == 2 and s['loss_position'] == T - 1
    assert np.all(np.isfinite(s['norms'])) and s['norms'][s['loss_position']] > 0
  assert any(s['site'].endswith('h') for s in series if s['model'] == 'rnn')
  with pytest.raises(ValueError, match=r'--loss_position=10 is outside its 10 positions: pass '
                     r'one in 0..9 \(or -1'):
    gradient_flow.run_gradient_flow(runs[0], loss_position=T)
  report.write_report([str(tmp_path / 'runs')], str(tmp_path / 'report'))
  assert (tmp_path / 'report' / 'gradient_flow.png').stat().st_size > 0


def test_regression_runs_read_the_loss_at_their_last_step(tmp_path):
  workdir = _run(tmp_path, 'gru', 'adding')
  gradient_flow.main(['--workdir', workdir, '--batch_size', '4'])
  (series,) = (
      json.loads((tmp_path / 'runs' / 'gru_adding' / 'gradient_flow.json').read_text())['series'])
  assert (series['loss_position'] == 3 and len(series['norms']) == 4 and
          series['site'] == 'rnn/layer0/h')
  assert series['run'] == 'gru_adding'
  with pytest.raises(ValueError, match='a regression run has one loss: leave it out'):
    gradient_flow.run_gradient_flow(workdir, whole_sequence=True)
  with pytest.raises(ValueError,
                     match='a regression run has one loss, read at its end: leave it out'):
    gradient_flow.run_gradient_flow(workdir, loss_position=2)


def test_elmo_runs_give_each_direction_its_own_loss_and_reading_order(tmp_path):
  """The forward LM's loss at the last step, the backward LM's predicting x_0: each direction's
  states after its loss position (in its reading order) cannot reach it, so their norms are exactly
  0 there and only there."""
  workdir = _run(tmp_path, 'elmo', 'text')
  series = gradient_flow.run_gradient_flow(workdir, batch_size=4)
  by_direction = {d: [s for s in series if f'/{d}0/' in f'/{s["site"]}'] for d in ('fwd', 'bwd')}
  assert all(len(v) == 1 for v in by_direction.values()), [s['site'] for s in series]
  T = 10  # data.seq_len: the biLM reads x_0..x_T
  for direction, (s,) in by_direction.items():
    norms = np.asarray(s['norms'])
    assert len(norms) == T + 1 and s['loss_position'] == T - 1, (direction, s['loss_position'])
    assert s.get('time') == ('reversed' if direction == 'bwd' else None)
    assert np.all(norms[:T] > 0) and norms[T] == 0, (direction, norms)


def test_classification_losses_are_each_rows_and_pretraining_is_refused():
  """A classifier's loss is each row's cross-entropy, weighted (padding rows 0); its sites are found
  as an LM's are. Translation runs: tests/analysis/attention_maps_test.py, on the run it trains."""
  batch = {'label': np.array([0, 1]), 'weight': np.array([1.0, 0.0])}
  logits_Bx2 = np.array([[2.0, 0.0], [0.0, 5.0]], np.float32)
  loss_at = gradient_flow._loss_at
  np.testing.assert_allclose(loss_at('classify', 3)(batch)(logits_Bx2),
                             [np.log1p(np.exp(-2.0)), 0.0], rtol=1e-6)
  with pytest.raises(ValueError,
                     match='which a mlm run does not have: pass a run of one of lm, regression'):
    loss_at('mlm', 0)  # main prints it as one line


def test_a_workdir_without_a_run_or_a_checkpoint_is_one_line_naming_it(tmp_path, capsys):
  empty, untrained = tmp_path / 'empty', tmp_path / 'untrained'
  empty.mkdir()
  (untrained / 'checkpoints').mkdir(parents=True)
  (untrained / 'config.json').write_text('{}')
  for workdir, reason in [(empty, 'holds no run (no config.json)'),
                          (untrained, 'has no checkpoint yet')]:
    with pytest.raises(SystemExit) as e:
      gradient_flow.main(['--workdir', str(workdir)])
    assert e.value.code == 2
    assert capsys.readouterr().err == f'error: --workdir={workdir} {reason}' + (
        ': pass the --workdir of a launch.py run\n' if workdir == empty else
        ': train it first (rerunning its launch.py command resumes)\n')
  sweep = tmp_path / 'sweep'
  (sweep / 'model.name=rnn').mkdir(parents=True)
  (sweep / 'model.name=rnn' / 'config.json').write_text('{}')
  (sweep / 'sweep.json').write_text('{}')
  with pytest.raises(SystemExit):
    gradient_flow.main(['--workdir', str(sweep)])
  assert capsys.readouterr().err == (f'error: --workdir={sweep} is a sweep of 1 trial: pass each '
                                     'trial\'s own directory, e.g. '
                                     f'--workdir={sweep}/model.name=rnn\n')
  counted = tmp_path / 'ngram'
  counted.mkdir()
  (counted / 'config.json').write_text(json.dumps({'model': {'name': 'ngram'}}))
  (counted / 'summary.json').write_text('{}')
  with pytest.raises(SystemExit):
    gradient_flow.main(['--workdir', str(counted)])
  assert capsys.readouterr().err == (f'error: --workdir={counted}: config.model.name=ngram is '
                                     'fitted by counting and has no hidden states or attention to '
                                     'analyse: pass a neural run\n')
