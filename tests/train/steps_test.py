"""Train step: same loss and parameters on 1 device and sharded over 8; FSDP computes the same function."""

import types

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh

from experiments.configs.base import get_base_config
from seqmodels.models import registry
from seqmodels.train import optim, sharding, steps
from seqmodels.train import state as state_lib

V, T, B = 11, 12, 16


def _setup(name):
  c = get_base_config()
  c.model.name, c.model.width, c.model.layers, c.model.heads = name, 32, 2, 4
  model = registry.build(c.model, types.SimpleNamespace(vocab_size=V, seq_len=T), jnp.float32)
  tx, schedule = optim.make_optimizer(c.optim, 100)
  rng = np.random.default_rng(0)
  tokens = rng.integers(0, V, (3, B, T + 1)).astype(np.int32)
  batches = [{'inputs': t[:, :-1], 'targets': t[:, 1:], 'weights': np.ones((B, T), np.float32)} for t in tokens]
  return model, tx, schedule, batches


def _train(model, tx, schedule, batches, devices, fsdp=False):
  mesh = Mesh(np.asarray(devices), ('data',))
  init = lambda r: state_lib.create(model, tx, r, (jnp.zeros((1, T), jnp.int32),))
  rng = jax.random.PRNGKey(0)
  state_sh = sharding.state_shardings(jax.eval_shape(init, rng), mesh, fsdp, fsdp_min_size=256)
  state = jax.jit(init, out_shardings=state_sh)(rng)
  step = jax.jit(steps.make_train_step(model, tx, schedule), in_shardings=(state_sh, sharding.batch_sharding(mesh)),
                 out_shardings=(state_sh, sharding.replicated(mesh)), donate_argnums=0)
  losses = []
  for b in batches:
    state, m = step(state, sharding.global_batch(b, sharding.batch_sharding(mesh)))
    losses.append(float(m['loss']))
  return jax.device_get(state.params), losses, state


@pytest.mark.parametrize('name', ['lstm', 'gpt'])
def test_train_step_same_on_one_and_eight_devices(name):
  assert jax.device_count() == 8
  model, tx, schedule, batches = _setup(name)
  p1, l1, _ = _train(model, tx, schedule, batches, jax.devices()[:1])
  p8, l8, state8 = _train(model, tx, schedule, batches, jax.devices())
  assert len(state8.params['embed']['embedding'].sharding.device_set) == 8
  np.testing.assert_allclose(l1, l8, rtol=1e-5, atol=1e-5)
  chex.assert_trees_all_close(p1, p8, rtol=1e-5, atol=1e-5)


def test_fsdp_shards_large_parameters_and_matches_replicated():
  model, tx, schedule, batches = _setup('gpt')
  p_rep, l_rep, _ = _train(model, tx, schedule, batches, jax.devices())
  p_fsdp, l_fsdp, state = _train(model, tx, schedule, batches, jax.devices(), fsdp=True)
  fc = state.params['block0']['mlp']['fc']['kernel']  # [32, 128]: sharded along its 128 axis
  assert fc.sharding.spec == jax.sharding.PartitionSpec(None, 'data')
  assert fc.addressable_shards[0].data.shape == (32, 16)
  assert state.params['ln_f']['scale'].sharding.spec == jax.sharding.PartitionSpec()  # small: replicated
  np.testing.assert_allclose(l_rep, l_fsdp, rtol=1e-5, atol=1e-5)
  chex.assert_trees_all_close(p_rep, p_fsdp, rtol=1e-5, atol=1e-5)


def test_loss_is_mean_over_weighted_tokens():
  logits = jnp.log(jnp.array([[[0.5, 0.5], [0.9, 0.1], [0.2, 0.8]]]))
  targets = jnp.array([[0, 0, 0]])
  weights = jnp.array([[1.0, 1.0, 0.0]])
  nll, n, correct = steps.token_cross_entropy(logits, targets, weights)
  np.testing.assert_allclose(nll, -np.log(0.5) - np.log(0.9), rtol=1e-6)
  assert float(n) == 2.0 and float(correct) == 2.0  # argmax picks class 0 at both weighted positions
