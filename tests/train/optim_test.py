"""Optimizer: warmup + cosine schedule, clipping, and frozen parameters that never change."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from experiments.configs.base import get_base_config
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


def test_clipping_bounds_the_update_of_a_huge_gradient():
  params = {'w': jnp.zeros(4)}
  tx, _ = optim.make_optimizer(_optim_cfg(lr=1.0, warmup_steps=0, clip_norm=1.0, b1=0.0, weight_decay=0.0), 10)
  clip_only = optax.clip_by_global_norm(1.0)
  g = {'w': jnp.full(4, 1e6)}
  clipped, _ = clip_only.update(g, clip_only.init(params))
  np.testing.assert_allclose(jnp.linalg.norm(clipped['w']), 1.0, rtol=1e-5)
  updates, _ = tx.update(g, tx.init(params), params)
  assert np.all(np.isfinite(updates['w'])) and np.all(np.abs(updates['w']) <= 1.0 + 1e-5)


def test_clipping_survives_gradients_whose_squares_overflow_float32():
  clip = optim.clip_by_global_norm(1.0)
  g = {'a': jnp.full(3, 1e30, jnp.float32), 'b': jnp.array([-1e30, 0.0], jnp.float32)}
  np.testing.assert_allclose(optim.global_norm(g), 2e30, rtol=1e-5)  # sqrt(4 * 1e60): finite, not inf
  clipped, _ = clip.update(g, clip.init(g))
  np.testing.assert_allclose(np.linalg.norm(np.concatenate([clipped['a'], clipped['b']])), 1.0, rtol=1e-5)
  small = {'a': jnp.array([0.3, 0.4])}  # norm 0.5 <= 1: unchanged
  np.testing.assert_array_equal(clip.update(small, clip.init(small))[0]['a'], small['a'])
  ref = optax.clip_by_global_norm(1.0)
  g = {'a': jnp.array([3.0, 4.0]), 'b': jnp.array([12.0])}
  np.testing.assert_allclose(clip.update(g, None)[0]['a'], ref.update(g, ref.init(g))[0]['a'], rtol=1e-6)
