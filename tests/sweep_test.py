"""Sweeps: exact grid expansion, trial names, failure isolation, skipping finished trials, device
shares."""

import json
import os
import subprocess
import sys

import ml_collections
import pytest

from seqmodels import errors, sweep

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_product_zip_and_seeds_expand_exactly():
  models = sweep.zip_(sweep.sweep('model.name', ['lstm', 'gpt']),
                      sweep.sweep('model.width', [96, 64]))
  grid = sweep.product(models, sweep.sweep('data.max_len', [10, 20]), sweep.seeds(2))
  assert models == [{'model.name': 'lstm', 'model.width': 96},
                    {'model.name': 'gpt', 'model.width': 64}]
  assert len(grid) == 8
  assert grid[0] == {'model.name': 'lstm', 'model.width': 96, 'data.max_len': 10, 'seed': 0}
  assert grid[1] == {'model.name': 'lstm', 'model.width': 96, 'data.max_len': 10, 'seed': 1}
  assert grid[-1] == {'model.name': 'gpt', 'model.width': 64, 'data.max_len': 20, 'seed': 1}
  assert len({sweep.trial_name(o) for o in grid}) == 8
  assert sweep.seeds(3, 'data.seed') == [{'data.seed': 0}, {'data.seed': 1}, {'data.seed': 2}]
  with pytest.raises(ValueError, match='one length'):
    sweep.zip_(sweep.sweep('a', [1, 2]), sweep.sweep('b', [1]))


def test_load_passes_the_arg_and_rejects_repeated_trials(tmp_path):
  f = tmp_path / 's.py'
  f.write_text('def get_sweep(arg=""):\n  return [{"seed": 0}, {"seed": 1 if arg else 0}]\n')
  assert sweep.load(f'{f}:two') == [{'seed': 0}, {'seed': 1}]
  with pytest.raises(ValueError, match='repeated trials'):
    sweep.load(str(f))


BROKEN_SWEEPS = [  # (the sweep file's text, how its error goes on after 'sweep file <path>')
    ('def get_sweep():\n  width = 1 / 0\n  return []\n',
     ' raised ZeroDivisionError at line 2 in get_sweep(): division by zero: fix the file'),
    ('import os\nraise RuntimeError("half-written")\n',
     ' raised RuntimeError at line 2 while loading: half-written: fix the file'),
    ('def get_sweep(:\n  return []\n', ' has a SyntaxError at line 1: '),
    ('def get_swep():\n  return [{"seed": 0}]\n',
     ' defines no get_sweep(): define get_sweep() returning a list of override dicts, one per '
     "trial: [{'model.width': 32}, {'model.width': 64}]"),
    ('def get_sweep():\n  [{"seed": 0}]\n',
     ': get_sweep() returned None: return a non-empty list of {field: value} override dicts, one '
     "per trial: [{'model.width': 32}, {'model.width': 64}]"),
    ('def get_sweep():\n  return []\n',
     ': get_sweep() returned an empty list, no trials: return a non-empty list'),
    ('def get_sweep():\n  return {"model.width": 32}\n',
     ": get_sweep() returned a dict ({'model.width': 32}): return a non-empty list"),
    ('def get_sweep():\n  return [{"seed": 0}, ["seed", 1]]\n',
     ": trial 2 of 2 is a list (['seed', 1]), not a dict: return a non-empty list"),
    ('def get_sweep():\n  return [{"model": {"width": 32}}]\n',
     ": trial 1 of 1 sets 'model' to a dict ({'width': 32}): override one field per key, with a "
     "dotted name: {'model.width': ...}"),
    ('def get_sweep():\n  return [{("model", "width"): 32}]\n',
     ": trial 1 of 1 has the key ('model', 'width'), not a field name: name fields as dotted "
     'strings'),
]


@pytest.mark.parametrize('text,error', BROKEN_SWEEPS, ids=[
    'raises', 'raises_while_loading', 'syntax_error', 'no_get_sweep', 'returns_none',
    'returns_empty_list', 'returns_a_dict', 'a_trial_not_a_dict', 'nested_dict',
    'key_not_a_string'])
def test_a_broken_sweep_file_is_one_config_error_naming_the_file_and_the_fix(tmp_path, text, error):
  f = tmp_path / 'broken.py'
  f.write_text(text)
  with pytest.raises(errors.ConfigError) as e:
    sweep.load(str(f))
  message = str(e.value)
  assert '\n' not in message
  assert message.startswith(f'sweep file {f}{error}'), message


def test_a_variant_of_a_sweep_without_variants_is_named(tmp_path):
  f = tmp_path / 'one_grid.py'
  f.write_text('def get_sweep():\n  return [{"seed": 0}]\n')
  with pytest.raises(errors.ConfigError, match=r'one_grid.py has no variants \(its get_sweep\(\) '
                     r'takes no argument\): drop the ":small" suffix'):
    sweep.load(f'{f}:small')


def test_launch_with_a_broken_sweep_file_prints_one_line_and_exits_2(tmp_path):
  f = tmp_path / 'nested.py'
  f.write_text('def get_sweep():\n  return [{"model": {"width": 32}}]\n')
  r = subprocess.run([sys.executable, 'launch.py', '--config=experiments/configs/copy.py',
                      f'--sweep={f}', f'--workdir={tmp_path / "w"}'], cwd=ROOT, capture_output=True,
                     text=True, timeout=120, env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert r.returncode == 2, r.stderr[-2000:]
  assert r.stderr.strip().splitlines() == [
      f"error: sweep file {f}: trial 1 of 1 sets 'model' to a dict ({{'width': 32}}): override one "
      "field per key, with a dotted name: {'model.width': ...}"], r.stderr[-2000:]


@pytest.mark.parametrize('sweep_file',
                         sorted(f for f in os.listdir(os.path.join(ROOT, 'experiments/sweeps'))
                                if f.endswith('.py') and f not in ('__init__.py', 'bert.py')))
def test_every_reference_sweep_refuses_a_variant_it_does_not_have(sweep_file):
  path = os.path.join(ROOT, 'experiments/sweeps', sweep_file)
  assert sweep.load(path)  # no variant: its default grid
  with pytest.raises(ValueError,
                     match=f'{sweep_file}:bogus: (unknown variant|this sweep has no variants)'):
    sweep.load(f'{path}:bogus')


def test_reference_sweeps_use_registered_models_and_valid_fields():
  from experiments.configs import char_lm, copy_memory, word_lm
  from seqmodels.models import registry
  for sweep_file, config in [('char_lm_archs.py', char_lm), ('copy_vs_length.py', copy_memory),
                             ('word_lm_archs.py', word_lm), ('tokenizers.py', word_lm)]:
    for arg in ('small', ''):
      trials = sweep.load(
          os.path.join(ROOT, 'experiments/sweeps', sweep_file) + (f':{arg}' if arg else ''))
      assert {t['model.name'] for t in trials} <= set(registry.MODELS)
      for t in trials:
        sweep.apply(config.get_config(arg), t)  # every override names a field


def test_apply_overrides_a_copy_and_names_unknown_fields():
  c = ml_collections.ConfigDict({'model': {'name': 'lstm'}, 'seed': 0})
  d = sweep.apply(c, {'model.name': 'gpt', 'seed': 3})
  assert (d.model.name, d.seed, c.model.name) == ('gpt', 3, 'lstm')
  with pytest.raises(KeyError, match='model.nme'):
    sweep.apply(c, {'model.nme': 'gpt'})


def _trials(tmp_path, names):
  c = ml_collections.ConfigDict({'model': {'name': 'lstm'}, 'data': {'name': 'copy'}, 'seed': 0})
  return sweep.make_trials(c, [{'model.name': n} for n in names], str(tmp_path))


def _fake_train(calls):
  def train(config, run_dir):
    calls.append(config.model.name)
    if config.model.name == 'bad':
      raise RuntimeError('loss became nan at step 3')
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, 'summary.json'), 'w') as f:
      json.dump({'status': 'done', 'model': config.model.name}, f)
    return {'status': 'done'}
  return train


def test_failing_trial_is_recorded_and_the_others_finish(tmp_path):
  calls = []
  trials = sweep.run_in_process(_trials(tmp_path, ['lstm', 'bad', 'gpt']), _fake_train(calls))
  assert calls == ['lstm', 'bad', 'gpt']
  assert [t.status for t in trials] == ['done', 'failed', 'done']
  failed = json.loads((tmp_path / 'model.name=bad' / 'failed.json').read_text())
  assert failed['error'] == 'RuntimeError: loss became nan at step 3'
  assert 'Traceback' in failed['detail']


def test_the_line_for_failed_trials_says_how_a_fix_can_be_retried(tmp_path):
  trials = sweep.run_in_process(_trials(tmp_path, ['bad', 'fine']), _fake_train([]))
  failed = ('1 of 2 trials failed (model.name=bad): their errors are in <trial dir>/failed.json; '
            'rerun the same command to retry them as they were')
  # No trial holds a checkpoint or a summary: the same command retries, or a changed config.
  (tmp_path / 'model.name=fine' / 'summary.json').unlink()
  assert sweep.failed_line(trials) == failed + ', or with the config changed to fix them'
  # Before, "rerun the same command to retry them", where a NaN loss's fix (a lower optim.lr) was
  # refused for every trial that held a checkpoint or a summary (workdir.check_resumable).
  (tmp_path / 'model.name=fine' / 'summary.json').write_text('{"status": "done"}')
  refused = ('; to fix them with a changed config, first delete the trial directories that hold a '
             'checkpoint or a summary ({}), which resume only with the config they began with, or '
             'use a new --workdir')
  assert sweep.failed_line(trials) == failed + refused.format('model.name=fine')
  (tmp_path / 'model.name=bad' / 'checkpoints' / '4').mkdir(parents=True)
  assert sweep.failed_line(trials) == (failed + ', from their last checkpoints' +
                                       refused.format('model.name=bad, model.name=fine'))


def test_rerun_skips_finished_trials_and_retries_failed_ones(tmp_path):
  calls = []
  sweep.run_in_process(_trials(tmp_path, ['lstm', 'bad', 'gpt']), _fake_train(calls))
  calls.clear()
  trials = _trials(tmp_path, ['lstm', 'bad', 'gpt'])
  (tmp_path / 'model.name=bad' / 'failed.json').rename(tmp_path / 'old_failed.json')
  # the bug was fixed: the retry succeeds and leaves no failed.json
  trials[1].config.model.name = 'fixed'
  sweep.run_in_process(trials, _fake_train(calls))
  assert calls == ['fixed']
  assert [t.status for t in trials] == ['skipped', 'done', 'skipped']
  assert not (tmp_path / 'model.name=bad' / 'failed.json').exists()


def test_preempted_trial_stops_the_sweep(tmp_path):
  calls = []
  def train(config, run_dir):
    calls.append(config.model.name)
    return {'status': 'preempted'}
  trials = sweep.run_in_process(_trials(tmp_path, ['lstm', 'gpt']), train)
  assert calls == ['lstm'] and [t.status for t in trials] == ['preempted', 'pending']


def test_parallel_trials_run_as_processes_and_a_crash_is_isolated(tmp_path):
  script = ('import json, os, sys\n'
            'name, d = sys.argv[1], sys.argv[2]\n'
            'if name == "bad": print("some log line"); print("error: config.x broke", '
            'file=sys.stderr); sys.exit(1)\n'
            'json.dump({"status": "done", "cuda": os.environ.get("CUDA_VISIBLE_DEVICES")}, '
            'open(os.path.join(d, "summary.json"), "w"))\n')
  command = lambda t: [sys.executable, '-c', script, t.config.model.name, t.workdir]
  env = dict(os.environ, CUDA_VISIBLE_DEVICES='4,5')  # two GPUs, as a GPU host would report them
  trials = sweep.run_parallel(_trials(tmp_path, ['lstm', 'bad', 'gpt']), 2, command, env=env,
                              poll_s=0.05)
  assert [t.status for t in trials] == ['done', 'failed', 'done']
  assert (json.loads((tmp_path / 'model.name=bad' / 'failed.json').read_text())['error'] ==
          'error: config.x broke')
  assert 'some log line' in (tmp_path / 'model.name=bad' / 'log.txt').read_text()
  cuda = {json.loads((tmp_path / f'model.name={n}' / 'summary.json').read_text())['cuda']
          for n in ('lstm', 'gpt')}
  assert cuda <= {'4', '5'}  # each process saw one GPU of the two
  again = sweep.run_parallel(_trials(tmp_path, ['lstm', 'bad', 'gpt']), 2, command, env=env,
                             poll_s=0.05)
  assert [t.status for t in again] == ['skipped', 'failed', 'skipped']


def test_device_shares_split_gpus_disjointly():
  assert sweep.device_shares(3, []) == [{}, {}, {}]  # CPU host: every process uses the CPU
  shares = sweep.device_shares(4, [str(i) for i in range(8)])
  assert [s['CUDA_VISIBLE_DEVICES'] for s in shares] == ['0,1', '2,3', '4,5', '6,7']
  with pytest.raises(
      ValueError, match=r'--parallel=3 does not split the 8 GPUs evenly: choose --parallel from'):
    sweep.device_shares(3, [str(i) for i in range(8)])
  assert sweep.gpu_ids({'CUDA_VISIBLE_DEVICES': '2,7'}) == ['2', '7']


def test_trial_command_passes_overrides_as_flags():
  overrides = {'model.name': 'gpt', 'model.width': 64, 'train.fsdp': True, 'optim.lr': 1e-3}
  cmd = sweep.trial_command('experiments/configs/copy.py:long', overrides, '/w', 'launch.py')
  assert cmd[1:] == ['launch.py', '--config=experiments/configs/copy.py:long',
                     '--config.model.name=gpt', '--config.model.width=64',
                     '--config.train.fsdp=True', '--config.optim.lr=0.001', '--workdir=/w']


def test_launch_parallel_without_sweep_is_a_one_line_error(tmp_path):
  r = subprocess.run([sys.executable, 'launch.py', '--config=experiments/configs/copy.py',
                      '--parallel=2', f'--workdir={tmp_path}'],
                     cwd=ROOT, capture_output=True, text=True, timeout=120,
                     env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert (r.returncode == 2 and
          r.stderr.startswith('error: --parallel=2 needs a --sweep')), r.stderr[-2000:]
  assert len(r.stderr.strip().splitlines()) == 1
