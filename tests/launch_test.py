"""Launcher: bad configs fail before compilation with one line naming the field and the fix; SIGTERM
saves."""

import json
import logging
import math
import os
import re
import signal
import subprocess
import sys
import time

import jax
import pytest

from experiments.configs.base import get_base_config
from experiments.configs.copy import get_config
from seqmodels import errors
from seqmodels import validation
from seqmodels.train import checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

BAD = [  # (override, value, words the one-line message must contain)
    ('model.name', 'lsmt', ['config.model.name', 'choose one of', 'lstm']),
    ('model.width', -8, ['config.model.width', 'positive']),
    ('model.layers', 0, ['config.model.layers', 'positive']),
    ('model.dropout', 1.5, ['config.model.dropout', '[0, 1)']),
    ('model.recurrence', 'fused',
     ["config.model.recurrence='fused'", 'auto, scan, hoisted, cudnn']),
    ('model.tie_embeddings', True, ["config.model.tie_embeddings=True applies to the recurrent LMs",
                                    "not model.name='gpt', which ties always"]),
    ('model.heads', 3, ['config.model.heads=3', 'does not divide', 'config.model.width']),
    ('data.name', 'imagenet', ['config.data.name', 'choose one of']),
    ('model.name', 'transformer_regressor', ["config.model.name='transformer_regressor' cannot "
                                             "train on config.data.name='copy'", 'a lm task']),
    ('data.max_len', 0, ['config.data.max_len', 'positive']),
    ('data.min_len', 20, ['config.data.min_len', 'max_len']),
    ('optim.lr', -1.0, ['config.optim.lr', '> 0']),
    ('optim.clip_norm', -1.0, ['config.optim.clip_norm', '>= 0']),
    ('train.batch_size', 0, ['config.train.batch_size', 'positive']),
    ('train.num_steps', -5, ['config.train.num_steps', 'positive']),
    ('train.num_epochs', -1.0, ['config.train.num_epochs=-1.0', '>= 0']),
    ('train.eval_every', -1, ['config.train.eval_every=-1', '0 means once an epoch']),
    ('train.dtype', 'float8', ['config.train.dtype', 'choose one of']),
    # before: a traceback from numpy
    ('seed', -3, ['config.seed=-3 must be an integer in [0, 2**32)']),
    ('data.seed', -1, ['config.data.seed=-1 must be an integer in [0, 2**32)']),
    # Not finite: before, inf passed every check but nan's (lr > 0, weight_decay >= 0, ...).
    ('optim.lr', math.inf, ['config.optim.lr=inf must be a finite number']),
    ('optim.lr', math.nan, ['config.optim.lr=nan must be a finite number']),
    ('optim.weight_decay', math.inf, ['config.optim.weight_decay=inf must be a finite number']),
    ('optim.clip_norm', math.inf, ['config.optim.clip_norm=inf must be a finite number']),
    ('optim.eps', math.nan, ['config.optim.eps=nan must be a finite number']),
    ('model.recurrent_init_scale', math.inf,
     ['config.model.recurrent_init_scale=inf must be a finite number']),
    ('train.num_epochs', math.inf, ['config.train.num_epochs=inf must be a finite number']),
    # gpt's fields a pre-trained checkpoint sets (seqmodels/hf)
    ('model.activation', 'swish', ["config.model.activation='swish'", 'gelu, gelu_erf']),
    ('model.positions', 8, ['config.model.positions=8', 'shorter than config.data.seq_len']),
]


@pytest.mark.parametrize('field,value,words', BAD, ids=[b[0] for b in BAD])
def test_bad_config_gives_one_line_error_naming_field(field, value, words):
  c = get_config()
  if field in ('model.heads', 'model.tie_embeddings', 'model.activation', 'model.positions'):
    c.model.name = 'gpt'
  *section, name = field.split('.')
  (c[section[0]] if section else c)[name] = value
  with pytest.raises(errors.ConfigError) as e:
    validation.validate(c)
  message = str(e.value)
  assert '\n' not in message
  for w in words:
    assert w in message


def test_missing_text_file_is_named():
  c = get_config()
  c.data.name, c.data.path = 'text', '/nonexistent/corpus.txt'
  with pytest.raises(errors.ConfigError,
                     match=r"config.data.path='/nonexistent/corpus.txt' does not exist"):
    validation.validate(c)
  c.data.path = '/'
  with pytest.raises(errors.ConfigError,
                     match=r"config.data.path='/' is a directory: point it at a local text"):
    validation.validate(c)


def test_a_fifo_as_a_data_file_is_said_to_be_one(tmp_path):
  fifo = tmp_path / 'corpus.txt'
  os.mkfifo(fifo)  # before: "does not exist"
  c = get_config()
  c.data.name, c.data.path = 'text', str(fifo)
  said = rf"^config.data.path='{re.escape(str(fifo))}' is not a regular file \(a FIFO"
  with pytest.raises(errors.ConfigError, match=said):
    validation.validate(c)
  c.model.name, c.data.name = 'bert', 'mlm'  # before: "is not a file"
  with pytest.raises(errors.ConfigError, match=said):
    validation.validate(c)
  (tmp_path / 'wiki.train.tokens').write_text('to be or not to be\n' * 50)
  os.mkfifo(tmp_path / 'wiki.valid.tokens')  # before: "no validation file"
  c.model.name, c.data.name, c.data.path = 'lstm', 'text', str(tmp_path / 'wiki.{split}.tokens')
  with pytest.raises(errors.ConfigError, match=r"wiki.\{split\}.tokens': the validation file "
                     r".*wiki.valid.tokens is not a regular file \(a FIFO, whose reader waits for "
                     r"a writer\): one text file per split"):
    validation.validate(c)


def test_carry_state_needs_a_recurrent_lm_on_running_text_read_in_order():
  c = get_config()
  c.train.carry_state = True
  cases = [({}, "config.train.carry_state=True reads running text as streams, and "
            "config.data.name='copy' is separate examples: use text or "
            "tiny_shakespeare, or leave it False"),
           ({'data.name': 'tiny_shakespeare', 'model.name': 'gpt'},
            "config.train.carry_state=True carries a recurrent LM's state (the n-gram's context) "
            "from window to window, and model.name='gpt' has none (rnn, lstm, gru, mingru, "
            "minlstm, ngram do): leave it False (in a sweep, set it on those trials only)"),
           ({'data.name': 'tiny_shakespeare', 'data.stride': 1},
            'config.data.stride=1 crops windows at random, and '
            "config.train.carry_state=True reads each stream's windows in order: leave stride 0")]
  for overrides, message in cases:
    d = c.copy_and_resolve_references()
    for field, value in overrides.items():
      section, name = field.split('.')
      d[section][name] = value
    with pytest.raises(errors.ConfigError) as e:
      validation.validate(d)
    assert str(e.value) == message
  d = c.copy_and_resolve_references()
  d.data.name = 'tiny_shakespeare'
  validation.validate(d)


def test_text_tokenizer_and_split_files_are_named(tmp_path):
  c = get_config()
  (tmp_path / 'wiki.train.tokens').write_text('to be or not to be\n' * 50)
  c.data.name, c.data.path = 'text', str(tmp_path / 'wiki.{split}.tokens')
  cases = [({}, r"config.data.path='.*wiki.\{split\}.tokens': no validation file "
            r"\(.*wiki.validation/valid/val/dev.tokens\): one text file per split \(train and "
            r"validation needed, test optional\)"),
           ({'tokenizer': 'sentencepiece'}, r"config.data.tokenizer='sentencepiece' is not a text "
            r"tokenizer: choose one of auto, char, byte, word, bpe, unigram"),
           ({'tokenizer': 'word', 'byte_level': True}, r"config.data.byte_level=True makes the "
            r"tokens bytes, but config.data.tokenizer='word': set one of them"),
           ({'tokenizer': 'bpe', 'vocab_size': 100}, r"config.data.vocab_size=100 leaves no pieces "
            r"of the text beside the 4 specials and 256 byte pieces"),
           ({'name': 'copy', 'tokenizer': 'word'}, r"config.data.tokenizer='word' applies to "
            r"data.name='text' and translation data \('copy' has its own tokens\)")]
  for overrides, message in cases:
    d = c.copy_and_resolve_references()
    d.data.update(overrides)
    with pytest.raises(errors.ConfigError, match=message):
      validation.validate(d)
  (tmp_path / 'wiki.valid.tokens').write_text('')
  with pytest.raises(errors.ConfigError, match=r"the validation file .*wiki.valid.tokens is empty: "
                     r"one text file per split"):
    validation.validate(c)
  (tmp_path / 'wiki.valid.tokens').write_text('to be\n' * 30)
  validation.validate(c)


def test_batch_not_divisible_by_devices_is_named():
  c = get_config()
  c.train.batch_size = 12
  with pytest.raises(errors.ConfigError,
                     match='batch_size=12 does not split over 8 devices: use a multiple'):
    validation.validate_devices(c, 8, 1, 'cpu')
  c.train.batch_size, c.train.grad_accum = 16, 4
  with pytest.raises(errors.ConfigError,
                     match=r'config.train.batch_size=16 does not split into train.grad_accum=4 '
                     r'micro-batches over 8 devices: use a multiple of 32, or another grad_accum'):
    validation.validate_devices(c, 8, 1, 'cpu')
  c.train.grad_accum = 2
  validation.validate_devices(c, 8, 1, 'cpu')
  c.train.eval_batch_size = 10
  with pytest.raises(errors.ConfigError, match=r'config.train.eval_batch_size=10 does not split '
                     r'over 8 devices and 2 processes: use a multiple of 8, or 0 \(batch_size\)'):
    validation.validate_devices(c, 8, 2, 'cpu')
  validation.validate_devices(c, 2, 1, 'cpu')
  c.train.eval_batch_size, c.train.grad_accum = 0, 0
  with pytest.raises(errors.ConfigError,
                     match='config.train.grad_accum=0 must be a positive integer'):
    validation.validate(c)


def test_cudnn_recurrence_is_refused_where_it_cannot_run():
  c = get_config()  # an LSTM on the copy task
  c.model.recurrence = 'cudnn'
  validation.validate(c)
  with pytest.raises(errors.ConfigError,
                     match=r"train.dtype='auto' computes in bfloat16 on gpu: set "
                     r'train.dtype=float32'):
    validation.validate_devices(c, 8, 1, 'gpu')
  c.train.dtype = 'float32'
  validation.validate_devices(c, 8, 1, 'gpu')
  with pytest.raises(errors.ConfigError, match=r"recurrence='cudnn' needs a CUDA GPU, and this run "
                     r"computes on cpu: use recurrence=auto"):
    validation.validate_devices(c, 8, 1, 'cpu')
  c.model.name = 'gru'
  with pytest.raises(errors.ConfigError,
                     match=r"runs float32 LSTMs only .*not model.name='gru': use"):
    validation.validate(c)
  c.model.name, c.model.cell = 'elmo', 'gru'
  with pytest.raises(errors.ConfigError, match=r"not model.name='elmo' with cell='gru': use"):
    validation.validate(c)
  c.model.name, c.model.cell, c.train.dtype = 'seq2seq_lstm', 'lstm', 'bfloat16'
  with pytest.raises(errors.ConfigError,
                     match=r"LSTMs only \(jax.experimental.rnn\), not train.dtype='bfloat16': "):
    validation.validate(c)
  # no recurrent layer: the field does not apply (a sweep sets it)
  c.model.name, c.train.dtype = 'gpt', 'float32'
  validation.validate(c)
  validation.validate_devices(c, 8, 1, 'cpu')


def _launch(*flags, timeout=120, devices=2, **kw):
  env = dict(os.environ, JAX_PLATFORMS='cpu',
             XLA_FLAGS=f'--xla_force_host_platform_device_count={devices}')
  return subprocess.run([sys.executable, 'launch.py', *flags], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=timeout, **kw)


@pytest.mark.parametrize('flags,expected', [
    (['--config.model.name=gpt', '--config.model.heads=5'],
     'error: config.model.heads=5 does not divide'),
    (['--config.data.name=text', '--config.data.path=missing.txt'],
     "error: config.data.path='missing.txt' does"),
    (['--sweep=experiments/sweeps/nope.py'],
     'error: --sweep=experiments/sweeps/nope.py does not exist'),
    (['--sweep=experiments/sweeps/copy_vs_length.py:smal'],
     "error: copy_vs_length.py:smal: unknown variant 'smal'; use one of small, full"),
    (['--config.model.nme=gpt'],
     'error: --config.model.nme names no config field (Did you mean "name"?)'),
    # the bad one, not the first override
    (['--config.model.width=32', '--config.train.nonexistent=1'],
     'error: --config.train.nonexistent names no config field'),
    (['--config.model.width=32', '--config.modl.width=1'],
     'error: --config.modl.width names no config field'),
    (['--config.model.width=32', '--config.model.width.x=3'],  # before: blamed --config.model.width
     'error: --config.model.width.x names no config field: config.model.width is a field (int), '
     'not a section: set --config.model.width=<value>, or see the fields in '
     'experiments/configs/base.py\n'),
    (['--config.model.name.x=gpt'],  # before: a TypeError's traceback
     'error: --config.model.name.x names no config field: config.model.name is a field (str), '
     'not a section'),
    (['--config.model.width=abc'], 'error: flag --config.model.width=abc: invalid literal'),
    (['--config=experiments/configs/nope.py'],
     'error: --config=experiments/configs/nope.py does not exist'),
    (['--config=experiments/configs/base.py'],
     'error: --config=experiments/configs/base.py defines no get_config()'),
    (['--config=experiments/configs/char_lm.py:smal'],
     "error: flag --config=experiments/configs/char_lm.py:smal: ValueError: char_lm.py:smal: "
     "unknown variant 'smal'"),
    (['--bogus=1'], "error: Unknown command line flag 'bogus'"),
    # before: the sweep's won silently
    (['--sweep=experiments/sweeps/lstm_vs_gpt.py', '--config.model.params=16'],
     'error: --config.model.params is set by the sweep too (experiments/sweeps/lstm_vs_gpt.py '
     'gives it 100096), whose values win: drop the flag, or sweep without it\n'),
    # a quote ends it
    (['--config=experiments/configs/translate.py:cpu,gru_additive', '--config.decode.split=dev'],
     "error: config.decode.split='dev': choose 'validation' or 'test'\n"),
    (['--config=experiments/configs/translate.py:tiny'],
     "error: flag --config=experiments/configs/translate.py:tiny: ValueError: "
     "translate.py:tiny: unknown ['tiny']"),
])
def test_launch_prints_one_line_and_exits_2(tmp_path, flags, expected):
  r = _launch(*(['--config=experiments/configs/copy.py'] if '--config=' not in flags[0] else []),
              *flags, f'--workdir={tmp_path}')
  assert r.returncode == 2
  assert r.stderr.strip().splitlines() == [r.stderr.strip().splitlines()[0]]  # exactly one line
  assert (r.stderr + '\n').startswith(expected)
  assert 'Traceback' not in r.stderr


def test_a_workdir_that_is_a_file_is_one_line_naming_it(tmp_path):
  (tmp_path / 'afile').write_text('')
  r = _launch('--config=experiments/configs/copy.py', f'--workdir={tmp_path / "afile"}')
  assert r.returncode == 2
  assert r.stderr.strip().splitlines()[-1] == (f'error: --workdir={tmp_path / "afile"} cannot be '
                                               'made a directory (File exists): '
                                               'pass another --workdir')
  assert 'Traceback' not in r.stderr


def test_running_out_of_memory_is_one_line_naming_the_fixes(tmp_path):
  flags = ['--config=experiments/configs/copy.py', '--config.model.name=gpt',
           '--config.model.width=524288', '--config.model.heads=8', '--config.data.num_train=64',
           '--config.data.num_validation=16', '--config.data.num_test=16',
           f'--config.data.data_dir={tmp_path / "tfds"}', f'--workdir={tmp_path / "run"}']
  # with two CPU devices, XLA's failed allocation hangs instead of raising
  r = _launch(*flags, devices=1)
  assert r.returncode == 1, r.stderr[-2000:]
  last = r.stderr.strip().splitlines()[-1]
  # 4 TB of FFN
  assert last.startswith('error: the cpu devices ran out of memory (RESOURCE_EXHAUSTED: '), last
  assert last.endswith('or shard parameters and optimizer state with config.train.fsdp=True'), last
  assert 'Traceback' not in r.stderr
  failed = json.loads((tmp_path / 'run' / 'failed.json').read_text())  # the report's row for it
  assert failed['error'] == 'OutOfMemoryError: ' + last.removeprefix('error: ')


def test_sigterm_saves_a_complete_checkpoint_and_exits_resumable(tmp_path):
  work = tmp_path / 'run'
  flags = ['--config=experiments/configs/copy.py', '--config.model.width=32',
           '--config.train.num_steps=100000', '--config.train.checkpoint_every=100000',
           '--config.train.eval_every=100000', '--config.train.log_every=5',
           '--config.data.num_train=256', f'--config.data.data_dir={tmp_path / "tfds"}',
           f'--workdir={work}']
  env = dict(os.environ, JAX_PLATFORMS='cpu', XLA_FLAGS='--xla_force_host_platform_device_count=2')
  p = subprocess.Popen([sys.executable, 'launch.py', *flags], cwd=ROOT, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  metrics = work / 'metrics.jsonl'
  deadline = time.time() + 180
  while not (metrics.exists() and metrics.read_text().count('\n') >= 2):
    assert p.poll() is None and time.time() < deadline, (p.stderr.read()[-3000:]
                                                         if p.poll() is not None else 'slow')
    time.sleep(0.5)
  p.send_signal(signal.SIGTERM)
  _, err = p.communicate(timeout=120)
  assert p.returncode == 143, err[-3000:]
  assert 'rerun the same command to resume' in err
  steps = [d.name for d in (work / 'checkpoints').iterdir()]
  # no leftover tmp directories
  assert len(steps) == 1 and steps[0].isdigit() and int(steps[0]) >= 10, steps
  assert not (work / 'summary.json').exists()
  step, state = checkpoint.restore_saved(
      str(work), sharding=jax.sharding.SingleDeviceSharding(jax.devices()[0]))
  assert int(state['step']) == step == int(steps[0])


def _launch_in_process(flags: list[str]) -> int:
  """launch.py's exit code for `flags` (None: it returned), run in this process (so that a test can
  stand in for the training)."""
  import launch
  try:
    launch.main(launch.parse_flags(['launch.py', *flags]))
  except SystemExit as e:
    return e.code
  finally:
    launch.FLAGS.unparse_flags()
  return None


def _fake_trial(status: str, step: int):
  """For loop.train_and_evaluate: writes a trial's config.json, a metrics record and a checkpoint of
  `step`, as a run that got there, and returns its summary (`status`: 'preempted', or 'done' with
  summary.json written)."""
  def train(config, workdir, stop_after=None):
    os.makedirs(os.path.join(workdir, 'checkpoints', str(step)))  # a preempted run saves one
    with open(os.path.join(workdir, 'config.json'), 'w') as f:
      f.write(config.to_json_best_effort())
    with open(os.path.join(workdir, 'metrics.jsonl'), 'w') as f:
      f.write(json.dumps({'step': step, 'split': 'train', 'loss': 1.0}) + '\n')
    summary = {'status': status, 'step': step, 'model': config.model.name}
    if status == 'done':
      with open(os.path.join(workdir, 'summary.json'), 'w') as f:
        json.dump(summary, f)
    return summary
  return train


def test_a_sweep_stopped_early_writes_its_table_with_unfinished_and_pending_rows(
    tmp_path, monkeypatch):
  from seqmodels.train import loop
  (tmp_path / 'two_seeds.py').write_text('def get_sweep():\n  return [{"seed": 0}, {"seed": 1}]\n')
  monkeypatch.chdir(ROOT)
  # the first trial gets a SIGTERM
  monkeypatch.setattr(loop, 'train_and_evaluate', _fake_trial('preempted', 3))
  code = _launch_in_process(['--config=experiments/configs/copy.py',
                             f'--sweep={tmp_path / "two_seeds.py"}',
                             f'--workdir={tmp_path / "sweep"}'])
  assert code == 143
  table = (tmp_path / 'sweep' / 'comparison.md').read_text()  # before, a stopped sweep wrote none
  assert (
      f'| seed=0 | lstm | unfinished (step 3 of {get_config().train.num_steps}) |' in table), table
  assert '| seed=1 | lstm | pending |' in table, table  # not begun: its model from sweep.json


def test_a_sweep_rerun_with_other_flags_is_refused_before_any_trial_runs(
    tmp_path, monkeypatch, capsys):
  from seqmodels.train import loop
  (tmp_path / 'two_seeds.py').write_text('def get_sweep():\n  return [{"seed": 0}, {"seed": 1}]\n')
  monkeypatch.chdir(ROOT)
  monkeypatch.setattr(loop, 'train_and_evaluate', _fake_trial('done', 5))
  flags = ['--config=experiments/configs/copy.py', f'--sweep={tmp_path / "two_seeds.py"}',
           f'--workdir={tmp_path}/s']
  assert _launch_in_process(flags) is None  # finished: main returns
  capsys.readouterr()
  # Before, the finished trials were skipped and their table written again under the new command.
  (tmp_path / 'higher_lr.py').write_text(
      'from experiments.configs.copy import get_config as copy\n\n\n'
      'def get_config():\n  c = copy()\n  c.optim.lr = 0.1\n  return c\n')
  assert _launch_in_process([f'--config={tmp_path / "higher_lr.py"}', *flags[1:]]) == 2
  assert capsys.readouterr().err.strip().splitlines()[-1].startswith(
      f'error: workdir {tmp_path}/s/seed=0 holds a run with a different config (config.optim.lr: ')


def test_a_sweep_with_a_failed_trial_says_how_to_retry_it_with_a_fix(tmp_path, monkeypatch, capsys):
  from seqmodels.train import loop
  (tmp_path / 'two_seeds.py').write_text('def get_sweep():\n  return [{"seed": 0}, {"seed": 1}]\n')
  monkeypatch.chdir(ROOT)
  finish = _fake_trial('done', 5)

  def train(config, workdir, stop_after=None):
    if config.seed == 0:
      return finish(config, workdir)
    os.makedirs(os.path.join(workdir, 'checkpoints', '4'))  # the last good one
    raise errors.NonFiniteLossError('loss became nan at step 5: lower optim.lr')
  monkeypatch.setattr(loop, 'train_and_evaluate', train)
  flags = ['--config=experiments/configs/copy.py', f'--sweep={tmp_path / "two_seeds.py"}',
           f'--workdir={tmp_path / "s"}']
  assert _launch_in_process(flags) == 1
  assert capsys.readouterr().err.strip().splitlines()[-1] == (  # before: "rerun the same command"
      'error: 1 of 2 trials failed (seed=1): their errors are in <trial dir>/failed.json; rerun '
      'the same command to retry them as they were, from their last checkpoints; to fix them with '
      'a changed config, first delete the trial directories that hold a checkpoint or a summary '
      '(seed=0, seed=1), which resume only with the config they began with, or use a new --workdir')


def test_fsdp_on_one_device_is_said(caplog):
  c = get_base_config()
  c.train.fsdp = True
  with caplog.at_level(logging.WARNING):
    validation.validate_devices(c, 8, 1, 'cpu')
  assert 'fsdp' not in caplog.text
  with caplog.at_level(logging.WARNING):
    validation.validate_devices(c, 1, 1, 'cpu')
  assert ('config.train.fsdp=True shards parameters' in caplog.text and
          'this run has one' in caplog.text)
