"""Tests for seqmodels/models/elmo.py and the 'bilm' objective: no direction sees the token it
predicts, both LM losses fall in training, per-layer features and the scalar mix, and frozen-biLM
classification through the loop."""

import json
import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from experiments.configs import char_elmo
from seqmodels import errors
from seqmodels import validation
from seqmodels.models.elmo import BiLMLogits, ELMo, ELMoClassifier, ELMoConfig, ScalarMix
from seqmodels.train import loop, steps
from tests.data.bert_test import write_text

CFG = ELMoConfig(V=11, H=8, N=2, C=3)
# row 1: 5 real tokens, then padding
TOKENS = jnp.array([[1, 5, 6, 7, 8, 9, 10], [2, 3, 3, 4, 9, 0, 0]])
MASK = jnp.array([[1] * 7, [1] * 5 + [0] * 2], jnp.float32)


def test_forward_never_sees_later_tokens_and_backward_never_earlier_ones():
  model = ELMo(CFG)
  params = jax.jit(model.init)(jax.random.key(0), TOKENS, MASK)
  B, T = TOKENS.shape
  # Rows j * B + b: row b with token j changed; the last B rows unchanged. One forward pass for
  # everything.
  changed = [TOKENS.at[:, j].set((TOKENS[:, j] + 1) % 11) for j in range(T)] + [TOKENS]
  out = jax.jit(model.apply)(params, jnp.concatenate(changed), jnp.tile(MASK, (T + 1, 1)))
  fwd_JxBxTxV, bwd_JxBxTxV = (o.reshape(T + 1, B, T, -1) for o in out)
  same = lambda a, b: np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
  differs = lambda a, b: np.abs(a - b).max() > 1e-3
  for j in range(T):
    for b in range(B):
      fwd, fwd0, bwd, bwd0 = (fwd_JxBxTxV[j, b], fwd_JxBxTxV[T, b], bwd_JxBxTxV[j, b],
                              bwd_JxBxTxV[T, b])
      real = int(MASK[b].sum())
      if j >= real:  # a padded position: no real position's prediction may change
        same(fwd[:real], fwd0[:real])
        same(bwd[:real], bwd0[:real])
        continue
      # forward position t predicts x_{t+1} from x_{<=t}: x_j matters from t = j on
      same(fwd[:j], fwd0[:j])
      assert differs(fwd[j], fwd0[j]) and differs(fwd[real - 1], fwd0[real - 1])
      # backward position t predicts x_{t-1} from x_{>=t}: x_j matters up to t = j
      same(bwd[j + 1:real], bwd0[j + 1:real])
      assert differs(bwd[j], bwd0[j]) and differs(bwd[0], bwd0[0])


def test_bilm_objective_scores_forward_on_the_next_token_and_backward_on_the_previous():
  rng = np.random.default_rng(0)
  window_BxL = rng.integers(0, 11, (3, 9))
  batch = {'inputs': window_BxL[:, :-1], 'targets': window_BxL[:, 1:],
           'weights': np.ones((3, 8), np.float32)}
  tokens_BxL, mask_BxL = steps.BILM.inputs(batch)
  np.testing.assert_array_equal(tokens_BxL, window_BxL)
  np.testing.assert_array_equal(mask_BxL, 1.0)
  onehot = lambda x: 20.0 * jax.nn.one_hot(x, 11)
  nxt = jnp.pad(onehot(window_BxL[:, 1:]), ((0, 0), (0, 1), (0, 0)))   # position t -> x_{t+1}
  prev = jnp.pad(onehot(window_BxL[:, :-1]), ((0, 0), (1, 0), (0, 0)))  # position t -> x_{t-1}
  right = steps.BILM.finalize(steps.BILM.eval_sums(BiLMLogits(nxt, prev), batch))
  assert right['fwd_accuracy'] == right['bwd_accuracy'] == 1.0 and right['loss'] < 1e-6
  swapped = steps.BILM.finalize(steps.BILM.eval_sums(BiLMLogits(prev, nxt), batch))
  assert swapped['fwd_accuracy'] < 0.5 and swapped['bwd_accuracy'] < 0.5
  np.testing.assert_allclose(swapped['loss'], (swapped['fwd_loss'] + swapped['bwd_loss']) / 2,
                             rtol=1e-6)


def test_features_are_n_plus_1_layers_of_2h_and_a_one_hot_mix_returns_its_layer():
  model = ELMo(CFG)
  params = jax.jit(model.init)(jax.random.key(0), TOKENS, MASK)
  layers = jax.jit(lambda p, x, m: model.apply(p, x, m, method=ELMo.features))(params, TOKENS, MASK)
  assert len(layers) == CFG.N + 1
  chex.assert_shape(layers, [(2, 7, 2 * CFG.H)] * (CFG.N + 1))
  embedding = params['params']['elmo']['embed']['embedding'][TOKENS]
  # layer 0: x twice
  np.testing.assert_array_equal(layers[0], jnp.concatenate([embedding, embedding], -1))
  mix = ScalarMix()
  for j in range(CFG.N + 1):
    s = jnp.full(CFG.N + 1, -1e9).at[j].set(0.0)
    np.testing.assert_array_equal(mix.apply({'params': {'s': s, 'gamma': jnp.array(1.0)}}, layers),
                                  layers[j])
  halved = mix.apply({'params': {'s': jnp.zeros(CFG.N + 1), 'gamma': jnp.array(0.5)}}, layers)
  np.testing.assert_allclose(halved, 0.5 * sum(layers) / (CFG.N + 1), rtol=1e-5, atol=1e-6)


def test_classifier_shares_the_bilm_and_reads_only_real_tokens():
  pre, cls = ELMo(CFG), ELMoClassifier(CFG)
  tokens = TOKENS.at[1, 0].set(1)  # classification rows: PAD = 0 only at the end
  pre_shapes = jax.eval_shape(pre.init, jax.random.key(0), tokens)['params']['elmo']
  cls_params = jax.jit(cls.init)(jax.random.key(0), tokens)
  assert (
      jax.tree.map(jnp.shape, pre_shapes) == jax.tree.map(jnp.shape, cls_params['params']['elmo']))
  apply = jax.jit(cls.apply)
  logits = apply(cls_params, tokens)
  chex.assert_shape(logits, (2, 3))
  np.testing.assert_allclose(apply(cls_params, tokens[1:, :5]), logits[1:], atol=1e-5)


def _config(tmp_path, stage: str, steps: int):
  c = char_elmo.get_config('small' + (',classify' if stage == 'classify' else ''))
  c.data.path, c.data.data_dir = write_text(tmp_path / 'text.txt'), str(tmp_path / 'tfds')
  c.data.seq_len = 24
  c.model.width, c.model.layers = 16, 1
  c.optim.warmup_steps = 0
  c.train.num_steps, c.train.batch_size, c.train.eval_batches = steps, 8, 2
  c.train.log_every, c.train.eval_every, c.train.checkpoint_every = 5, steps, steps
  return c


@pytest.fixture(scope='module')
def pretrained(tmp_path_factory):
  tmp_path = tmp_path_factory.mktemp('elmo')
  c = _config(tmp_path, 'pretrain', steps=40)
  c.optim.lr = 1e-2
  validation.validate(c)
  return tmp_path, loop.train_and_evaluate(c, str(tmp_path / 'pretrain'))


def test_pretraining_lowers_both_directions_losses_reported_apart(pretrained):
  tmp_path, summary = pretrained
  train = [json.loads(line)
           for line in (tmp_path / 'pretrain' / 'metrics.jsonl').read_text().splitlines()]
  train = [m for m in train if m.get('split', 'train') == 'train' and 'fwd_loss' in m]
  first, last = train[0], train[-1]
  for k in ('fwd_loss', 'bwd_loss'):
    assert np.isfinite(first[k]) and np.isfinite(last[k])
    assert last[k] < first[k] - 0.5, (k, first[k], last[k])
  ev = summary['eval']
  np.testing.assert_allclose(ev['loss'], (ev['fwd_loss'] + ev['bwd_loss']) / 2, rtol=1e-5)
  np.testing.assert_allclose(ev['fwd_bits_per_token'], ev['fwd_loss'] / np.log(2), rtol=1e-5)
  assert ev['bwd_bits_per_token'] < np.log2(260)  # below uniform over the byte vocabulary


def test_frozen_bilm_classifier_learns_its_head_and_leaves_the_bilm_bit_identical(pretrained):
  tmp_path, pre = pretrained
  c = _config(tmp_path, 'classify', steps=3)
  c.train.init_from = str(tmp_path / 'pretrain')
  c.seed = 1  # a fresh init everywhere else: the biLM must come from the checkpoint
  validation.validate(c)
  fine = loop.train_and_evaluate(c, str(tmp_path / 'classify'))
  assert 'accuracy' in fine['eval']
  before = traverse_util.flatten_dict(jax.device_get(pre['state'].params['elmo']))
  after = traverse_util.flatten_dict(jax.device_get(fine['state'].params['elmo']))
  assert before.keys() == after.keys()
  for k in before:
    np.testing.assert_array_equal(after[k], before[k])
  assert fine['train']['grad_norm'] > 0  # the mix and the head did learn
  assert set(fine['state'].params) == {'elmo', 'mix', 'head', 'classifier'}


@pytest.mark.parametrize('overrides, message', [
    ({'model.cell': 'transformer'}, 'config.model.cell='),
    ({'model.embed': 32}, 'config.model.embed=32 differs from config.model.width=128'),
    ({'data.name': 'copy'}, "config.model.name='elmo' cannot train on config.data.name='copy'"),
    ({'model.name': 'elmo_classifier'},
     "config.model.name='elmo_classifier' cannot train on config.data.name='text'"),
    ({'data.name': 'tiny_shakespeare'},
     "config.data.byte_level=True applies to data.name='text' only"),
])
def test_bad_elmo_configs_fail_with_one_line_naming_the_field(tmp_path, overrides, message):
  c = char_elmo.get_config('small')
  c.data.path = write_text(tmp_path / 'text.txt')
  for k, v in overrides.items():
    section, field = k.split('.')
    c[section][field] = v
  with pytest.raises(errors.ConfigError, match=re.escape(message)):
    validation.validate(c)
