"""The report's files: report.md and report.csv, and a non-empty PNG only where its inputs exist."""

import json
import os
import subprocess
import sys

import numpy as np

from seqmodels.report import document
from tests.report.workdirs import PNG, analysis_files

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_write_report_makes_every_plot_whose_inputs_exist(sweep_dir, tmp_path):
  analysis_files(sweep_dir / 'model.name=gpt,data.max_len=10,seed=0')
  files = document.write_report([str(sweep_dir)], str(tmp_path / 'out'))
  expected = {'learning_curves', 'loss_vs_time', 'metric_vs_length', 'cost_vs_length',
              'gradient_flow', 'attention model.name=gpt,data.max_len=10,seed=0'}
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
  files = document.write_report([str(run)], str(tmp_path / 'out'))
  assert set(files) == {'markdown', 'csv'}
  assert not [f for f in os.listdir(tmp_path / 'out') if f.endswith('.png')]


def test_seq2seq_attention_examples_and_bleu_by_length_are_plotted(tmp_path):
  run = tmp_path / 'seq2seq'
  run.mkdir()
  (run / 'summary.json').write_text(json.dumps({'status': 'done', 'model': 'seq2seq', 'params': 5}))
  (run / 'bleu_by_length.json').write_text(json.dumps({'bucket_width_tokens': 5, 'greedy': [
      {'min_len': 0, 'max_len': 4, 'sentences': 3, 'bleu': 30.0},
      {'min_len': 5, 'max_len': 9, 'sentences': 2, 'bleu': 20.0}]}))
  w = np.full((3, 4), 0.25, np.float32)  # the layout seqmodels/data/translation.py writes
  np.savez(run / 'attention_maps.npz', count=np.asarray(2), weights_0=w,
           src_0=np.array(list('abcd')), tgt_0=np.array(['x', 'y', '</s>']), weights_1=w[:2],
           src_1=np.array(list('abcd')), tgt_1=np.array(['x', 'y']))
  files = document.write_report([str(run)], str(tmp_path / 'out'))
  for kind in ('bleu_by_length', 'attention seq2seq'):
    assert open(files[kind], 'rb').read().startswith(PNG), kind


def test_without_matplotlib_the_tables_are_written_and_the_plots_named_as_skipped(
    sweep_dir, tmp_path, monkeypatch):
  import importlib.util
  find_spec = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, 'find_spec',
                      lambda name, *a: None if name == 'matplotlib' else find_spec(name, *a))
  files = document.write_report([str(sweep_dir)], str(tmp_path / 'out'))
  assert set(files) == {'markdown', 'csv'}
  md = open(files['markdown']).read()
  assert ('1.5 ± 0.71' in md and
          "plots skipped: matplotlib is not installed (pip install -e '.[plots]'" in md)
  assert not [f for f in os.listdir(tmp_path / 'out') if f.endswith('.png')]


def test_importing_the_report_and_making_a_table_loads_no_matplotlib(sweep_dir):
  """launch.py writes comparison.md, a table alone, where matplotlib (optional) may be missing."""
  script = ('import sys\nfrom seqmodels import report\n'
            'report.markdown_table(report.load_runs(report.find_runs(sys.argv[1:])))\n'
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))\n")
  p = subprocess.run([sys.executable, '-c', script, str(sweep_dir)], cwd=ROOT, capture_output=True,
                     text=True, timeout=120)
  assert p.returncode == 0 and p.stdout == '[]\n', p.stderr
