"""Equal tuning: one search for every arm, validation chooses, test reports; power-law fits."""

import json
import math

import numpy as np
import pytest

from seqmodels import errors, sweep, tuning
from seqmodels.report import document, tables

ARMS = [{'model.name': 'lstm'}, {'model.name': 'gpt'}, {'model.name': 'rnn'}]
PLAN = tuning.Tuning(arms=ARMS, search=tuning.lr_grid(1e-3, 1e-2, 2), seeds=3)


def _summary(tmp_path, overrides, validation, test, **extra):
  run = tmp_path / sweep.trial_name(overrides)
  run.mkdir()
  (run / 'summary.json').write_text(json.dumps({
      'status': 'done', 'step': 10, 'eval': {'loss': validation * math.log(2),
                                              'bits_per_token': validation},
      'test': {'bits_per_token': test}, 'evaluation': {'mode': 'strided', 'stride': 16},
      **extra}))
  (run / 'config.json').write_text(json.dumps({
      'model': {'name': overrides['model.name']}, 'train': {'batch_size': 4},
      'data': {'seq_len': 8}, 'seed': overrides.get('seed', 0)}))


def test_the_search_is_the_same_for_every_arm_and_draws_are_seeded():
  assert [s['optim.lr'] for s in PLAN.search] == [0.001, 0.01]
  lrs = lambda arm: [t['optim.lr'] for t in PLAN.search_trials() if t['model.name'] == arm]
  assert lrs('lstm') == lrs('gpt') == lrs('rnn')
  draws = tuning.lr_draws(1e-4, 1e-2, 5, seed=3)
  assert draws == tuning.lr_draws(1e-4, 1e-2, 5, seed=3) != tuning.lr_draws(1e-4, 1e-2, 5, seed=4)
  assert all(1e-4 <= d['optim.lr'] < 1e-2 for d in draws)
  assert tuning.steps_for_tokens(10 * 1000, 64) == 156


def test_validation_chooses_the_setting_and_test_reports_it_over_the_seeds(tmp_path):
  low, high = PLAN.search
  # lstm: the higher rate is better on test, but worse on validation: the lower one is chosen
  _summary(tmp_path, {**ARMS[0], **low}, validation=1.0, test=2.0)
  _summary(tmp_path, {**ARMS[0], **high}, validation=1.5, test=0.5)
  # gpt: the higher rate wins on validation; one trial diverged (a non-finite loss never wins)
  _summary(tmp_path, {**ARMS[1], **low}, validation=math.inf, test=0.1)
  _summary(tmp_path, {**ARMS[1], **high}, validation=1.2, test=1.3)
  # rnn: no trial finished
  summaries = {p.name: tables.read_json(str(p / 'summary.json')) for p in tmp_path.iterdir()}
  chosen = tuning.choose(PLAN, summaries)
  assert chosen == {'model.name=lstm': 0, 'model.name=gpt': 1, 'model.name=rnn': None}
  assert PLAN.reruns(chosen) == [{**ARMS[0], **low, 'seed': 1}, {**ARMS[0], **low, 'seed': 2},
                                 {**ARMS[1], **high, 'seed': 1}, {**ARMS[1], **high, 'seed': 2}]
  for overrides, test in zip(PLAN.reruns(chosen), (2.2, 2.4, 1.5, 1.7)):
    _summary(tmp_path, overrides, validation=0.0, test=test)  # a rerun's validation: no part
  (tmp_path / tuning.TUNING_FILE).write_text(json.dumps(PLAN.to_json()))
  rows = {r['arm']: r for r in tables.tuned_rows(str(tmp_path))}
  lstm, gpt, rnn = rows['model.name=lstm'], rows['model.name=gpt'], rows['model.name=rnn']
  assert lstm['setting'] == 'optim.lr=0.001' and lstm['validation'] == 1.0
  assert lstm['test'][0] == pytest.approx(2.2) and lstm['test'][2] == 3
  assert lstm['test'][1] == pytest.approx(0.2)
  assert gpt['setting'] == 'optim.lr=0.01' and gpt['test'][0] == pytest.approx(1.5)
  assert (rnn['setting'], rnn['test'], rnn['finished'], rnn['trials']) == (None, None, 0, 2)
  table = tables.tuned_markdown(str(tmp_path))
  assert table.index('model.name=gpt') < table.index('model.name=lstm')  # best test first
  assert '| model.name=lstm | 2 (2) | optim.lr=0.001 | 1 | 2.2 ± 0.20 (3) | mode=strided' in table
  # the report writes it (no plots needed for the table)
  files = document.write_report([str(tmp_path)], str(tmp_path / 'report'))
  assert 'Equal tuning' in open(files['markdown']).read()


def test_power_law_fits_recover_each_architectures_exponent(tmp_path):
  for i, n in enumerate((1e4, 4e4, 1.6e5)):
    _summary(tmp_path, {'model.name': 'gpt', 'model.width': i}, 3.0 * n**-0.1, 0.0,
             params=n * 2, params_non_embedding=n, flops_per_token=6 * n)
    _summary(tmp_path, {'model.name': 'lstm', 'model.width': i}, 5.0 * n**-0.2, 0.0, params=n)
  runs = tables.load_runs(tables.find_runs([str(tmp_path)]))
  points = tables.scaling_points(runs)
  assert [q['params'] for q in points['gpt']] == [1e4, 4e4, 1.6e5]  # non-embedding, not params
  assert points['gpt'][0]['flops'] == 6e4 * 10 * 4 * 8 and not points['gpt'][0]['estimated']
  assert points['lstm'][0]['estimated']  # no flops_per_token: the 6 N D estimate
  a, alpha = tables.power_law([q['params'] for q in points['lstm']],
                              [q['loss'] for q in points['lstm']])
  assert (a, alpha) == (pytest.approx(5.0), pytest.approx(0.2))
  table = tables.scaling_markdown(runs)
  assert '| gpt | 3 | 10,000 - 160,000 | 0.100 | 0.100 |' in table
  assert '| lstm | 3 | 10,000 - 160,000 | 0.200 | 0.200* |' in table
  assert np.isfinite(points['lstm'][2]['loss'])


def test_a_sweep_file_returning_a_tuning_loads_as_one_and_its_search_is_checked(tmp_path):
  good = tmp_path / 'good.py'
  good.write_text('from seqmodels import tuning\n'
                  "def get_sweep():\n  return tuning.Tuning([{'model.name': 'gru'}], "
                  'tuning.lr_grid(1e-3, 1e-2, 2))\n')
  plan = sweep.load(str(good))
  assert isinstance(plan, tuning.Tuning) and len(plan.search_trials()) == 2
  bad = tmp_path / 'bad.py'
  bad.write_text(good.read_text().replace("tuning.lr_grid(1e-3, 1e-2, 2))", '[{}, {}], seeds=0)'))
  with pytest.raises(errors.ConfigError, match=r'Tuning\(seeds=0\) must be >= 1'):
    sweep.load(str(bad))
