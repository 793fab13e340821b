"""Regressors and the regression objective: every registered name builds, MSE is hand-computed, the
adding problem is learnt through the training loop."""

import types

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs.base import get_base_config
from seqmodels.models import registry
from seqmodels.models.rnn_regressor import RNNRegressor, RNNRegressorConfig
from seqmodels.train import loop, steps

B, T, V = 4, 6, 9


def _adding_batch(rng, lengths):
  values = rng.random((B, T)).astype(np.float32)
  markers = np.zeros((B, T), np.float32)
  mask = (np.arange(T)[None] < np.asarray(lengths)[:, None]).astype(np.float32)
  markers[:, 0] = markers[np.arange(B), np.asarray(lengths) - 1] = 1
  return {
      'values': values * mask, 'markers': markers * mask, 'mask': mask,
      'target': (values[:, 0] + values[np.arange(B), np.asarray(lengths) - 1]).astype(np.float32)}


@pytest.mark.parametrize(
    'name', sorted(n for n, e in registry.MODELS.items() if e.trained_by == 'gradient'))
def test_registry_builds_every_model_for_each_of_its_task_kinds(name):
  m = get_base_config().model
  m.name, m.width, m.layers, m.heads = name, 16, 1, 2
  for kind in registry.MODELS[name].kinds:
    data = types.SimpleNamespace(kind=kind, vocab_size=V, seq_len=T, meta={})
    model = registry.build(m, data, jnp.float32)
    assert isinstance(model, registry.nn.Module)
    if kind == 'regression':
      batch = _adding_batch(np.random.default_rng(0), [T] * B)
      inputs = steps.OBJECTIVES[kind].inputs(batch)
      out = jax.eval_shape(lambda: model.apply(model.init(jax.random.PRNGKey(0), *inputs), *inputs))
      chex.assert_shape(out, (B,))
    elif kind == 'lm':
      tokens = jnp.zeros((B, T), jnp.int32)
      out = jax.eval_shape(lambda: model.apply(model.init(jax.random.PRNGKey(0), tokens), tokens))
      chex.assert_shape(out, (B, T, V))


def test_counted_models_are_not_built_as_modules():
  m = get_base_config().model
  m.name = 'ngram'
  with pytest.raises(ValueError, match='counting'):
    registry.build(m, types.SimpleNamespace(kind='lm', vocab_size=V, seq_len=T), jnp.float32)


def test_regression_loss_equals_hand_computed_mse_and_eval_skips_padding_rows():
  rng = np.random.default_rng(1)
  batch = _adding_batch(rng, [T, 3, 2, 4])
  pred = rng.normal(size=B).astype(np.float32)
  loss, metrics = steps.REGRESSION.loss(jnp.asarray(pred), batch)
  err = pred - batch['target']
  np.testing.assert_allclose(float(loss), np.mean(err ** 2), rtol=1e-6)
  np.testing.assert_allclose(float(metrics['accuracy']), np.mean(np.abs(err) < 0.04))
  batch['mask'][2:] = 0  # rows 2, 3 are eval padding
  m = steps.REGRESSION.finalize(
      jax.device_get(steps.REGRESSION.eval_sums(jnp.asarray(pred), batch)))
  np.testing.assert_allclose(m['mse'], np.mean(err[:2] ** 2), rtol=1e-6)
  assert m['loss'] == m['mse']


def test_state_after_the_last_real_step_ignores_padding():
  model = RNNRegressor(RNNRegressorConfig(cell='gru', H=8))
  batch = _adding_batch(np.random.default_rng(2), [3] * B)
  params = model.init(jax.random.PRNGKey(0), batch['values'], batch['markers'], batch['mask'])
  padded = {k: np.asarray(v).copy() for k, v in batch.items()}
  padded['values'][:, 3:] = 5.0  # garbage after the real steps
  a = model.apply(params, batch['values'], batch['markers'], batch['mask'])
  b = model.apply(params, padded['values'], padded['markers'], padded['mask'])
  np.testing.assert_allclose(a, b, rtol=1e-6)


def test_recurrent_init_scale_multiplies_the_recurrent_matrix():
  x = jnp.zeros((1, 3, 2))
  p1 = RNNRegressor(RNNRegressorConfig(cell='rnn', H=8)).init(jax.random.PRNGKey(0), x[..., 0],
                                                              x[..., 1], jnp.ones((1, 3)))
  p3 = RNNRegressor(RNNRegressorConfig(cell='rnn', H=8, recurrent_init_scale=3.0)).init(
      jax.random.PRNGKey(0), x[..., 0], x[..., 1], jnp.ones((1, 3)))
  np.testing.assert_allclose(p3['params']['rnn']['layer0']['wh'],
                             3 * p1['params']['rnn']['layer0']['wh'], rtol=1e-6)


def test_lstm_learns_the_adding_problem_below_the_trivial_baseline(tmp_path):
  c = get_base_config()
  c.data.name, c.data.min_len, c.data.max_len = 'adding', 10, 10
  c.data.num_train, c.data.num_validation, c.data.num_test = 2048, 128, 8
  c.data.data_dir = str(tmp_path / 'tfds')
  c.model.name, c.model.width, c.model.layers = 'lstm', 32, 1
  c.optim.lr, c.optim.warmup_steps = 1e-2, 10
  c.train.num_steps, c.train.batch_size = 250, 32
  c.train.log_every, c.train.eval_every, c.train.checkpoint_every = 50, 250, 250
  summary = loop.train_and_evaluate(c, str(tmp_path / 'run'))
  # Predicting 1.0 (the mean target) scores E[(u1 + u2 - 1)^2] = 1/6.
  assert summary['eval']['mse'] < 0.05, summary['eval']
  assert summary['eval']['loss'] == summary['eval']['mse']


def test_auto_unroll_is_resolved_per_platform_and_explicit_values_are_kept(monkeypatch):
  m = get_base_config().model
  assert m.unroll == 0  # the default: auto
  data = types.SimpleNamespace(kind='lm', vocab_size=V, seq_len=T, meta={})
  assert registry.build(m, data, jnp.float32).cfg.unroll == 1  # the tests run on CPU
  assert m.unroll == 0  # the caller's config is not changed
  monkeypatch.setattr(jax, 'default_backend', lambda: 'gpu')
  assert registry.build(m, data, jnp.float32).cfg.unroll == 8
  m.unroll = 4
  assert registry.build(m, data, jnp.float32).cfg.unroll == 4


def test_min_scan_reaches_the_min_rnn_layers():
  m = get_base_config().model
  m.name, m.width, m.layers = 'mingru', 8, 1
  data = types.SimpleNamespace(kind='lm', vocab_size=V, seq_len=T, meta={})
  for scan, expected in (('auto', None), ('parallel', True), ('sequential', False)):
    m.min_scan = scan
    assert registry.build(m, data, jnp.float32).cfg.parallel_scan is expected


def _inputs(kind: str):
  rng = np.random.default_rng(3)
  # PAD ends some rows' inputs
  tokens = jnp.asarray(rng.integers(1, V, (B, T)), jnp.int32).at[:, -2:].set(0)
  if kind == 'regression':
    return steps.REGRESSION.inputs(_adding_batch(rng, [T, 3, 2, 4]))
  return {'lm': (tokens,), 'classify': (tokens, jnp.zeros_like(tokens)),
          'seq2seq': (tokens, tokens)}[kind]


@pytest.mark.parametrize('name,kind', [('rnn', 'lm'), ('lstm', 'lm'), ('gru', 'regression'),
                                       ('lstm_classifier', 'classify'), ('elmo', 'lm'),
                                       ('elmo_classifier', 'classify'), ('seq2seq_gru', 'seq2seq')])
def test_recurrence_reaches_every_recurrent_model_and_gives_the_same_gradients(
    name, kind, monkeypatch):
  m = get_base_config().model
  m.name, m.width, m.layers, m.cell = name, 8, 1, 'gru'
  data = types.SimpleNamespace(kind=kind, vocab_size=V, seq_len=T, meta={})
  inputs = _inputs(kind)
  params = registry.build(m, data, jnp.float32).init(jax.random.PRNGKey(0), *inputs)

  def grads(recurrence: str):
    m.recurrence = recurrence
    model = registry.build(m, data, jnp.float32)
    loss = lambda p: sum(jnp.sum(jnp.square(y)) for y in jax.tree.leaves(model.apply(p, *inputs)))
    # The hoisted backward pass is a custom VJP (recurrent.py's run_bwd; output layers on CPU have
    # another): it shows in the model's jaxpr, or the flag did not arrive.
    return jax.grad(loss)(params), 'bwd=run_bwd' in str(jax.make_jaxpr(loss)(params))

  hoisted, with_vjp = grads('hoisted')
  autodiff, without_vjp = grads('scan')
  assert with_vjp and not without_vjp
  chex.assert_trees_all_close(hoisted, autodiff, rtol=2e-5, atol=2e-6)
  assert grads('auto')[1]  # the tests run on CPU, where auto means hoisted
  monkeypatch.setattr(jax, 'default_backend', lambda: 'gpu')
  assert not grads('auto')[1]
