"""The training loop end to end: learning, exact resume, corrupt-checkpoint fallback, non-finite
loss."""

import dataclasses
import json
import logging
import os
import pathlib
import re
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from experiments.configs.base import get_base_config
from seqmodels import errors, evals
from seqmodels.analysis import runs
from seqmodels.models import ngram, registry
from seqmodels.train import checkpoint, count, evaluate, loop, optim, steps, workdir
from seqmodels.train.checkpoint import Checkpointer


def tiny_config(tmp_path, name='lstm', steps=12):
  c = get_base_config()
  c.data.name, c.data.min_len, c.data.max_len, c.data.num_symbols = 'copy', 2, 6, 4
  c.data.num_train, c.data.num_validation, c.data.num_test = 256, 32, 32
  c.data.data_dir = str(tmp_path / 'tfds')
  c.model.name, c.model.width, c.model.layers, c.model.heads = name, 32, 1, 2
  c.model.dropout = 0.1  # exercises the per-step dropout RNG, which resume must reproduce
  c.optim.warmup_steps = 2
  c.train.num_steps, c.train.batch_size = steps, 16
  c.train.log_every, c.train.eval_every, c.train.checkpoint_every = 2, 6, 4
  return c


def _assert_trees_equal(a, b):
  for x, y in zip(jax.tree.leaves(jax.device_get(a)), jax.tree.leaves(jax.device_get(b))):
    np.testing.assert_array_equal(x, y)


def test_interrupted_then_resumed_run_equals_uninterrupted_run(tmp_path):
  c = tiny_config(tmp_path)
  full = loop.train_and_evaluate(c, str(tmp_path / 'full'))
  assert full['status'] == 'done' and full['step'] == 12
  assert full['dtype'] == 'float32'  # train.dtype 'auto' on CPU
  part = loop.train_and_evaluate(c, str(tmp_path / 'resumed'), stop_after=5)
  assert part['status'] == 'preempted' and part['step'] == 5
  assert not (tmp_path / 'resumed' / 'summary.json').exists()
  # As if killed after logging step 5 but before its checkpoint was written: the run resumes from
  # step 4's.
  shutil.rmtree(tmp_path / 'resumed' / 'checkpoints' / '5')
  resumed = loop.train_and_evaluate(c, str(tmp_path / 'resumed'))
  assert resumed['status'] == 'done' and resumed['step'] == 12
  _assert_trees_equal(full['state'].params, resumed['state'].params)
  _assert_trees_equal(full['state'].opt_state, resumed['state'].opt_state)
  assert (tmp_path / 'resumed' / 'summary.json').exists()
  # Wall time counts both sessions, as training time does: never less than it.
  assert (resumed['wall_seconds'] > part['wall_seconds'] and
          resumed['wall_seconds'] >= resumed['train_seconds'])
  # Each session's hardware, from the step it began at: a run resumed elsewhere says so.
  assert [s['from_step'] for s in resumed['sessions']] == [0, 4] and full['sessions'] == [
      {'from_step': 0, 'devices': jax.device_count(), 'processes': 1, 'platform': 'cpu'}]
  written = (tmp_path / 'resumed' / 'summary.json').read_text()
  # finished: its summary is returned, not redone
  rerun = loop.train_and_evaluate(c, str(tmp_path / 'resumed'))
  assert ((tmp_path / 'resumed' / 'summary.json').read_text() == written and
          rerun == json.loads(written))
  # finished, but the summary was lost: rerun re-evaluates
  (tmp_path / 'resumed' / 'summary.json').unlink()
  again = loop.train_and_evaluate(c, str(tmp_path / 'resumed'))
  assert again['step'] == 12 and again['eval']['loss'] == resumed['eval']['loss']
  # A session that trains too few steps to time (none here) reports the last one's tokens/s: before,
  # NaN.
  assert (again['tokens_per_sec'] == pytest.approx(resumed['tokens_per_sec']) and
          resumed['tokens_per_sec'] > 0)
  lines = (tmp_path / 'resumed' / 'metrics.jsonl').read_text().splitlines()
  assert any('"split": "eval"' in l for l in lines) and any('"split": "train"' in l for l in lines)
  # Training time carries over the interruption: it grows with the step, and ends at the summary's.
  # What the first session logged after its last checkpoint (step 4) was trained again: each step is
  # logged once, by the session whose training the final state continues.
  seconds = [(r['step'], r['train_seconds']) for r in map(json.loads, lines)
             if r['split'] == 'train']
  assert [s for s, _ in seconds] == [2, 4, 6, 8, 10, 12]
  assert all(0 < a < b for (_, a), (_, b) in zip(seconds, seconds[1:]))
  assert seconds[-1][1] == pytest.approx(resumed['train_seconds'], rel=1e-6)


def test_a_length_in_epochs_is_its_steps_and_resumes(tmp_path):
  c = tiny_config(tmp_path)  # 256 training examples in batches of 16: an epoch is 16 steps
  # 20 steps, once an epoch
  c.train.num_epochs, c.train.eval_every, c.train.checkpoint_every = 1.25, 0, 0
  part = loop.train_and_evaluate(c, str(tmp_path / 'run'), stop_after=5)
  assert part['status'] == 'preempted' and checkpoint.saved_steps(str(tmp_path / 'run')) == [5]
  # config.json has the steps; the config, epochs
  done = loop.train_and_evaluate(c, str(tmp_path / 'run'))
  assert (done['step'] == done['num_steps'] == 20 and
          checkpoint.saved_steps(str(tmp_path / 'run')) == [20, 16, 5])
  evals = [r['step']
           for r in map(json.loads, (tmp_path / 'run' / 'metrics.jsonl').read_text().splitlines())
           if r['split'] == 'eval']
  assert evals == [16, 20]
  saved = json.loads((tmp_path / 'run' / 'config.json').read_text())['train']
  assert (saved['num_steps'], saved['eval_every'], saved['num_epochs']) == (20, 16, 1.25)
  c.train.num_epochs = 2.0
  with pytest.raises(errors.WorkdirError, match=r'config.train.num_epochs: 1.25 there, 2.0 now'):
    loop.train_and_evaluate(c, str(tmp_path / 'run'))


def _corrupt(step_dir: pathlib.Path, how: str = 'truncated') -> None:
  files = [f for f in step_dir.rglob('*') if f.is_file() and 'state' in f.parts]
  if how == 'truncated':
    for f in files:
      f.write_bytes(f.read_bytes()[: len(f.read_bytes()) // 2])
  else:  # 64 bytes flipped in the middle of the largest file: orbax reads them without an error
    f = max(files, key=lambda f: f.stat().st_size)
    data = bytearray(f.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(b ^ 0x5A for b in data[middle:middle + 64])
    f.write_bytes(bytes(data))


@pytest.mark.parametrize('how', ['truncated', 'garbled'])
def test_corrupt_latest_checkpoint_falls_back_to_previous_and_run_still_ends_exact(tmp_path, how):
  c = tiny_config(tmp_path)
  full = loop.train_and_evaluate(c, str(tmp_path / 'full'))
  work = tmp_path / 'work'
  loop.train_and_evaluate(c, str(work), stop_after=8)  # checkpoints at 4 and 8
  _corrupt(work / 'checkpoints' / '8', how)
  resumed = loop.train_and_evaluate(c, str(work))  # restores step 4, trains 5..12
  assert (work / 'corrupt_checkpoints' / '8').is_dir()
  _assert_trees_equal(full['state'].params, resumed['state'].params)


def test_nonfinite_loss_stops_with_step_and_keeps_last_good_checkpoint(tmp_path):
  c = tiny_config(tmp_path, steps=20)
  c.optim.lr, c.optim.warmup_steps, c.optim.clip_norm = 1e35, 0, 0.0
  c.train.checkpoint_every = 1
  work = tmp_path / 'nan'
  with pytest.raises(errors.NonFiniteLossError, match=r'at step (\d+)') as info:
    loop.train_and_evaluate(c, str(work))
  bad_step = int(re.search(r'at step (\d+)', str(info.value)).group(1))
  saved = sorted(int(p.name) for p in (work / 'checkpoints').iterdir() if p.name.isdigit())
  assert saved and max(saved) < bad_step
  assert f'the last good checkpoint (step {max(saved)}) is kept' in str(info.value)
  c.train.checkpoint_every = 100  # none saved before the loss fails: the message says so
  with pytest.raises(errors.NonFiniteLossError, match='no checkpoint was saved before it'):
    loop.train_and_evaluate(c, str(tmp_path / 'nan_early'))


def test_a_final_evaluation_that_fails_loses_no_training_and_a_rerun_redoes_only_it(
    tmp_path, monkeypatch):
  c = tiny_config(tmp_path)
  c.train.checkpoint_every = 100  # the last step's is the only checkpoint
  monkeypatch.setitem(registry.MODELS, 'lstm',
                      dataclasses.replace(registry.MODELS['lstm'], after_training=('bleu',)))
  def failing(*args):
    raise RuntimeError('decoding ran out of memory')
  monkeypatch.setitem(evals.AFTER_TRAINING, 'bleu', failing)
  with pytest.raises(RuntimeError, match='out of memory'):
    loop.train_and_evaluate(c, str(tmp_path / 'run'))
  assert checkpoint.saved_steps(str(tmp_path / 'run')) == [12]
  monkeypatch.setitem(evals.AFTER_TRAINING, 'bleu', lambda *args: {'bleu': 7.0})
  summary = loop.train_and_evaluate(c, str(tmp_path / 'run'))
  assert summary['step'] == 12 and summary['eval']['bleu'] == 7.0


def test_a_rerun_after_a_kill_before_the_summary_reports_the_last_train_metrics(tmp_path):
  c = tiny_config(tmp_path, steps=4)
  first = loop.train_and_evaluate(c, str(tmp_path / 'run'))
  assert set(first['train']) >= {'loss', 'tokens_per_sec'}
  (tmp_path / 'run' / 'summary.json').unlink()  # killed after the last checkpoint, before this
  again = loop.train_and_evaluate(c, str(tmp_path / 'run'))  # trains no step: it evaluates the last
  assert again['train'] == pytest.approx(first['train'], nan_ok=True)  # before: {}
  written = json.loads((tmp_path / 'run' / 'summary.json').read_text())
  assert written['train']['loss'] == pytest.approx(first['train']['loss'])


# Per-model learning rates: at 1e-2 the GPT plateaus near 0.89 accuracy; at 3e-3 the LSTM is still
# at 0.83.
@pytest.mark.parametrize('name,lr,steps', [('lstm', 1e-2, 150), ('gpt', 3e-3, 250)])
def test_lm_learns_copy_task_far_below_uniform(tmp_path, name, lr, steps):
  c = tiny_config(tmp_path, name=name, steps=steps)
  c.model.dropout = 0.0
  c.model.width, c.model.layers = 64, 2
  c.optim.lr, c.optim.warmup_steps = lr, 10
  c.train.batch_size, c.train.log_every, c.train.eval_every, c.train.checkpoint_every = (
      32, 50, steps, steps)
  s = loop.train_and_evaluate(c, str(tmp_path / name))
  uniform = np.log(4 + 4)  # 4 symbols + 4 special tokens
  assert s['eval']['loss'] < 0.2 * uniform, s['eval']
  assert s['eval']['accuracy'] > 0.9, s['eval']


def test_checkpoint_restores_onto_a_different_device_count(tmp_path):
  c = tiny_config(tmp_path)
  s = loop.train_and_evaluate(c, str(tmp_path / 'run'))  # saved from 8 devices
  one = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=one),
                          s['state'])
  state, meta = Checkpointer(str(tmp_path / 'run'), 4, 3).restore_latest(abstract)
  assert int(state.step) == 12 and len(state.params['embed']['embedding'].sharding.device_set) == 1
  _assert_trees_equal(s['state'].params, state.params)
  # The checksum that restoring checks is the same however the arrays are placed (an integer sum,
  # exact):
  rows = jax.sharding.NamedSharding(jax.sharding.Mesh(jax.devices(), ('data',)),
                                    jax.sharding.PartitionSpec('data'))
  embedding = state.params['embed']['embedding']  # [V, E], V a multiple of the 8 devices here
  assert len(jax.devices()) == 8 and embedding.shape[0] % 8 == 0
  columns = jax.sharding.NamedSharding(rows.mesh, jax.sharding.PartitionSpec(None, 'data'))
  assert checkpoint.checksum(jax.device_put(embedding, rows)) == checkpoint.checksum(embedding)
  assert checkpoint.checksum(jax.device_put(embedding, columns)) == checkpoint.checksum(embedding)
  assert checkpoint.checksum(embedding.at[3, 1].add(1e-7)) != checkpoint.checksum(embedding)
  # the same values, moved
  swapped = embedding.at[0, 0].set(embedding[0, 1]).at[0, 1].set(embedding[0, 0])
  assert checkpoint.checksum(swapped) != checkpoint.checksum(embedding)


def test_init_from_loads_pretrained_params_and_frozen_ones_stay_bit_identical(tmp_path, caplog):
  c = tiny_config(tmp_path, steps=4)
  pre = loop.train_and_evaluate(c, str(tmp_path / 'pre'))
  c.train.init_from = str(tmp_path / 'pre')
  c.optim.freeze = 'rnn'
  c.seed = 1  # a different init everywhere: loaded arrays must come from the checkpoint
  with caplog.at_level(logging.WARNING):
    fine = loop.train_and_evaluate(c, str(tmp_path / 'fine'))
  _assert_trees_equal(pre['state'].params['rnn'], fine['state'].params['rnn'])
  assert not np.allclose(jax.device_get(pre['state'].params['head']['kernel']),
                         jax.device_get(fine['state'].params['head']['kernel']))
  assert 'init_from' not in caplog.text  # all arrays from a finished run: nothing to warn of
  (tmp_path / 'pre' / 'summary.json').unlink()  # as if still running
  # e.g. a GPT from the LSTM's run: only the token embedding is one of its
  with caplog.at_level(logging.WARNING):
    loop.warn_of_init_from(str(tmp_path / 'pre'), ['embed/embedding'],
                           ['pos', 'block0/attn/qkv/kernel'])
  assert re.search(r"init_from=.*pre gave only 1 of this model's 3 parameter arrays "
                   r"\(2 start fresh\)", caplog.text)
  assert re.search(r'init_from=.*pre holds a run that has not finished: its latest '
                   r'checkpoint \(step 4\)', caplog.text)
  # no array of it has the name and shape of one of the LSTM's
  c.model.name, c.model.width = 'gpt', 48
  with pytest.raises(errors.CheckpointError, match=r'config\.train\.init_from=.*no parameter of '
                     r'this model.*config\.model must match'):
    loop.train_and_evaluate(c, str(tmp_path / 'other'))


def test_restore_saved_names_a_missing_checkpoint(tmp_path):
  with pytest.raises(errors.CheckpointError, match=r'has no checkpoint: point it at the workdir'):
    checkpoint.restore_saved(str(tmp_path))
  with pytest.raises(errors.CheckpointError, match=r'has no checkpoint at step 7'):
    checkpoint.restore_saved(str(tmp_path), 7)
  with pytest.raises(errors.CheckpointError, match=r'the run kept none: train.keep_best was off'):
    checkpoint.restore_saved(str(tmp_path), which='best')
  (tmp_path / 'config.json').write_text(
      json.dumps({'train': {'keep_best': True, 'eval_every': 1000}}))
  # before: keep_best off
  with pytest.raises(errors.CheckpointError, match=r'no best checkpoint yet: the run keeps one but '
                     r'has not evaluated \(every 1000 steps\)'):
    checkpoint.restore_saved(str(tmp_path), which='best')


_LONG_RUN = """
import pathlib
import shutil
import sys
from seqmodels.train import loop
from tests.train.loop_test import tiny_config
c = tiny_config(pathlib.Path(sys.argv[1]), 'gpt', steps=600)
# nothing waits on a step until the end
c.train.log_every = c.train.eval_every = c.train.checkpoint_every = 600
print(loop.train_and_evaluate(c, sys.argv[1] + '/run')['status'])
"""


def test_long_run_on_eight_cpu_devices_does_not_deadlock_in_its_all_reduces(tmp_path):
  """600 steps with no metric fetch until the end. Queued without bound, steps of 8 devices sharing
  2 cores deadlocked XLA:CPU's all-reduce (the process aborts after 40 s); loop.MAX_STEPS_IN_FLIGHT
  prevents it."""
  root = pathlib.Path(__file__).resolve().parents[2]
  out = subprocess.run([sys.executable, '-c', _LONG_RUN, str(tmp_path)], cwd=root,
                       capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(root)),
                       timeout=300)
  assert out.returncode == 0 and out.stdout.split()[-1:] == ['done'], out.stderr[-2000:]


def test_a_checkpoint_of_other_parameters_is_named_not_quarantined_as_corrupt(tmp_path):
  """A readable checkpoint whose parameters differ from the model's (another seqmodels version's
  layout) stops the resume with a message naming the difference, and stays where it is."""
  c = tiny_config(tmp_path, name='gpt')
  s = loop.train_and_evaluate(c, str(tmp_path / 'run'))
  params = dict(s['state'].params)
  params['block0'] = {('attn_renamed' if k == 'attn' else k): v
                      for k, v in params['block0'].items()}
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
                          s['state'].replace(params=params))
  with pytest.raises(errors.CheckpointError,
                     match=r'step 12 .* holds other parameters than this model \('
                     r'block0/attn/out/bias is not in the model; .*; \d+ more\): .*new --workdir'):
    Checkpointer(str(tmp_path / 'run'), 4, 3).restore_latest(abstract)
  assert (tmp_path / 'run' / 'checkpoints' / '12').is_dir()
  assert not (tmp_path / 'run' / 'corrupt_checkpoints').exists()


def test_keep_best_keeps_the_best_evaluations_parameters_and_analyses_read_them(tmp_path, caplog):
  from seqmodels.analysis import runs
  c = tiny_config(tmp_path)
  # evaluations at 4, 8, 12: steps the periodic checkpoints keep
  c.train.keep_best, c.train.eval_every = True, 4
  c.train.test_eval = True
  summary = loop.train_and_evaluate(c, str(tmp_path / 'run'))
  evals = {r['step']: r['loss']
           for r in map(json.loads, (tmp_path / 'run' / 'metrics.jsonl').read_text().splitlines())
           if r['split'] == 'eval'}
  best = min(evals, key=evals.get)
  assert (summary['best_step'] == best and
          checkpoint.saved_steps(str(tmp_path / 'run'), 'best') == [best])
  with caplog.at_level(logging.WARNING):
    _, kept = checkpoint.restore_saved(str(tmp_path / 'run'), best, which='best')
    _, periodic = checkpoint.restore_saved(str(tmp_path / 'run'), best)
  # orbax's warning of step metadata in an item's directory is not for a reader
  assert not caplog.records
  _assert_trees_equal(kept['params'], periodic['params'])
  run = runs.load(str(tmp_path / 'run'))
  params, step = runs.latest_params(run, [np.zeros((1, 4), np.int32)], 'best')
  assert step == best
  _assert_trees_equal(params, periodic['params'])
  # train.test_eval: the test split, with the best evaluation's parameters
  eval_step = jax.jit(steps.make_eval_step(run.model, run.objective))
  replicated = jax.sharding.NamedSharding(jax.sharding.Mesh(jax.devices(), ('data',)),
                                          jax.sharding.PartitionSpec())
  on_test = lambda p: evaluate.evaluate(
      eval_step, run.objective, p, run.data, 16,
      jax.sharding.NamedSharding(replicated.mesh, jax.sharding.PartitionSpec('data')), None, 'test')
  assert summary['test'] == {**on_test(params), 'parameters': 'best'}
  c.train.keep_best = False
  final = loop.train_and_evaluate(c, str(tmp_path / 'plain'))
  assert final['test'] == {**on_test(final['state'].params), 'parameters': 'final'}
  with pytest.raises(errors.CheckpointError,
                     match=r'no best checkpoint \(the run kept none: train.keep_best was off\): '
                     r'train with --config.train.keep_best=True, or read the latest checkpoint'):
    runs.latest_params(runs.load(str(tmp_path / 'plain')), [np.zeros((1, 4), np.int32)], 'best')


def test_test_eval_without_a_test_split_stops_before_training(tmp_path):
  c = tiny_config(tmp_path)
  c.data.name, c.data.path, c.data.seq_len = 'text', str(tmp_path / 'corpus.txt'), 16
  (tmp_path / 'corpus.txt').write_text('to be or not to be, that is the question\n' * 40)
  c.train.test_eval = True
  with pytest.raises(errors.DataError, match=r'config.train.test_eval=True, but '
                     r'config.data.name=text has no test split of its own \(a single file is split '
                     r'90%/10% into train and validation\): leave test_eval off'):
    loop.train_and_evaluate(c, str(tmp_path / 'run'))
  assert not (tmp_path / 'run' / 'checkpoints').exists()


@pytest.mark.parametrize('name', ['lstm', 'ngram'])
def test_test_eval_reads_a_text_corpus_test_file_with_word_tokens(tmp_path, name):
  c = tiny_config(tmp_path, name, steps=4)
  c.data.name, c.data.seq_len, c.data.tokenizer = 'text', 8, 'word'
  c.data.path = str(tmp_path / 'corpus.{split}.txt')
  # WikiText's names: valid for validation
  texts = {split: ''.join(f'to be or not to be {i % 5} {split}\n' for i in range(n))
           for split, n in (('train', 60), ('valid', 9), ('test', 7))}
  for split, text in texts.items():
    (tmp_path / f'corpus.{split}.txt').write_text(text)
  c.train.test_eval, c.train.eval_every = True, 4
  summary = loop.train_and_evaluate(c, str(tmp_path / 'run'))
  run = runs.load(str(tmp_path / 'run'))
  assert run.data.splits['test'].size == 7 * 9 // 8  # nine words a line (with <eos>), windows of 8
  if name == 'ngram':
    expected, _ = count.evaluate(
        ngram.fit(count.training_tokens(run.data, c.data), c.model.order, run.data.vocab_size),
        run.data, c.train.batch_size, None, 'test')
    assert summary['test'] == {**expected, 'parameters': 'final'}
  else:
    assert (summary['test']['parameters'] == 'final' and
            0 < summary['test']['loss'] < np.log(run.data.vocab_size))
  assert run.data.decode(
      run.data.splits['test'].gather(np.arange(1))['inputs'][0]) == 'to be or not to be 0 <unk>'
  records = [json.loads(r) for r in (tmp_path / 'run' / 'metrics.jsonl').read_text().splitlines()]
  assert [r['split'] for r in records].count('test') == 1
  # 9 tokens a line
  for split, metrics, lines in (('valid', summary['eval'], 9), ('test', summary['test'], 7)):
    assert (metrics['bits_per_char'] ==
            pytest.approx(metrics['bits_per_token'] * 9 * lines / len(texts[split])))


def test_a_run_records_its_data_files_and_refuses_to_resume_or_be_analysed_on_changed_ones(
    tmp_path, monkeypatch):
  c = tiny_config(tmp_path, steps=6)
  # relative: launched from tmp_path
  c.data.name, c.data.seq_len, c.data.path = 'text', 8, 'corpus.txt'
  c.train.checkpoint_every = 2
  (tmp_path / 'corpus.txt').write_text('to be or not to be, that is the question\n' * 40)
  monkeypatch.chdir(tmp_path)
  loop.train_and_evaluate(c, 'run', stop_after=2)
  # the analyses read it from anywhere: config.json names the file absolutely
  monkeypatch.chdir(tmp_path.parent)
  corpus = str(tmp_path / 'corpus.txt')
  assert json.loads((tmp_path / 'run' / 'config.json').read_text())['data']['path'] == corpus
  assert list(json.loads((tmp_path / 'run' / workdir.DATA_FILES).read_text())) == [corpus]
  assert runs.load(str(tmp_path / 'run')).data.vocab_size > 0
  monkeypatch.chdir(tmp_path)
  assert loop.train_and_evaluate(c, 'run', stop_after=2)['step'] == 4  # the same files: it resumes
  with open(corpus, 'a') as f:  # the same characters: it would resume silently on other text
    f.write('to be\n')
  with pytest.raises(errors.WorkdirError,
                     match=f'trained on other data: {corpus} changed since the run began'):
    loop.train_and_evaluate(c, 'run')
  with pytest.raises(ValueError, match=f'other data than its config names now: {corpus} changed'):
    runs.load(str(tmp_path / 'run'))
  os.remove(corpus)
  with pytest.raises(ValueError, match=f'{corpus} it read is gone'):
    runs.load(str(tmp_path / 'run'))


def test_a_run_that_carries_its_state_resumes_exactly_across_an_epoch_boundary(tmp_path):
  c = tiny_config(tmp_path, 'gru', steps=18)
  c.data.name, c.data.seq_len, c.data.path = 'text', 16, str(tmp_path / 'corpus.txt')
  (tmp_path / 'corpus.txt').write_text(''.join(f'{i}: all the world is a stage\n'
                                               for i in range(80)))
  # 8 streams of 2,160 * 0.9 / 8 = 243 chars: 15 windows an epoch
  c.train.carry_state, c.train.batch_size = True, 8
  full = loop.train_and_evaluate(c, str(tmp_path / 'full'))
  loop.train_and_evaluate(c, str(tmp_path / 'resumed'), stop_after=5)
  resumed = loop.train_and_evaluate(c, str(tmp_path / 'resumed'))
  _assert_trees_equal(full['state'].params, resumed['state'].params)
  _assert_trees_equal(full['state'].carry, resumed['state'].carry)
  assert full['state'].carry[0][0].shape == (8, 32)  # the GRU's state: one per stream
  assert 0 < full['eval']['loss'] < np.log(len(set((tmp_path / 'corpus.txt').read_text())))
  # train.eval_batch_size: the validation split read as 16 streams instead, each carried through in
  # one piece
  c.train.eval_batch_size, c.train.num_steps = 16, 3
  wide = loop.train_and_evaluate(c, str(tmp_path / 'wide'))
  run = runs.load(str(tmp_path / 'wide'))
  ids = run.data.tokens['validation']
  streams_16xL = ids[:len(ids) // 16 * 16].reshape(16, -1)
  logits = run.model.apply({'params': wide['state'].params}, streams_16xL[:, :-1])
  nll, tokens = steps.token_cross_entropy(logits, streams_16xL[:, 1:],
                                          np.ones(streams_16xL[:, 1:].shape))[:2]
  assert wide['eval']['loss'] == pytest.approx(float(nll) / float(tokens), rel=1e-5)
  assert abs(wide['eval']['loss'] - full['eval']['loss']) > 1e-4  # 8 streams are not 16
  # 216 validation characters: 1 a stream, too few; said before any training
  c.train.eval_batch_size = 128
  with pytest.raises(errors.DataError, match=r'in 128 streams \(config.train.eval_batch_size\) are '
                     r'1 tokens each, fewer than two tokens: lower config.train.eval_batch_size '
                     r'\(0: batch_size\)'):
    loop.train_and_evaluate(c, str(tmp_path / 'too_many_streams'))
  assert not (tmp_path / 'too_many_streams' / 'metrics.jsonl').exists()
  c.train.eval_batch_size, c.train.num_steps = 0, 18
  c.train.carry_state = False
  with pytest.raises(errors.WorkdirError,
                     match=r'config\.train\.carry_state: True there, False now'):
    loop.train_and_evaluate(c, str(tmp_path / 'full'))


def test_plateau_decay_lowers_the_learning_rate_after_each_evaluation_no_better_than_the_best(
    tmp_path):
  c = tiny_config(tmp_path)
  c.train.eval_every, c.optim.plateau_decay = 2, 0.5
  # nothing trains: every evaluation equals the first, none is better
  c.optim.freeze = 'embed,rnn,head'
  full = loop.train_and_evaluate(c, str(tmp_path / 'full'))
  assert float(full['state'].lr_scale) == 0.5 ** 5  # the evaluations at steps 4, 6, ..., 12
  loop.train_and_evaluate(c, str(tmp_path / 'resumed'), stop_after=5)
  resumed = loop.train_and_evaluate(c, str(tmp_path / 'resumed'))
  assert float(resumed['state'].lr_scale) == 0.5 ** 5
  records = [json.loads(l) for l in (tmp_path / 'full' / 'metrics.jsonl').read_text().splitlines()]
  lr = {r['step']: r['lr'] for r in records if r['split'] == 'train'}
  schedule = optim.make_optimizer(c.optim, c.train.num_steps)[1]
  # steps 11 and 12 (logged at 12) run after 4 decays (evaluations 4, 6, 8, 10)
  assert lr[12] == pytest.approx(0.5 ** 4 * (float(schedule(10)) + float(schedule(11))) / 2,
                                 rel=1e-6)


def test_a_run_solves_its_width_records_its_size_and_mfu_norms_and_a_profile(tmp_path):
  c = tiny_config(tmp_path, steps=6)
  c.model.dropout, c.model.params = 0.0, 9_000  # lstm, 1 layer: width 32 (8,584) is closest
  c.train.layer_norms, c.train.profile_steps = True, '3-4'
  c.train.log_every, c.train.eval_every, c.train.checkpoint_every = 2, 6, 6
  s = loop.train_and_evaluate(c, str(tmp_path / 'run'))
  written = json.loads((tmp_path / 'run' / 'config.json').read_text())['model']
  assert written['width'] == s['size_target']['width'] == 32 and written['params'] == 9_000
  assert s['size_target']['target'] == {'params': 9_000}
  assert s['params_embedding'] + s['params_non_embedding'] == s['params']
  assert s['params_non_embedding'] == s['size_target']['params_non_embedding']
  assert s['mfu'] > 0 and s['peak_flops'] > 0 and s['peak_flops_source'].startswith('measured')
  logged = [json.loads(line) for line in (tmp_path / 'run' / 'metrics.jsonl').read_text().split(
      '\n') if '"train"' in line]
  assert {'param_norm/rnn/layer0', 'grad_norm/head', 'update_norm/embed'} <= set(logged[-1])
  assert logged[-1]['update_norm/rnn/layer0'] > 0
  assert list((tmp_path / 'run' / 'profile').rglob('*.xplane.pb'))  # TensorBoard's profile tab
  # the solved width is what the run asked for: rerunning its command finds it finished
  assert loop.train_and_evaluate(c, str(tmp_path / 'run'))['status'] == 'done'


def test_a_wsd_branch_from_a_longer_runs_stable_phase_equals_the_shorter_run_itself(tmp_path):
  c = tiny_config(tmp_path, steps=10)
  c.optim.schedule, c.optim.decay_fraction, c.optim.min_lr_ratio = 'wsd', 0.2, 0.0
  c.train.checkpoint_every, c.train.keep_checkpoints, c.train.eval_every = 2, 10, 10
  loop.train_and_evaluate(c, str(tmp_path / 'long'))
  short = c.copy_and_resolve_references()
  short.train.num_steps, short.train.eval_every = 5, 5  # its decay: step 4 to 5
  direct = loop.train_and_evaluate(short, str(tmp_path / 'direct'))
  short.train.branch_from = str(tmp_path / 'long')
  branch = loop.train_and_evaluate(short, str(tmp_path / 'branch'))
  assert branch['sessions'][0]['from_step'] == 4
  _assert_trees_equal(direct['state'].params, branch['state'].params)
  short.train.num_steps = 9  # its decay would begin at step 7, which the long run did not save
  with pytest.raises(errors.CheckpointError, match='holds no checkpoint at step 7, where this '
                     "run's decay begins"):
    loop.train_and_evaluate(short, str(tmp_path / 'no_branch'))
