"""Cost vs length: cost.json entries per (model, T), budget and memory failures, the report's plot,
the CLI."""

import json
import math
import os

import pytest

from experiments.configs.cost_vs_length import get_config
from seqmodels import report
from seqmodels.analysis import cost

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS, LENS = ('rnn', 'gpt'), (8, 16)


def _config(models=MODELS, lens=LENS, **cost_fields):
  c = get_config('small')
  c.model.width, c.model.layers, c.model.heads = 8, 1, 2
  c.train.batch_size = 2
  c.cost.models, c.cost.seq_lens = ','.join(models), ','.join(map(str, lens))
  c.cost.warmup_steps, c.cost.timed_steps, c.cost.case_budget_s = 1, 2, 600.0
  c.cost.update(cost_fields)
  return c


@pytest.fixture(scope='module')
def measured(tmp_path_factory):
  out = tmp_path_factory.mktemp('cost')
  cost.run(_config(), str(out), log=lambda _: None)
  return out


def test_one_entry_per_model_and_length_with_time_and_memory(measured):
  record = json.loads((measured / 'cost.json').read_text())
  entries = {(e['model'], e['seq_len']): e for e in record['entries']}
  assert (sorted(entries) == sorted((m, t) for m in MODELS for t in LENS) and
          len(record['entries']) == 4)
  for (m, T), e in entries.items():
    assert e['status'] == 'ok' and e['batch_size'] == 2
    assert e['step_ms'] > 0 and e['step_ms_min'] <= e['step_ms'] <= e['step_ms_max']
    assert e['tokens_per_sec'] == pytest.approx(2 * T / (e['step_ms'] / 1e3))
    assert (e['peak_memory_bytes'] == e['compiled_memory_bytes'] > 0 and
            e['memory_source'] == 'compiled')
    assert e['compile_seconds'] > 0 and e['params'] > 0
  for m in MODELS:  # activations grow with T: the memory plan must too
    assert entries[m, 16]['compiled_memory_bytes'] > entries[m, 8]['compiled_memory_bytes']
  assert entries['gpt', 16]['params'] > entries['gpt', 8]['params']  # the position table covers T
  assert (record['device'] == record['platform'] == 'cpu' and
          {e['platform'] for e in entries.values()} == {'cpu'})
  assert record['commit'] and record['config']['cost']['seq_lens'] == '8,16'
  assert record['dtype'] == 'float32' and {e['dtype'] for e in entries.values()} == {'float32'}


def test_the_report_plots_the_measured_cost_json(measured, tmp_path):
  files = report.write_report([str(measured)], str(tmp_path / 'report'))
  assert (tmp_path / 'report' / 'cost_vs_length.png').stat().st_size > 0
  assert files['cost_vs_length'] == str(tmp_path / 'report' / 'cost_vs_length.png')


def test_a_case_over_budget_is_null_and_longer_lengths_are_skipped():
  record = cost.run(_config(models=('rnn',), case_budget_s=1e-3), log=lambda _: None)
  first, longer = record['entries']
  assert ((first['seq_len'], first['status'], first['step_ms'], first['peak_memory_bytes']) ==
          (8, 'over_budget', None, None))
  assert 'budget' in first['reason']
  assert (longer['seq_len'], longer['status'], longer['step_ms']) == (16, 'skipped', None)
  assert longer['reason'] == 'not run: T=8 was over_budget'


def test_out_of_memory_is_recorded_not_raised(monkeypatch):
  def exhausted(*args, **kwargs):
    raise RuntimeError(
        'RESOURCE_EXHAUSTED: Out of memory while trying to allocate 68719476736 bytes.')
  monkeypatch.setattr(cost, 'measure', exhausted)
  e = cost.run_case(_config(), 'gpt', 8192)
  assert (e['status'], e['step_ms'], e['peak_memory_bytes']) == ('out_of_memory', None, None)
  assert e['reason'].startswith('RuntimeError: RESOURCE_EXHAUSTED')


def test_an_isolated_case_runs_in_its_own_process(monkeypatch):
  calls = []
  # this process must not measure
  monkeypatch.setattr(cost, 'measure', lambda *a, **k: calls.append(a))
  e = cost.run_case_isolated(_config(), 'rnn', 8)
  assert not calls and e['status'] == 'ok' and e['step_ms'] > 0 and e['compiled_memory_bytes'] > 0
  # CPU: no allocator statistics
  assert e['memory_source'] == 'compiled' and e['device_peak_bytes'] is None
  assert e['platform'] == 'cpu' and e['dtype'] == 'float32'


@pytest.mark.parametrize('flags,expected', [
    (['--config=experiments/configs/nope.py'],
     'error: --config=experiments/configs/nope.py does not exist'),
    (['--config.cost.models=lstm,bert'],
     "error: config.cost.models names 'bert', not a language model"),
    (['--config.cost.seq_lens=128,2k'],
     "error: config.cost.seq_lens='128,2k' is not a list of positive integers"),
    (['--config.cost.seq_lens=,'], "error: config.cost.seq_lens=',' is not a comma-separated list"),
    (['--config.model.heads=3'],
     'error: config.model.heads=3 does not divide config.model.width=128'),
    (['--config.cost.modls=gpt'], 'error: --config.cost.modls names no config field'),
    (['--config.cost.timed_steps=abc'], 'error: flag --config.cost.timed_steps=abc'),
])
def test_bad_input_is_one_line_and_exit_code_2(flags, expected, capsys, tmp_path, monkeypatch):
  monkeypatch.chdir(ROOT)
  argv = ['cost', '--config=experiments/configs/cost_vs_length.py:small', *flags,
          f'--out={tmp_path}']
  assert cost.main(argv) == 2
  err = capsys.readouterr().err
  assert err.startswith(expected) and err.count('\n') == 1, err
  assert not (tmp_path / 'cost.json').exists()


def test_configs_cover_the_issue_lengths_and_models():
  full, small = get_config(), get_config('small')
  assert cost.parse_cases(full) == (['rnn', 'lstm', 'gru', 'mingru', 'minlstm', 'gpt'],
                                    [2**k for k in range(7, 14)])
  assert cost.parse_cases(small)[1] == [128, 256, 512, 1024, 2048]
  # before: T=16 measured twice, after 32
  small.cost.models, small.cost.seq_lens = 'gpt,lstm,gpt', '32,16,16'
  assert cost.parse_cases(small) == (['gpt', 'lstm'], [16, 32])
  assert full.train.dtype == 'bfloat16' and full.cost.isolate and not small.cost.isolate
  assert math.log2(full.model.width // full.model.heads) % 1 == 0  # a cuDNN-friendly head size
