"""The report's tables: mean ± std over seeds; failed, unfinished and pending runs; the CSV."""

import csv
import json
import math

import numpy as np
import pytest

from seqmodels.report import tables
from tests.report.workdirs import lm_run


def test_rows_group_seeds_with_mean_and_sample_std(sweep_dir):
  rows = tables.table_rows(tables.load_runs(tables.find_runs([str(sweep_dir)])))
  by_name = {r['run']: r for r in rows}
  assert len(rows) == 5  # 2 models x 2 lengths, seeds together, plus the failed trial
  lstm10 = by_name['model.name=lstm,data.max_len=10']
  assert lstm10['seeds'] == 2 and lstm10['status'] == 'done'
  mean, std, n = lstm10['final eval bits/token']
  assert (mean, n) == (1.5, 2) and std == pytest.approx(math.sqrt(0.5))
  assert lstm10['tokens/s'][:2] == (1500.0, pytest.approx(math.sqrt(0.5) * 1000))
  assert lstm10['best eval bits/token'][0] == pytest.approx(1.5)
  assert lstm10['best eval seq. accuracy'][0] == pytest.approx(0.1)
  assert lstm10['peak memory (MiB)'][0] == pytest.approx(100.0)
  assert by_name['model.name=gpt,data.max_len=20']['final eval bits/token'][0] == 3.5
  failed = by_name['model.name=rnn,data.max_len=10,seed=0']
  assert failed['model'] == 'rnn' and failed['status'].startswith('failed: error: loss became nan')


def test_a_run_begun_but_not_finished_is_a_row_with_the_step_it_resumes_from(tmp_path):
  lm_run(tmp_path, 'done', 'lstm', 0, 10, bits=1.0, tokens_per_sec=1000.0)
  lm_run(tmp_path, 'stopped', 'gpt', 0, 10, bits=2.0, tokens_per_sec=1000.0, steps=(50, 100, 150))
  (tmp_path / 'stopped' / 'summary.json').unlink()  # stopped (or running) after logging step 150
  config = json.loads((tmp_path / 'stopped' / 'config.json').read_text())
  (tmp_path / 'stopped' / 'config.json').write_text(
      json.dumps({**config, 'train': {'num_steps': 300}}))
  status = lambda: {r['run']: r for r in
                    tables.table_rows(tables.load_runs(tables.find_runs([str(tmp_path)])))}
  rows = status()
  assert rows['done']['status'] == 'done'
  assert rows['stopped']['model'] == 'gpt' and rows['stopped']['final eval bits/token'] is None
  # Before, 'step 150 of 300' each time: the log's, where a rerun resumes from the last checkpoint.
  assert rows['stopped']['status'] == 'unfinished (no checkpoint yet: step 0 of 300; logged to 150)'
  for step in ('50', '100', '150.orbax-checkpoint-tmp-1'):  # the last one a save cut short
    (tmp_path / 'stopped' / 'checkpoints' / step).mkdir(parents=True)
  checkpoint_behind = 'unfinished (checkpoint at step 100 of 300; logged to 150)'
  assert status()['stopped']['status'] == checkpoint_behind
  (tmp_path / 'stopped' / 'checkpoints' / '150').mkdir()
  assert status()['stopped']['status'] == 'unfinished (step 150 of 300)'


def test_a_sweeps_trials_not_begun_are_pending_rows_in_its_order(tmp_path):
  lm_run(tmp_path / 'sweep', 'model.name=lstm', 'lstm', 0, 10, bits=1.0, tokens_per_sec=1000.0)
  # the sweep stopped after one
  trials = [{'model.name': 'gpt'}, {'model.name': 'lstm'}, {'model.name': 'gru'}]
  (tmp_path / 'sweep' / 'sweep.json').write_text(
      json.dumps({'sweep': 's.py', 'config': 'c.py', 'trials': trials}))
  # a path however it is written: each trial once
  for path in (str(tmp_path / 'sweep'), f'{tmp_path}/./sweep/'):
    rows = tables.table_rows(tables.load_runs(tables.find_runs([path])))
    assert [(r['run'], r['model'], r['status']) for r in rows] == [
        ('model.name=gpt', 'gpt', 'pending'), ('model.name=lstm', 'lstm', 'done'),
        ('model.name=gru', 'gru', 'pending')]
  assert ('| model.name=gru | gru |' in
          tables.markdown_table(tables.load_runs(tables.find_runs([str(tmp_path)]))))


def test_repeats_of_one_seed_are_rows_of_their_own_and_a_run_named_twice_is_one(tmp_path):
  for name in ('on_1_device', 'on_8_devices'):  # one config, one seed: not two samples over seeds
    lm_run(tmp_path, name, 'gpt', 0, 10, bits=1.0 if name == 'on_1_device' else 1.2,
           tokens_per_sec=1000.0)
  lm_run(tmp_path, 'seed1', 'gpt', 1, 10, bits=1.4, tokens_per_sec=1000.0)
  dirs = [str(tmp_path / 'on_1_device'), str(tmp_path / 'on_8_devices'), str(tmp_path / 'seed1'),
          f'{tmp_path}/./on_1_device/']
  assert tables.find_runs(dirs) == dirs[:3]
  rows = tables.table_rows(tables.load_runs(tables.find_runs(dirs)))
  # Before: one row, 'seeds 3' (or 2 for one run named twice), its mean over the repeats.
  assert [(r['dirs'], r['seeds']) for r in rows] == [(dirs[:3:2], 2), (dirs[1:2], 1)]
  assert rows[0]['final eval bits/token'][0] == pytest.approx(1.2)


def test_markdown_table_prints_mean_pm_std_and_marks_failures(sweep_dir):
  table = tables.markdown_table(tables.load_runs(tables.find_runs([str(sweep_dir)])))
  lines = table.strip().splitlines()
  assert len(lines) == 2 + 5
  header = [c.strip() for c in lines[0].strip('|').split('|')]
  assert header[:4] == ['run', 'model', 'seeds', 'params'] and header[-1] == 'status'
  lstm10 = next(l for l in lines if l.startswith('| model.name=lstm,data.max_len=10 '))
  cells = [c.strip() for c in lstm10.strip('|').split('|')]
  assert cells[header.index('final eval bits/token')] == '1.5 ± 0.71'
  assert cells[header.index('params')] == '1,000'  # no spread over seeds: no ± 0
  assert cells[header.index('tokens/s')] == '1,500 ± 710'
  rnn = next(l for l in lines if 'model.name=rnn' in l)
  # '|' cannot break the table
  assert rnn.rstrip(' |').endswith('failed: error: loss became nan / at step 3')


def test_csv_has_mean_and_std_columns(sweep_dir, tmp_path):
  tables.write_csv(tables.load_runs(tables.find_runs([str(sweep_dir)])), str(tmp_path / 'r.csv'))
  with open(tmp_path / 'r.csv') as f:
    rows = {r['run']: r for r in csv.DictReader(f)}
  r = rows['model.name=gpt,data.max_len=10']
  assert float(r['final eval bits/token mean']) == 2.5
  assert float(r['final eval bits/token std']) == pytest.approx(math.sqrt(0.5))
  assert (r['seeds'] == '2' and
          rows['model.name=rnn,data.max_len=10,seed=0']['final eval bits/token mean'] == '')


def test_regression_runs_get_mse_columns_instead_of_bits_per_token(adding_dir, sweep_dir):
  runs = tables.load_runs(tables.find_runs([str(adding_dir)]))
  row = {r['run']: r for r in tables.table_rows(runs)}['model.name=rnn,data.max_len=100']
  mean, std, n = row['final eval MSE']
  assert (n, mean) == (2, pytest.approx(1.5)) and std == pytest.approx(math.sqrt(0.5))
  # best_eval_loss is the MSE itself, not nats
  assert row['best eval MSE'][0] == pytest.approx(1.35)
  assert row['best eval bits/token'] is None and row['final eval bits/token'] is None
  header = tables.markdown_table(runs).splitlines()[0]
  assert 'final eval MSE' in header and 'best eval MSE' in header and 'bits/token' not in header
  lm_header = (
      tables.markdown_table(tables.load_runs(tables.find_runs([str(sweep_dir)]))).splitlines()[0])
  assert 'MSE' not in lm_header  # shown only when some run is a regression run


def test_a_window_length_that_follows_the_tokenizer_is_not_a_length_axis():
  run = lambda tokenizer, seq_len, model='lstm': {'status': 'done', 'config': {
      'model': {'name': model},
      'data': {'name': 'text', 'tokenizer': tokenizer, 'seq_len': seq_len}}}
  same_text = [run('char', 160), run('char', 160, 'gpt'), run('word', 32), run('word', 32, 'gpt')]
  assert tables.length_axis(same_text) is None  # 160 characters and 32 words: one text, other units
  swept = same_text + [run('char', 320), run('word', 64)]
  # each tokenizer at two lengths: a length swept
  assert tables.length_axis(swept) == ('data.seq_len',)
  assert tables.length_axis([run('char', 160), run('char', 320)]) == ('data.seq_len',)


def test_adding_mean_predictor_mse_is_the_variance_of_generated_targets():
  from seqmodels.data import tasks
  for length in (10, 101):
    targets = np.array([tasks.adding_example(seed=0, split='train', index=i, min_len=length,
                                             max_len=length)['target'] for i in range(3000)])
    assert abs(targets.mean() - 1) < 0.02  # the mean predictor predicts 1
    # sd ~2.2%
    assert np.mean((targets - 1) ** 2) == pytest.approx(tables.ADDING_MEAN_PREDICTOR_MSE, rel=0.06)


def test_translation_runs_get_bleu_columns_only_when_some_run_has_them(tmp_path, sweep_dir):
  run = tmp_path / 'mt' / 'model.name=seq2seq_gru'
  run.mkdir(parents=True)
  (run / 'summary.json').write_text(
      json.dumps({'status': 'done', 'model': 'seq2seq_gru', 'params': 5,
                  'eval': {'loss': 0.1, 'bits_per_token': 0.144, 'bleu_greedy': 98.16,
                           'bleu_beam': 98.76, 'chrf_beam': 99.3}}))
  table = tables.markdown_table(tables.load_runs(tables.find_runs([str(tmp_path / 'mt')])))
  header, _, row = table.splitlines()
  cols = [c.strip() for c in header.strip('|').split('|')]
  cells = dict(zip(cols, (c.strip() for c in row.strip('|').split('|'))))
  assert (
      (cells['BLEU greedy'], cells['BLEU beam'], cells['chrF beam']) == ('98.16', '98.76', '99.3'))
  assert ('BLEU beam' not in
          tables.markdown_table(tables.load_runs(tables.find_runs([str(sweep_dir)]))))


def test_a_loss_that_is_not_per_token_is_not_shown_in_bits_per_token(tmp_path):
  lm_run(tmp_path, 'lm', 'gpt', 0, 10, bits=1.0, tokens_per_sec=1000.0)
  d = tmp_path / 'classifier'
  d.mkdir()
  (d / 'config.json').write_text(json.dumps({'seed': 0, 'model': {'name': 'bert'},
                                             'data': {'name': 'classify'}}))
  (d / 'summary.json').write_text(json.dumps({'status': 'done', 'model': 'bert',
                                              'eval': {'loss': 0.3, 'accuracy': 0.9},
                                              'best_eval_loss': 0.25}))  # nats per example
  rows = {r['run']: r
          for r in tables.table_rows(tables.load_runs(tables.find_runs([str(tmp_path)])))}
  # before: 0.36, in a column of bits per token
  assert rows['classifier']['best eval bits/token'] is None
  assert rows['classifier']['best eval loss'][0] == 0.25 and rows['lm']['best eval loss'] is None
  assert rows['lm']['best eval bits/token'][0] == pytest.approx(1.0)


def test_non_finite_values_read_back_from_strict_and_older_json(tmp_path):
  # strict JSON, as written now
  lines = ['{"step": 1, "split": "train", "loss": "NaN", "x": "Infinity"}',
           # bare constants, as older runs wrote
           '{"step": 2, "split": "train", "loss": NaN, "x": -Infinity}',
           '{"step": 3, "split": "tr']  # a torn last line
  (tmp_path / 'metrics.jsonl').write_text('\n'.join(lines))
  records = tables.read_metrics(str(tmp_path))
  assert [r['split'] for r in records] == ['train', 'train']
  assert all(math.isnan(r['loss']) for r in records)
  assert [r['x'] for r in records] == [math.inf, -math.inf]
  assert tables.as_float('Infinity') == math.inf and math.isnan(tables.as_float('NaN'))
  assert math.isnan(tables.as_float('not a number')) and tables.as_float(2) == 2.0
