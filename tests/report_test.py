"""Report: table values (mean ± std over seeds, failed trials), CSV, and non-empty PNGs only where inputs exist."""

import csv
import json
import math
import os

import numpy as np
import pytest

from experiments import report

PNG = b'\x89PNG\r\n\x1a\n'


def _run(root, name, model, seed, max_len, bits, tokens_per_sec, steps=(100, 200)):
  d = root / name
  d.mkdir(parents=True)
  loss = bits * math.log(2)
  (d / 'config.json').write_text(json.dumps({'seed': seed, 'model': {'name': model, 'width': 8},
                                             'data': {'name': 'copy', 'max_len': max_len}}))
  lines = []
  for s in steps:
    lines.append({'step': s, 'split': 'train', 'loss': loss * 2 * steps[-1] / s, 'tokens_per_sec': tokens_per_sec})
    lines.append({'step': s, 'split': 'eval', 'loss': loss * steps[-1] / s, 'sequence_accuracy': 0.1 * s / steps[-1]})
  (d / 'metrics.jsonl').write_text(''.join(json.dumps(l) + '\n' for l in lines) + '{"step": 3')  # torn last line
  (d / 'summary.json').write_text(json.dumps({
      'status': 'done', 'model': model, 'params': 1000, 'eval': {'loss': loss, 'bits_per_token': bits,
                                                                  'sequence_accuracy': 0.1},
      'best_eval_loss': loss, 'tokens_per_sec': tokens_per_sec, 'train_seconds': 10.0, 'wall_seconds': 12.0,
      'peak_memory_bytes': 2**20 * 100}))


@pytest.fixture
def sweep_dir(tmp_path):
  root = tmp_path / 'sweep'
  for model in ('lstm', 'gpt'):
    for max_len, base in ((10, 1.0), (20, 2.0)):
      for seed in (0, 1):
        _run(root, f'model.name={model},data.max_len={max_len},seed={seed}', model, seed, max_len,
             bits=base + seed + (model == 'gpt'), tokens_per_sec=1000.0 * (seed + 1))
  bad = root / 'model.name=rnn,data.max_len=10,seed=0'
  bad.mkdir()
  (bad / 'failed.json').write_text(json.dumps({'error': 'error: loss became nan | at step 3', 'detail': ''}))
  return root


def test_rows_group_seeds_with_mean_and_sample_std(sweep_dir):
  rows = report.table_rows(report.load_runs(report.find_runs([str(sweep_dir)])))
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


def test_markdown_table_prints_mean_pm_std_and_marks_failures(sweep_dir):
  table = report.markdown_table(report.load_runs(report.find_runs([str(sweep_dir)])))
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
  assert rnn.rstrip(' |').endswith('failed: error: loss became nan / at step 3')  # '|' cannot break the table


def test_csv_has_mean_and_std_columns(sweep_dir, tmp_path):
  report.write_csv(report.load_runs(report.find_runs([str(sweep_dir)])), str(tmp_path / 'r.csv'))
  with open(tmp_path / 'r.csv') as f:
    rows = {r['run']: r for r in csv.DictReader(f)}
  r = rows['model.name=gpt,data.max_len=10']
  assert float(r['final eval bits/token mean']) == 2.5
  assert float(r['final eval bits/token std']) == pytest.approx(math.sqrt(0.5))
  assert r['seeds'] == '2' and rows['model.name=rnn,data.max_len=10,seed=0']['final eval bits/token mean'] == ''


def _analysis_files(d):
  T = 12
  (d / 'gradient_flow.json').write_text(json.dumps({'series': [
      {'model': 'rnn', 'site': 'layer0/h', 'step': 0, 'norms': (0.5 ** np.arange(T)[::-1]).tolist()},
      {'model': 'gpt', 'site': 'block0/output', 'norms': [1.0] * T}]}))
  (d / 'cost.json').write_text(json.dumps({'device': 'cpu', 'entries': [
      {'model': m, 'seq_len': t, 'batch_size': 8, 'step_ms': t * k, 'peak_memory_bytes': t * t * k * 1e3}
      for m, k in (('lstm', 1.0), ('gpt', 0.1)) for t in (64, 128, 256)]}))
  att = np.random.default_rng(0).random((2, 6, 6))
  att = att / att.sum(-1, keepdims=True)
  np.savez(d / 'attention_maps.npz', layer0=att, layer1=att[0], tokens=np.array(list('abcdef')))


def test_write_report_makes_every_plot_whose_inputs_exist(sweep_dir, tmp_path):
  _analysis_files(sweep_dir / 'model.name=gpt,data.max_len=10,seed=0')
  files = report.write_report([str(sweep_dir)], str(tmp_path / 'out'))
  expected = {'learning_curves', 'metric_vs_length', 'cost_vs_length', 'gradient_flow',
              'attention model.name=gpt,data.max_len=10,seed=0'}
  assert expected <= set(files)
  for kind in expected:
    with open(files[kind], 'rb') as f:
      data = f.read()
    assert data.startswith(PNG) and len(data) > 10_000, kind
  md = open(files['markdown']).read()
  assert '![learning curves](learning_curves.png)' in md and '1.5 ± 0.71' in md


def test_no_plot_without_its_inputs(tmp_path):
  run = tmp_path / 'one'
  run.mkdir()
  (run / 'summary.json').write_text(json.dumps({'status': 'done', 'model': 'lstm', 'params': 5}))
  files = report.write_report([str(run)], str(tmp_path / 'out'))
  assert set(files) == {'markdown', 'csv'}
  assert not [f for f in os.listdir(tmp_path / 'out') if f.endswith('.png')]


def test_seq2seq_attention_examples_and_bleu_by_length_are_plotted(tmp_path):
  run = tmp_path / 'seq2seq'
  run.mkdir()
  (run / 'summary.json').write_text(json.dumps({'status': 'done', 'model': 'seq2seq', 'params': 5}))
  (run / 'bleu_by_length.json').write_text(json.dumps({'bucket_width_tokens': 5, 'greedy': [
      {'min_len': 0, 'max_len': 4, 'sentences': 3, 'bleu': 30.0}, {'min_len': 5, 'max_len': 9, 'sentences': 2,
                                                                    'bleu': 20.0}]}))
  w = np.full((3, 4), 0.25, np.float32)  # the layout seqmodels/data/translation.py writes
  np.savez(run / 'attention_maps.npz', count=np.asarray(2), weights_0=w, src_0=np.array(list('abcd')),
           tgt_0=np.array(['x', 'y', '</s>']), weights_1=w[:2], src_1=np.array(list('abcd')), tgt_1=np.array(['x', 'y']))
  files = report.write_report([str(run)], str(tmp_path / 'out'))
  for kind in ('bleu_by_length', 'attention seq2seq'):
    assert open(files[kind], 'rb').read().startswith(PNG), kind
