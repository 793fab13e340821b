"""Training by counting: the n-gram run writes the neural runs' summary fields, and its loss is
NGramLM.nll."""

import json
import types

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from experiments.configs.base import get_base_config
from seqmodels import errors
from seqmodels import validation
from seqmodels.data import core
from seqmodels.data import registry as datasets
from seqmodels.data import text
from seqmodels.models import ngram, registry
from seqmodels.train import count, loop


def _config(tmp_path, name='ngram'):
  # The neural run has the config of tests/analysis/gradient_flow_cli_test.py's: its compilations
  # are cached.
  c = get_base_config()
  c.data.name, c.data.min_len, c.data.max_len, c.data.num_symbols = 'copy', 4, 4, 4
  c.data.num_train, c.data.num_validation, c.data.num_test = 64, 16, 8
  c.data.data_dir = str(tmp_path / 'tfds')
  c.model.name, c.model.width, c.model.layers, c.model.heads, c.model.order = name, 16, 1, 2, 3
  c.train.num_steps, c.train.batch_size, c.train.log_every = 2, 8, 1
  c.train.eval_every = c.train.checkpoint_every = 2
  return c


def test_ngram_run_writes_the_summary_of_a_neural_run_and_its_loss_is_the_mean_nll(tmp_path):
  c = _config(tmp_path)
  validation.validate(c)
  summary = loop.train_and_evaluate(c, str(tmp_path / 'ngram'))
  neural = loop.train_and_evaluate(_config(tmp_path, 'rnn'), str(tmp_path / 'rnn'))
  written = json.loads((tmp_path / 'ngram' / 'summary.json').read_text())
  assert set(json.loads((tmp_path / 'rnn' / 'summary.json').read_text())) <= set(written)
  assert set(written['eval']) == set(neural['eval'])
  assert written['params'] > 0 and written['tokens_per_sec'] > 0
  assert set(written['unseen_context_fraction']) == {'2', '3'}
  lines = [json.loads(l) for l in (tmp_path / 'ngram' / 'metrics.jsonl').read_text().splitlines()]
  assert [l['split'] for l in lines] == ['train', 'eval']
  # the report's loss-vs-time point
  assert lines[0]['train_seconds'] == written['train_seconds'] > 0

  data = datasets.load(c.data)
  model = ngram.fit(count.training_tokens(data, c.data), 3, data.vocab_size)
  nll, n = 0.0, 0.0
  for batch in data.eval_batches(batch_size=8):
    nll += float((model.nll(batch) * batch['weights']).sum())
    n += float(batch['weights'].sum())
  np.testing.assert_allclose(summary['eval']['loss'], nll / n, rtol=1e-9)
  assert summary['params'] == sum(t.keys.size for t in model.tables)


@pytest.mark.parametrize('order', [1, 2, 4])
def test_carried_context_scores_the_windows_targets_as_one_running_text(order):
  rng = np.random.default_rng(0)
  train, valid = rng.integers(0, 5, 400), rng.integers(0, 5, 53)
  model = ngram.fit(train, order, 5)
  data = core.Data('lm', 5, 8, {'validation': text._windows(valid, 8, 8)},
                   tokens={'validation': valid})
  carried, _ = count.evaluate(model, data, 3, None, carry_state=True)
  windowed, _ = count.evaluate(model, data, 3, None)
  # One row holding the whole split, the windows' targets (positions 1..48: six windows of 8)
  # weighted.
  whole = {'inputs': valid[None, :-1], 'targets': valid[None, 1:],
           'weights': (np.arange(52) < 48)[None] * 1.0}
  nll = float((model.nll(whole) * whole['weights']).sum())
  assert carried['loss'] == pytest.approx(nll / 48, rel=1e-12)
  if order <= 2:  # a bigram's context is the input token itself: nothing to carry
    assert windowed['loss'] == pytest.approx(carried['loss'], rel=1e-12)
  else:
    assert abs(windowed['loss'] - carried['loss']) > 1e-3
  assert len(list(count.eval_batches(data, 3, 1, context=2))) == 1


def test_training_tokens_stitch_text_windows_back_into_the_stream():
  stream = np.arange(23) % 7
  windows = text._windows(stream, seq_len=5, stride=5)
  data = core.Data('lm', 7, 5, {'train': windows})
  cfg = get_base_config().data
  cfg.name, cfg.seq_len = 'text', 5
  got = count.training_tokens(data, cfg)
  np.testing.assert_array_equal(got, stream[:len(got)])
  assert len(got) >= len(stream) - 5


@pytest.mark.parametrize('field, value, message', [
    ('order', 0, 'config.model.order=0 must be a positive integer'),
    ('discount', 1.5, 'config.model.discount=1.5 must be in [0, 1]'),
    ('recurrent_init_scale', 0.0, 'config.model.recurrent_init_scale=0.0 must be > 0'),
])
def test_bad_new_fields_fail_with_one_line_naming_the_field(tmp_path, field, value, message):
  c = _config(tmp_path)
  c.model[field] = value
  with pytest.raises(errors.ConfigError) as e:
    validation.validate(c)
  assert message in str(e.value) and '\n' not in str(e.value)


def test_recurrent_init_scale_is_honoured_by_language_models_too(tmp_path):
  c = _config(tmp_path, 'rnn')
  c.model.recurrent_init_scale = 3.0
  validation.validate(c)
  data = types.SimpleNamespace(vocab_size=7, seq_len=5, kind='lm')
  tokens = jnp.zeros((1, 5), jnp.int32)
  init = lambda scale: registry.build(_with_scale(c.model, scale), data, jnp.float32).init(
      jax.random.PRNGKey(0), tokens)['params']['rnn']['layer0']['wh']
  np.testing.assert_allclose(init(3.0), 3.0 * init(1.0), rtol=1e-6)


def _with_scale(model_cfg, scale):
  m = ml_collections.ConfigDict(model_cfg.to_dict())
  m.recurrent_init_scale = scale
  return m
