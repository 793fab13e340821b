"""The report's test fixtures: a sweep of copy-task LM runs and one of adding-problem runs."""

import json

import pytest

from tests.report.workdirs import adding_run, lm_run


@pytest.fixture
def sweep_dir(tmp_path):
  root = tmp_path / 'sweep'
  for model in ('lstm', 'gpt'):
    for max_len, base in ((10, 1.0), (20, 2.0)):
      for seed in (0, 1):
        lm_run(root, f'model.name={model},data.max_len={max_len},seed={seed}', model, seed, max_len,
               bits=base + seed + (model == 'gpt'), tokens_per_sec=1000.0 * (seed + 1),
               seconds_per_step=0.01 if model == 'gpt' else 0.05)
  bad = root / 'model.name=rnn,data.max_len=10,seed=0'
  bad.mkdir()
  (bad / 'failed.json').write_text(json.dumps({'error': 'error: loss became nan | at step 3',
                                               'detail': ''}))
  return root


@pytest.fixture
def adding_dir(tmp_path):
  root = tmp_path / 'adding'
  for model, base in (('lstm', 0.01), ('rnn', 0.1)):
    for max_len in (10, 100):
      for seed in (0, 1):
        adding_run(root, f'model.name={model},data.max_len={max_len},seed={seed}', model, seed,
                   max_len, mse=base * (1 + seed) * max_len / 10)
  return root
