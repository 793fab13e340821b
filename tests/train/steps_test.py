"""Train step: same loss and parameters on 1 device and sharded over 8; FSDP computes the same
function; gradient accumulation over micro-batches takes the step of the whole batch."""

import types

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh

from experiments.configs.base import get_base_config
from seqmodels.data import core
from seqmodels.models import registry
from seqmodels.train import optim, sharding, steps
from seqmodels.train import state as state_lib

V, T, B = 11, 12, 16


def _setup(name, kind='lm'):
  c = get_base_config()
  c.model.name, c.model.width, c.model.layers, c.model.heads = name, 32, 2, 4
  model = registry.build(
      c.model, types.SimpleNamespace(vocab_size=V, seq_len=T, kind=kind, meta={}), jnp.float32)
  tx, schedule = optim.make_optimizer(c.optim, 100)
  rng = np.random.default_rng(0)
  tokens = rng.integers(0, V, (3, B, T + 1)).astype(np.int32)
  batches = [{'inputs': t[:, :-1], 'targets': t[:, 1:], 'weights': np.ones((B, T), np.float32)}
             for t in tokens]
  return model, tx, schedule, batches


def _train(model, tx, schedule, batches, devices, fsdp=False, objective=steps.LM, grad_accum=1,
           metrics=None):
  mesh = Mesh(np.asarray(devices), ('data',))
  inputs = tuple(jnp.zeros((1, T), jnp.int32) for _ in objective.inputs(batches[0]))
  init = lambda r: state_lib.create(model, tx, r, inputs)
  rng = jax.random.PRNGKey(0)
  state_sh = sharding.state_shardings(jax.eval_shape(init, rng), mesh, fsdp, fsdp_min_size=256)
  state = jax.jit(init, out_shardings=state_sh)(rng)
  step = jax.jit(steps.make_train_step(model, tx, schedule, objective, grad_accum),
                 in_shardings=(state_sh, sharding.batch_sharding(mesh)),
                 out_shardings=(state_sh, sharding.replicated(mesh)), donate_argnums=0)
  losses = []
  for b in batches:
    state, m = step(state, sharding.global_batch(b, sharding.batch_sharding(mesh)))
    losses.append(float(m['loss']))
    if metrics is not None:
      metrics.append(jax.device_get(m))
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
  # small: replicated
  assert state.params['ln_f']['scale'].sharding.spec == jax.sharding.PartitionSpec()
  np.testing.assert_allclose(l_rep, l_fsdp, rtol=1e-5, atol=1e-5)
  chex.assert_trees_all_close(p_rep, p_fsdp, rtol=1e-5, atol=1e-5)


def test_loss_is_mean_over_weighted_tokens():
  logits = jnp.log(jnp.array([[[0.5, 0.5], [0.9, 0.1], [0.2, 0.8]]]))
  targets = jnp.array([[0, 0, 0]])
  weights = jnp.array([[1.0, 1.0, 0.0]])
  nll, n, correct = steps.token_cross_entropy(logits, targets, weights)
  np.testing.assert_allclose(nll, -np.log(0.5) - np.log(0.9), rtol=1e-6)
  # argmax picks class 0 at both weighted positions
  assert float(n) == 2.0 and float(correct) == 2.0


def _uneven_weights(batches, seed=1):
  """Rows padded to random lengths (some empty), so micro-batches hold different numbers of
  tokens."""
  rng = np.random.default_rng(seed)
  for b in batches:
    lengths = rng.integers(0, T + 1, B)
    b['weights'] = (np.arange(T) < lengths[:, None]).astype(np.float32)
  return batches


@pytest.mark.parametrize('name,devices,k,fsdp',
                         [('gpt', 8, 2, False), ('gpt', 8, 2, True), ('lstm', 1, 4, False)])
def test_gradient_accumulation_takes_the_step_of_the_whole_batch(name, devices, k, fsdp):
  model, tx, schedule, batches = _setup(name)
  batches = _uneven_weights(batches)[:2]
  whole, micro = [], []
  p1, l1, _ = _train(model, tx, schedule, batches, jax.devices()[:devices], fsdp, metrics=whole)
  pk, lk, _ = _train(model, tx, schedule, batches, jax.devices()[:devices], fsdp, grad_accum=k,
                     metrics=micro)
  np.testing.assert_allclose(lk, l1, rtol=1e-5)
  for a, b in zip(micro, whole):
    # an argmax over the vocabulary: evaluation's (Objective.train_drops)
    assert 'accuracy' not in a
    np.testing.assert_allclose(a['grad_norm'], b['grad_norm'], rtol=1e-4)
  chex.assert_trees_all_close(pk, p1, rtol=1e-4, atol=1e-6)
  # The test can tell: weighting each micro-batch's own mean loss equally gives another gradient.
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, T), jnp.int32))['params']
  b = batches[0]
  loss = lambda p, rows: steps.LM.loss(model.apply({'params': p}, b['inputs'][rows]),
                                       {x: v[rows] for x, v in b.items()})[0]
  naive = jax.jit(jax.grad(lambda p: sum(loss(p, slice(j, None, k)) for j in range(k)) / k))(params)
  full = jax.jit(jax.grad(lambda p: loss(p, slice(None))))(params)
  rel = optim.global_norm(jax.tree.map(jnp.subtract, naive, full)) / optim.global_norm(full)
  assert rel > 1e-2, rel


def test_gradient_accumulation_for_bert_pre_training():
  """MLM + NSP divide by two different counts (chosen tokens, sentence pairs): both stay the whole
  batch's."""
  model, tx, schedule, _ = _setup('bert', kind='mlm')
  rng = np.random.default_rng(2)
  batches = [{'inputs': rng.integers(0, V, (B, T)).astype(np.int32),
              'segments': (np.arange(T) >= T // 2).astype(np.int32)[None].repeat(B, 0),
              'targets': rng.integers(0, V, (B, T)).astype(np.int32),
              'weights': (rng.random((B, T)) < 0.15).astype(np.float32),
              'next': rng.integers(0, 2, B).astype(np.int32),
              'weight': np.ones(B, np.float32)} for _ in range(2)]
  whole, micro = [], []
  p1, l1, _ = _train(model, tx, schedule, batches, jax.devices(), objective=steps.MLM,
                     metrics=whole)
  p2, l2, _ = _train(model, tx, schedule, batches, jax.devices(), objective=steps.MLM, grad_accum=2,
                     metrics=micro)
  np.testing.assert_allclose(l2, l1, rtol=1e-5)
  for a, b in zip(micro, whole):
    for key in ('mlm_loss', 'nsp_loss', 'mlm_accuracy', 'nsp_accuracy'):
      np.testing.assert_allclose(a[key], b[key], rtol=1e-5, err_msg=key)
  chex.assert_trees_all_close(p2, p1, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize('name', ['lstm', 'gru', 'mingru'])
def test_carried_state_evaluates_each_stream_as_one_sequence(name):
  model, _, _, _ = _setup(name)
  rng = np.random.default_rng(3)
  data = core.Data('lm', V, 5,
                   tokens={'validation': rng.integers(0, V, 2 * 23 + 1).astype(np.int32)})
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 5), jnp.int32))['params']
  eval_step = jax.jit(steps.make_eval_step(model, steps.LM, carry_state=True))
  carry, nll, tokens = state_lib.zero_carry(model, params, 2), 0.0, 0.0
  # 5 windows, the last of 2 targets
  for batch in data.stream_batches(batch_size=2, split='validation'):
    sums, carry = eval_step(params, carry, batch)
    nll, tokens = nll + float(sums['nll']), tokens + float(sums['tokens'])
  streams_2xL = data.tokens['validation'][:46].reshape(2, 23)
  whole = steps.token_cross_entropy(model.apply({'params': params}, streams_2xL[:, :-1]),
                                    streams_2xL[:, 1:], np.ones((2, 22), np.float32))
  assert tokens == 44.0
  np.testing.assert_allclose(nll, float(whole[0]), rtol=1e-5)
  # Windows read without the state are another function: the test can tell.
  fresh = sum(float(steps.make_eval_step(model)(params, b)['nll'])
              for b in data.stream_batches(batch_size=2, split='validation'))
  assert abs(fresh - nll) > 1e-3 * nll


def _train_carried(model, tx, schedule, batches, devices, grad_accum=1):
  mesh = Mesh(np.asarray(devices), ('data',))
  batch_sh = sharding.batch_sharding(mesh)
  init = lambda r: state_lib.create(model, tx, r, (jnp.zeros((1, T), jnp.int32),), carry_rows=B)
  rng = jax.random.PRNGKey(0)
  state_sh = sharding.state_shardings(jax.eval_shape(init, rng), mesh, False, 0)
  state_sh = state_sh.replace(carry=jax.tree.map(lambda _: batch_sh, state_sh.carry))
  state = jax.jit(init, out_shardings=state_sh)(rng)
  step = jax.jit(steps.make_train_step(model, tx, schedule, steps.LM, grad_accum, carry_state=True),
                 in_shardings=(state_sh, batch_sh),
                 out_shardings=(state_sh, sharding.replicated(mesh)))
  carries, params = [], [jax.device_get(state.params)]  # params[i]: before step i
  for b in batches:
    state, _ = step(state, sharding.global_batch(b, batch_sh))
    carries.append(jax.device_get(state.carry))
    params.append(jax.device_get(state.params))
  return params, carries


def test_train_step_carries_the_state_and_resets_it_where_told():
  model, tx, schedule, batches = _setup('lstm')
  reset = [np.ones(B, np.float32), np.zeros(B, np.float32), (np.arange(B) % 2).astype(np.float32)]
  batches = [{**b, 'reset': r} for b, r in zip(batches, reset)]
  params, carries = _train_carried(model, tx, schedule, batches, jax.devices()[:1])
  p8, carries8 = _train_carried(model, tx, schedule, batches, jax.devices())
  pk, carries_k = _train_carried(model, tx, schedule, batches, jax.devices()[:2], grad_accum=4)
  chex.assert_trees_all_close(p8[-1], params[-1], rtol=1e-5, atol=1e-6)
  chex.assert_trees_all_close(carries8, carries, rtol=1e-5, atol=1e-6)
  chex.assert_trees_all_close(pk[-1], params[-1], rtol=1e-4, atol=1e-6)
  chex.assert_trees_all_close(carries_k, carries, rtol=1e-4, atol=1e-6)
  # Each carry is the model's final state on the batch (under the parameters before its update),
  # started from the last one where `reset` is 0.
  run = lambda params, b, carry0: model.apply({'params': params}, b['inputs'], carry0=carry0,
                                              return_carry=True)[1]
  chex.assert_trees_all_close(carries[0], run(params[0], batches[0], None), rtol=1e-5, atol=1e-6)
  chex.assert_trees_all_close(carries[1], run(params[1], batches[1], carries[0]), rtol=1e-5,
                              atol=1e-6)
  odd_fresh = jax.tree.map(lambda c: c * (1 - reset[2][:, None]), carries[1])
  chex.assert_trees_all_close(carries[2], run(params[2], batches[2], odd_fresh), rtol=1e-5,
                              atol=1e-6)


def test_lr_scale_scales_the_update_and_the_logged_learning_rate():
  model, _, _, batches = _setup('gru')
  c = get_base_config().optim
  # lr 3e-3 at step 0
  c.name, c.weight_decay, c.clip_norm, c.warmup_steps = 'momentum', 0.01, 1.0, 0
  tx, schedule = optim.make_optimizer(c, 100)
  state = state_lib.create(model, tx, jax.random.PRNGKey(0), (jnp.zeros((1, T), jnp.int32),),
                           lr_scale=True)
  step = jax.jit(steps.make_train_step(model, tx, schedule))
  deltas, lrs = [], []
  for scale in (1.0, 0.25):
    new, m = step(state.replace(lr_scale=jnp.float32(scale)), batches[0])
    deltas.append(jax.tree.map(jnp.subtract, new.params, state.params))
    lrs.append(float(m['lr']))
  # (p + u) - p is u up to the parameters' float32 spacing, ~1e-8 at |p| ~ 0.1: the atol
  chex.assert_trees_all_close(jax.tree.map(lambda d: d * 0.25, deltas[0]), deltas[1], rtol=1e-4,
                              atol=5e-8)
  assert (lrs[0] > 0 and lrs[0] == pytest.approx(float(schedule(0))) and
          lrs[1] == pytest.approx(0.25 * lrs[0]))
  assert optim.global_norm(deltas[1]) > 1e-4
