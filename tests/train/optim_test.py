"""Optimizer: warmup + cosine schedule, clipping, and frozen parameters that never change."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from experiments.configs.base import get_base_config
from seqmodels import errors
from seqmodels.train import optim


def _optim_cfg(**kw) -> ml_collections.ConfigDict:
  o = get_base_config().optim
  for k, v in kw.items():
    o[k] = v
  return o


def test_schedule_warms_up_linearly_then_decays_to_min_ratio():
  s = optim.learning_rate_schedule(_optim_cfg(lr=1.0, warmup_steps=10, min_lr_ratio=0.1), 110)
  np.testing.assert_allclose([s(0), s(5), s(10)], [0.0, 0.5, 1.0], atol=1e-6)
  np.testing.assert_allclose(s(110), 0.1, atol=1e-6)
  assert s(60) < 1.0 and s(60) > 0.1


def test_a_warmup_as_long_as_the_run_is_shortened_with_a_warning(caplog):
  with caplog.at_level('WARNING'):
    s = optim.learning_rate_schedule(_optim_cfg(lr=1.0, warmup_steps=100, min_lr_ratio=0.1), 20)
  assert ('config.optim.warmup_steps=100 is not below the run\'s 20 steps: the learning '
          'rate warms up over 19' in (caplog.text))
  np.testing.assert_allclose(s(19), 1.0, atol=1e-6)


def test_frozen_parameters_stay_bit_identical_and_others_move():
  params = {'encoder': {'w': jnp.ones((3, 3)), 'b': jnp.ones(3)}, 'head': {'w': jnp.ones((3, 2))}}
  tx, _ = optim.make_optimizer(_optim_cfg(freeze='encoder', warmup_steps=0, weight_decay=0.1), 10)
  state = tx.init(params)
  grads = jax.tree.map(jnp.ones_like, params)
  updates, state = tx.update(grads, state, params)
  new = optax.apply_updates(params, updates)
  np.testing.assert_array_equal(new['encoder']['w'], params['encoder']['w'])
  np.testing.assert_array_equal(new['encoder']['b'], params['encoder']['b'])
  assert not np.allclose(new['head']['w'], params['head']['w'])


def test_a_freeze_path_naming_no_parameter_is_an_error_listing_the_top_level_names():
  params = {'encoder': {'w': jnp.ones((3, 3))}, 'head': {'w': jnp.ones((3, 2))}}
  prefixes = optim.frozen_prefixes(_optim_cfg(freeze=' encoder/w, encodr,'))
  assert prefixes == ('encoder/w', 'encodr')
  assert optim.freeze_error(params, prefixes).startswith(
      "config.optim.freeze='encoder/w,encodr': encodr names no parameter of this "
      "model, whose top-level "
      'parameters are encoder, head:')
  assert optim.freeze_error(params, ('encoder/w', 'head')) == ''
  assert optim.freeze_error(params, ('encoder/wx',)) != ''  # a path, not a string prefix


def test_launch_refuses_a_freeze_naming_no_parameter_of_the_configured_model():
  from seqmodels import validation
  c = get_base_config()  # an LSTM LM on the copy task
  c.optim.freeze = 'encoder'
  with pytest.raises(errors.ConfigError, match=r'top-level parameters are embed, head, rnn'):
    validation.validate_devices(c, 1, 1, 'cpu')
  c.optim.freeze = 'rnn'
  validation.validate_devices(c, 1, 1, 'cpu')


def test_clipping_bounds_the_update_of_a_huge_gradient():
  params = {'w': jnp.zeros(4)}
  tx, _ = optim.make_optimizer(
      _optim_cfg(lr=1.0, warmup_steps=0, clip_norm=1.0, b1=0.0, weight_decay=0.0), 10)
  clip_only = optax.clip_by_global_norm(1.0)
  g = {'w': jnp.full(4, 1e6)}
  clipped, _ = clip_only.update(g, clip_only.init(params))
  np.testing.assert_allclose(jnp.linalg.norm(clipped['w']), 1.0, rtol=1e-5)
  updates, _ = tx.update(g, tx.init(params), params)
  assert np.all(np.isfinite(updates['w'])) and np.all(np.abs(updates['w']) <= 1.0 + 1e-5)


def test_clipping_survives_gradients_whose_squares_overflow_float32():
  clip = optim.clip_by_global_norm(1.0)
  g = {'a': jnp.full(3, 1e30, jnp.float32), 'b': jnp.array([-1e30, 0.0], jnp.float32)}
  # sqrt(4 * 1e60): finite, not inf
  np.testing.assert_allclose(optim.global_norm(g), 2e30, rtol=1e-5)
  clipped, _ = clip.update(g, clip.init(g))
  np.testing.assert_allclose(np.linalg.norm(np.concatenate([clipped['a'], clipped['b']])), 1.0,
                             rtol=1e-5)
  small = {'a': jnp.array([0.3, 0.4])}  # norm 0.5 <= 1: unchanged
  np.testing.assert_array_equal(clip.update(small, clip.init(small))[0]['a'], small['a'])
  ref = optax.clip_by_global_norm(1.0)
  g = {'a': jnp.array([3.0, 4.0]), 'b': jnp.array([12.0])}
  np.testing.assert_allclose(clip.update(g, None)[0]['a'], ref.update(g, ref.init(g))[0]['a'],
                             rtol=1e-6)


def _adding_rnn_losses(clip_norms: tuple[float, ...], num_steps: int = 80) -> list[np.ndarray]:
  """Train losses of experiments/configs/exploding_gradients.py:small (tanh RNN, recurrent init x2,
  momentum SGD) on the adding problem for each optim.clip_norm, from the same initial parameters and
  batches."""
  from experiments.configs import exploding_gradients
  from seqmodels.data import tasks
  from seqmodels.models.rnn_regressor import RNNRegressor, RNNRegressorConfig
  from seqmodels.train import state as state_lib
  from seqmodels.train import steps
  c = exploding_gradients.get_config('small')
  T, B = c.data.max_len, c.train.batch_size
  model = RNNRegressor(RNNRegressorConfig(cell='rnn', H=c.model.width,
                                         recurrent_init_scale=c.model.recurrent_init_scale))
  ex = [tasks.adding_example(seed=0, split='train', index=i, min_len=T, max_len=T)
        for i in range(num_steps * B)]
  stack = lambda key, rows: np.stack([e[key] for e in rows])
  batches = [{'values': stack('values', ex[i:i + B]), 'markers': stack('markers', ex[i:i + B]),
              'target': stack('target', ex[i:i + B]), 'mask': np.ones((B, T), np.float32)}
             for i in range(0, len(ex), B)]
  out, state0 = [], None
  for clip_norm in clip_norms:
    c.optim.clip_norm = clip_norm
    tx, schedule = optim.make_optimizer(c.optim, c.train.num_steps)
    if state0 is None:
      state0 = jax.jit(lambda rng: state_lib.create(
          model, tx, rng, steps.REGRESSION.inputs(batches[0])))(jax.random.PRNGKey(c.seed))
    state = state0.replace(opt_state=tx.init(state0.params))
    train_step = jax.jit(steps.make_train_step(model, tx, schedule, steps.REGRESSION))
    losses = []
    for batch in batches:
      state, m = train_step(state, batch)
      losses.append(float(m['loss']))
    out.append(np.array(losses))
  return out


def test_momentum_sgd_on_an_exploding_rnn_diverges_unclipped_and_trains_clipped():
  unclipped, clipped = _adding_rnn_losses((0.0, 1.0))
  # Unclipped, the loss blows up by orders of magnitude within 80 steps: to inf/nan on some CPUs
  # (step ~68), to ~500 on others (the exact float path differs between CPU types); either way far
  # above the clipped run's.
  peak = np.max(np.where(np.isfinite(unclipped), unclipped, np.inf))
  assert unclipped[0] < 3 and peak > 100, unclipped
  # same parameters and batches: bounded
  assert np.all(np.isfinite(clipped)) and clipped.max() < 3, clipped
  assert clipped[-10:].mean() < clipped[:5].mean() / 2  # and learning


def test_optimizer_names_build_their_rule_and_unknown_names_fail_validation():
  params = {'w': jnp.ones((2, 2))}
  g = {'w': jnp.full((2, 2), 2.0)}
  # momentum: v2 = g + b1 * v1 = 3
  for name, b1, second in (('sgd', 0.9, -0.2), ('momentum', 0.5, -0.3)):
    tx, _ = optim.make_optimizer(_optim_cfg(name=name, lr=0.1, warmup_steps=0, min_lr_ratio=1.0,
                                            b1=b1, weight_decay=0.0, clip_norm=0.0),
                                 10)
    s = tx.init(params)
    u1, s = tx.update(g, s, params)
    u2, s = tx.update(g, s, params)
    np.testing.assert_allclose(u1['w'], -0.2, rtol=1e-6)  # -lr * g
    np.testing.assert_allclose(u2['w'], second, rtol=1e-6)
  from seqmodels import validation
  c = get_base_config()
  c.optim.name = 'adam_typo'
  with pytest.raises(errors.ConfigError,
                     match=r"config.optim.name='adam_typo' is not an optimizer: choose one of "
                     r'adamw, sgd, momentum'):
    validation.validate(c)


def test_linear_schedule_falls_from_lr_to_its_floor_at_the_last_step():
  """word2vec's decay (optim.schedule='linear'), after any warm-up."""
  s = optim.learning_rate_schedule(
      _optim_cfg(lr=1.0, warmup_steps=0, min_lr_ratio=0.01, schedule='linear'), 100)
  np.testing.assert_allclose([float(s(t)) for t in (0, 50, 100)], [1.0, 0.505, 0.01], rtol=1e-6)
  s = optim.learning_rate_schedule(
      _optim_cfg(lr=1.0, warmup_steps=10, min_lr_ratio=0.0, schedule='linear'), 110)
  np.testing.assert_allclose([float(s(t)) for t in (5, 10, 60, 110)], [0.5, 1.0, 0.5, 0.0],
                             atol=1e-6)


def test_wsd_warms_up_holds_then_decays_and_a_shorter_budget_shares_its_stable_phase():
  o = _optim_cfg(lr=1.0, warmup_steps=10, min_lr_ratio=0.0, schedule='wsd', decay_fraction=0.2)
  long, short = optim.learning_rate_schedule(o, 100), optim.learning_rate_schedule(o, 50)
  assert optim.decay_start(o, 100) == 80 and optim.decay_start(o, 50) == 40
  np.testing.assert_allclose([long(s) for s in (0, 5, 10, 50, 80, 90, 100)],
                             [0.0, 0.5, 1.0, 1.0, 1.0, 0.5, 0.0], atol=1e-6)
  # the 50-step budget is the 100-step run up to step 40, then its own linear decay
  np.testing.assert_allclose([short(s) for s in range(41)], [long(s) for s in range(41)])
  np.testing.assert_allclose([short(s) for s in (45, 50)], [0.5, 0.0], atol=1e-6)
