"""Report: table values (mean ± std over seeds, failed trials), CSV, and non-empty PNGs only where inputs exist."""

import csv
import json
import math
import os

import numpy as np
import pytest

from experiments import report

PNG = b'\x89PNG\r\n\x1a\n'


def _run(root, name, model, seed, max_len, bits, tokens_per_sec, steps=(100, 200), seconds_per_step=None):
  d = root / name
  d.mkdir(parents=True)
  loss = bits * math.log(2)
  (d / 'config.json').write_text(json.dumps({'seed': seed, 'model': {'name': model, 'width': 8},
                                             'data': {'name': 'copy', 'max_len': max_len}}))
  lines = []
  for s in steps:
    lines.append({'step': s, 'split': 'train', 'loss': loss * 2 * steps[-1] / s, 'tokens_per_sec': tokens_per_sec,
                  **({'train_seconds': s * seconds_per_step} if seconds_per_step else {})})
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
             bits=base + seed + (model == 'gpt'), tokens_per_sec=1000.0 * (seed + 1),
             seconds_per_step=0.01 if model == 'gpt' else 0.05)
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


def test_a_run_begun_but_not_finished_is_a_row_with_its_last_logged_step(tmp_path):
  _run(tmp_path, 'done', 'lstm', 0, 10, bits=1.0, tokens_per_sec=1000.0)
  _run(tmp_path, 'stopped', 'gpt', 0, 10, bits=2.0, tokens_per_sec=1000.0, steps=(50, 100))
  (tmp_path / 'stopped' / 'summary.json').unlink()  # interrupted (or still running) at step 100 of 300
  config = json.loads((tmp_path / 'stopped' / 'config.json').read_text())
  (tmp_path / 'stopped' / 'config.json').write_text(json.dumps({**config, 'train': {'num_steps': 300}}))
  rows = {r['run']: r for r in report.table_rows(report.load_runs(report.find_runs([str(tmp_path)])))}
  assert rows['done']['status'] == 'done' and rows['stopped']['status'] == 'unfinished (step 100 of 300)'
  assert rows['stopped']['model'] == 'gpt' and rows['stopped']['final eval bits/token'] is None


def test_a_sweeps_trials_not_begun_are_pending_rows_in_its_order(tmp_path):
  _run(tmp_path / 'sweep', 'model.name=lstm', 'lstm', 0, 10, bits=1.0, tokens_per_sec=1000.0)
  trials = [{'model.name': 'gpt'}, {'model.name': 'lstm'}, {'model.name': 'gru'}]  # the sweep stopped after one
  (tmp_path / 'sweep' / 'sweep.json').write_text(json.dumps({'sweep': 's.py', 'config': 'c.py', 'trials': trials}))
  for path in (str(tmp_path / 'sweep'), f'{tmp_path}/./sweep/'):  # a path however it is written: each trial once
    rows = report.table_rows(report.load_runs(report.find_runs([path])))
    assert [(r['run'], r['model'], r['status']) for r in rows] == [
        ('model.name=gpt', 'gpt', 'pending'), ('model.name=lstm', 'lstm', 'done'), ('model.name=gru', 'gru', 'pending')]
  assert '| model.name=gru | gru |' in report.markdown_table(report.load_runs(report.find_runs([str(tmp_path)])))


def test_repeats_of_one_seed_are_rows_of_their_own_and_a_run_named_twice_is_one(tmp_path):
  for name in ('on_1_device', 'on_8_devices'):  # one config, one seed: not two samples over seeds
    _run(tmp_path, name, 'gpt', 0, 10, bits=1.0 if name == 'on_1_device' else 1.2, tokens_per_sec=1000.0)
  _run(tmp_path, 'seed1', 'gpt', 1, 10, bits=1.4, tokens_per_sec=1000.0)
  dirs = [str(tmp_path / 'on_1_device'), str(tmp_path / 'on_8_devices'), str(tmp_path / 'seed1'),
          f'{tmp_path}/./on_1_device/']
  assert report.find_runs(dirs) == dirs[:3]
  rows = report.table_rows(report.load_runs(report.find_runs(dirs)))
  # Before: one row, 'seeds 3' (or 2 for one run named twice), its mean over the repeats.
  assert [(r['dirs'], r['seeds']) for r in rows] == [(dirs[:3:2], 2), (dirs[1:2], 1)]
  assert rows[0]['final eval bits/token'][0] == pytest.approx(1.2)


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
  expected = {'learning_curves', 'loss_vs_time', 'metric_vs_length', 'cost_vs_length', 'gradient_flow',
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
           tgt_0=np.array(['x', 'y', '</s>']), weights_1=w[:2], src_1=np.array(list('abcd')),
           tgt_1=np.array(['x', 'y']))
  files = report.write_report([str(run)], str(tmp_path / 'out'))
  for kind in ('bleu_by_length', 'attention seq2seq'):
    assert open(files[kind], 'rb').read().startswith(PNG), kind


def _adding_run(root, name, model, seed, max_len, mse, status='done', clip_norm=1.0):
  """An adding-problem (regression) run as seqmodels/train/loop.py writes it: loss = mse, grad_norm logged."""
  d = root / name
  d.mkdir(parents=True)
  (d / 'config.json').write_text(json.dumps({'seed': seed, 'model': {'name': model, 'width': 8},
                                             'data': {'name': 'adding', 'max_len': max_len, 'min_len': max_len},
                                             'optim': {'clip_norm': clip_norm}}))
  lines = [{'step': s, 'split': 'train', 'loss': mse * 400 / s, 'mse': mse * 400 / s, 'grad_norm': 10.0 ** (s / 100),
            'accuracy': 0.1} for s in (100, 200, 300, 400)]
  lines.append({'step': 400, 'split': 'eval', 'loss': mse, 'mse': mse, 'accuracy': 0.5})
  (d / 'metrics.jsonl').write_text(''.join(json.dumps(l) + '\n' for l in lines))
  if status == 'failed':
    (d / 'failed.json').write_text(json.dumps({'error': 'NonFiniteLossError: loss became nan at step 401'}))
    return
  (d / 'summary.json').write_text(json.dumps({
      'status': 'done', 'model': model, 'data': 'adding', 'params': 100,
      'eval': {'loss': mse, 'mse': mse, 'accuracy': 0.5}, 'best_eval_loss': mse * 0.9, 'tokens_per_sec': 1.0}))


@pytest.fixture
def adding_dir(tmp_path):
  root = tmp_path / 'adding'
  for model, base in (('lstm', 0.01), ('rnn', 0.1)):
    for max_len in (10, 100):
      for seed in (0, 1):
        _adding_run(root, f'model.name={model},data.max_len={max_len},seed={seed}', model, seed, max_len,
                    mse=base * (1 + seed) * max_len / 10)
  return root


def test_regression_runs_get_mse_columns_instead_of_bits_per_token(adding_dir, sweep_dir):
  runs = report.load_runs(report.find_runs([str(adding_dir)]))
  row = {r['run']: r for r in report.table_rows(runs)}['model.name=rnn,data.max_len=100']
  mean, std, n = row['final eval MSE']
  assert (n, mean) == (2, pytest.approx(1.5)) and std == pytest.approx(math.sqrt(0.5))
  assert row['best eval MSE'][0] == pytest.approx(1.35)  # best_eval_loss is the MSE itself, not nats
  assert row['best eval bits/token'] is None and row['final eval bits/token'] is None
  header = report.markdown_table(runs).splitlines()[0]
  assert 'final eval MSE' in header and 'best eval MSE' in header and 'bits/token' not in header
  lm_header = report.markdown_table(report.load_runs(report.find_runs([str(sweep_dir)]))).splitlines()[0]
  assert 'MSE' not in lm_header  # shown only when some run is a regression run


def test_metric_vs_length_panels_follow_the_task(adding_dir, sweep_dir):
  from experiments import plots
  done = lambda d: [r for r in report.load_runs(report.find_runs([str(d)])) if r['status'] == 'done']
  assert [k for k, _ in plots.length_metrics(done(adding_dir))] == ['eval.mse', 'eval.accuracy']
  assert [k for k, _ in plots.length_metrics(done(sweep_dir))] == ['eval.bits_per_token', 'eval.sequence_accuracy']


def test_a_window_length_that_follows_the_tokenizer_is_not_a_length_axis():
  run = lambda tokenizer, seq_len, model='lstm': {'status': 'done', 'config': {
      'model': {'name': model}, 'data': {'name': 'text', 'tokenizer': tokenizer, 'seq_len': seq_len}}}
  same_text = [run('char', 160), run('char', 160, 'gpt'), run('word', 32), run('word', 32, 'gpt')]
  assert report.length_axis(same_text) is None  # 160 characters and 32 words: one text, other units
  swept = same_text + [run('char', 320), run('word', 64)]
  assert report.length_axis(swept) == ('data.seq_len',)  # each tokenizer at two lengths: a length swept
  assert report.length_axis([run('char', 160), run('char', 320)]) == ('data.seq_len',)


def test_adding_mean_predictor_mse_is_the_variance_of_generated_targets():
  from seqmodels.data import tasks
  for length in (10, 101):
    targets = np.array([tasks.adding_example(seed=0, split='train', index=i, min_len=length, max_len=length)['target']
                        for i in range(3000)])
    assert abs(targets.mean() - 1) < 0.02  # the mean predictor predicts 1
    assert np.mean((targets - 1) ** 2) == pytest.approx(report.ADDING_MEAN_PREDICTOR_MSE, rel=0.06)  # sd ~2.2%


def test_failed_runs_curves_and_grad_norm_are_plotted(adding_dir, tmp_path):
  from experiments import plots
  _adding_run(adding_dir, 'model.name=rnn,data.max_len=10,seed=0,optim.clip_norm=0', 'rnn', 0, 10, 1.0,
              status='failed', clip_norm=0.0)
  runs = report.load_runs(report.find_runs([str(adding_dir)]))
  series = plots.curve_series(runs, report.length_axis(runs))
  name = 'model.name=rnn,data.max_len=10,seed=0,optim.clip_norm=0'
  assert [r['name'] for r in series[f'{name} (failed: loss nan at step 401)']] == [name]
  files = report.write_report([str(adding_dir)], str(tmp_path / 'out'))
  for kind in ('learning_curves', 'grad_norm', 'metric_vs_length'):
    with open(files[kind], 'rb') as f:
      data = f.read()
    assert data.startswith(PNG) and len(data) > 10_000, kind
  assert '![grad norm](grad_norm.png)' in open(files['markdown']).read()
  assert 'loss_vs_time' not in files  # runs logged before train records carried their training seconds


def test_translation_runs_get_bleu_columns_only_when_some_run_has_them(tmp_path, sweep_dir):
  run = tmp_path / 'mt' / 'model.name=seq2seq_gru'
  run.mkdir(parents=True)
  (run / 'summary.json').write_text(json.dumps({'status': 'done', 'model': 'seq2seq_gru', 'params': 5, 'eval': {
      'loss': 0.1, 'bits_per_token': 0.144, 'bleu_greedy': 98.16, 'bleu_beam': 98.76, 'chrf_beam': 99.3}}))
  table = report.markdown_table(report.load_runs(report.find_runs([str(tmp_path / 'mt')])))
  header, _, row = table.splitlines()
  cols = [c.strip() for c in header.strip('|').split('|')]
  cells = dict(zip(cols, (c.strip() for c in row.strip('|').split('|'))))
  assert (cells['BLEU greedy'], cells['BLEU beam'], cells['chrF beam']) == ('98.16', '98.76', '99.3')
  assert 'BLEU beam' not in report.markdown_table(report.load_runs(report.find_runs([str(sweep_dir)])))


def test_cli_reports_an_analysis_directory_without_runs(tmp_path, monkeypatch, capsys):
  (tmp_path / 'cost.json').write_text(json.dumps({'entries': [
      {'model': m, 'seq_len': t, 'batch_size': 2, 'step_ms': t * k, 'peak_memory_bytes': 2**20 * t * k}
      for m, k in (('lstm', 1.0), ('gpt', 2.0)) for t in (128, 256)]}))
  monkeypatch.setattr('sys.argv', ['report.py', str(tmp_path), '--out', str(tmp_path / 'out')])
  report.main()
  assert open(tmp_path / 'out' / 'cost_vs_length.png', 'rb').read().startswith(PNG)
  for argv, message in (([str(tmp_path / 'out')], 'error: no summary.json, failed.json or cost.json'),
                        (['--bogus'], 'error: the following arguments are required: paths (see --help)')):
    monkeypatch.setattr('sys.argv', ['report.py', *argv])
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
      report.main()
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith(message) and err.count('\n') == 1, err


def test_without_matplotlib_the_tables_are_written_and_the_plots_named_as_skipped(sweep_dir, tmp_path, monkeypatch):
  import importlib.util
  find_spec = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, 'find_spec', lambda name, *a: None if name == 'matplotlib' else
                      find_spec(name, *a))
  files = report.write_report([str(sweep_dir)], str(tmp_path / 'out'))
  assert set(files) == {'markdown', 'csv'}
  md = open(files['markdown']).read()
  assert '1.5 ± 0.71' in md and "plots skipped: matplotlib is not installed (pip install -e '.[plots]'" in md
  assert not [f for f in os.listdir(tmp_path / 'out') if f.endswith('.png')]


def test_attention_tick_labels_show_newlines_and_lone_spaces():
  from experiments import plots
  assert [plots._tick(t) for t in ['\n', ' ', 'Good', '<unk>']] == ['\\n', '\u2423', 'Good', '<unk>']


def test_gradient_flow_lines_of_two_runs_of_one_model_are_told_apart_by_run(tmp_path):
  """A GRU with and without attention: one model name, two runs, so their labels and colours name the runs; a model
  with one run keeps its name. A translation's encoder series is marked as measured from the source's end."""
  (tmp_path / 'gradient_flow.json').write_text(json.dumps({'series': [
      {'model': 'seq2seq_gru', 'run': 'gru_context', 'site': 'encoder/layer0/h', 'time': 'source',
       'loss_position': 2, 'norms': [1.0, 2.0, 3.0, 0.0]},
      {'model': 'seq2seq_gru', 'run': 'gru_additive', 'site': 'encoder/layer0/h', 'norms': [1.0, 1.0, 1.0]},
      {'model': 'transformer', 'run': 'transformer', 'site': 'encoder_0/output', 'norms': [1.0, 1.0]}]}))
  from experiments import plots  # pylint: disable=import-outside-toplevel
  series = plots.gradient_flow_series([str(tmp_path / 'gradient_flow.json')])
  assert [label for _, label, *_ in series] == ["gru_context encoder/layer0/h, from the source's end",
                                                'gru_additive encoder/layer0/h', 'transformer encoder_0/output']
  assert len({group for group, *_ in series}) == 3
  np.testing.assert_array_equal(series[0][2], [2, 1, 0, -1])  # the distance from loss_position
  np.testing.assert_array_equal(series[1][2], [2, 1, 0])  # no loss_position: the last entry


def test_a_loss_that_is_not_per_token_is_not_shown_in_bits_per_token(tmp_path):
  _run(tmp_path, 'lm', 'gpt', 0, 10, bits=1.0, tokens_per_sec=1000.0)
  d = tmp_path / 'classifier'
  d.mkdir()
  (d / 'config.json').write_text(json.dumps({'seed': 0, 'model': {'name': 'bert'}, 'data': {'name': 'classify'}}))
  (d / 'summary.json').write_text(json.dumps({'status': 'done', 'model': 'bert', 'eval': {'loss': 0.3, 'accuracy': 0.9},
                                              'best_eval_loss': 0.25}))  # nats per example
  rows = {r['run']: r for r in report.table_rows(report.load_runs(report.find_runs([str(tmp_path)])))}
  assert rows['classifier']['best eval bits/token'] is None  # before: 0.36, in a column of bits per token
  assert rows['classifier']['best eval loss'][0] == 0.25 and rows['lm']['best eval loss'] is None
  assert rows['lm']['best eval bits/token'][0] == pytest.approx(1.0)
