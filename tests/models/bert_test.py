"""Tests for seqmodels/models/bert.py: output shapes, padding invariance, the mean-pooled head, and
feature extraction (a frozen pre-trained encoder, only the new head trained) through the training
loop with train.init_from + optim.freeze."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from experiments.configs.base import get_base_config
from seqmodels import errors
from seqmodels import sweep, validation
from seqmodels.models.bert import BERTClassifier, BERTConfig, BERTEncoder, BERTPretrain
from seqmodels.train import loop
from tests.data.bert_test import write_text

CFG = BERTConfig(V=20, L=10, D=16, N=1, H=2, F=32, C=3, dropout=0.0)
TOKENS = jnp.array([[1, 7, 8, 9, 2, 10, 11, 2, 0, 0], [1, 5, 5, 2, 6, 6, 6, 6, 6, 2]])
SEGMENTS = jnp.array([[0, 0, 0, 0, 0, 1, 1, 1, 0, 0], [0, 0, 0, 0, 1, 1, 1, 1, 1, 1]])


def _params(model):
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), TOKENS, SEGMENTS))
  leaves, tree = jax.tree.flatten(shapes)
  rng = np.random.default_rng(0)
  return jax.tree.unflatten(
      tree, [jnp.asarray(rng.normal(size=l.shape) * 0.3, jnp.float32) for l in leaves])


def test_pretraining_and_classifier_heads_share_the_encoder_and_ignore_padding():
  pre, cls = BERTPretrain(CFG), BERTClassifier(CFG)
  pre_params, cls_params = _params(pre), _params(cls)
  assert (jax.tree.map(jnp.shape, pre_params['params']['bert']) ==
          jax.tree.map(jnp.shape, cls_params['params']['bert']))
  mlm, nsp = jax.jit(pre.apply)(pre_params, TOKENS, SEGMENTS)
  chex.assert_shape((mlm, nsp), ((2, 10, 20), (2, 2)))
  apply = jax.jit(cls.apply)
  logits = apply(cls_params, TOKENS, SEGMENTS)
  chex.assert_shape(logits, (2, 3))
  # row 0 without its 2 PADs
  unpadded = jax.jit(cls.apply)(cls_params, TOKENS[:1, :8], SEGMENTS[:1, :8])
  np.testing.assert_allclose(unpadded, logits[:1], atol=1e-5)


def test_mean_pooled_head_reads_the_average_of_the_real_tokens_last_layer():
  cfg = dataclasses.replace(CFG, pool='mean')
  model = BERTClassifier(cfg)
  params = _params(model)
  logits = jax.jit(model.apply)(params, TOKENS, SEGMENTS)
  h_BxTxD, _ = BERTEncoder(cfg).apply({'params': params['params']['bert']}, TOKENS, SEGMENTS)
  mean_BxD = jnp.stack([h_BxTxD[0, :8].mean(0), h_BxTxD[1].mean(0)])  # row 0 has 2 PADs
  head = params['params']['classifier']
  np.testing.assert_allclose(logits, mean_BxD @ head['kernel'] + head['bias'], atol=1e-5)
  c = get_base_config()
  c.model.name, c.model.pool, c.data.name, c.data.source = 'bert', 'max', 'classify', 'shuffled'
  with pytest.raises(errors.ConfigError, match='config.model.pool'):
    validation.validate(c)


def test_reference_sweep_arms_validate_and_fit_the_pretrained_encoder(tmp_path):
  from experiments.configs import bert_finetune, bert_pretrain
  from experiments.sweeps import bert as bert_sweep
  (tmp_path / 'pt' / 'checkpoints').mkdir(parents=True)
  text = write_text(tmp_path / 'text.txt')
  for size in ('small', ''):
    pre, fine = bert_pretrain.get_config(size), bert_finetune.get_config(size)
    for field in ('width', 'layers', 'heads', 'ffn'):
      assert fine.model[field] == pre.model[field]
    assert fine.data.seq_len == pre.data.seq_len and fine.data.path == pre.data.path
    pt = str(tmp_path / 'pt')
    trials = bert_sweep.get_sweep(f'{size},{pt}')
    assert len(trials) == 15 and {t['seed'] for t in trials} == {0, 1, 2}
    assert {(t['model.name'], t['train.init_from'], t['optim.freeze']) for t in trials} == {
        ('bert', pt, ''), ('bert', pt, 'bert'), ('bert', '', 'bert'), ('bert', '', ''),
        ('lstm_classifier', '', '')}
    for t in trials:
      c = sweep.apply(bert_finetune.get_config(size), t)
      c.data.path = text
      validation.validate(c)


def _config(tmp_path, name, steps=3):
  c = get_base_config()
  c.data.name, c.data.path, c.data.seq_len = name, write_text(tmp_path / 'text.txt'), 24
  c.data.source = '' if name == 'mlm' else 'shuffled'
  c.data.data_dir = str(tmp_path / 'tfds')
  c.model.name, c.model.width, c.model.layers, c.model.heads, c.model.ffn = 'bert', 16, 1, 2, 32
  c.optim.warmup_steps = 0
  c.train.num_steps, c.train.batch_size, c.train.eval_batches = steps, 8, 1
  c.train.log_every = c.train.eval_every = c.train.checkpoint_every = steps
  return c


def test_frozen_backbone_fine_tuning_leaves_pretrained_encoder_bit_identical(tmp_path):
  pre = loop.train_and_evaluate(_config(tmp_path, 'mlm'), str(tmp_path / 'pretrain'))
  assert {'mlm_loss', 'nsp_loss', 'mlm_accuracy', 'nsp_accuracy'} <= set(pre['eval'])
  np.testing.assert_allclose(pre['eval']['loss'], pre['eval']['mlm_loss'] + pre['eval']['nsp_loss'],
                             rtol=1e-5)
  c = _config(tmp_path, 'classify')
  c.train.init_from, c.optim.freeze = str(tmp_path / 'pretrain'), 'bert'
  fine = loop.train_and_evaluate(c, str(tmp_path / 'finetune'))
  assert 'accuracy' in fine['eval']
  before = traverse_util.flatten_dict(jax.device_get(pre['state'].params['bert']))
  after = traverse_util.flatten_dict(jax.device_get(fine['state'].params['bert']))
  assert before.keys() == after.keys()
  for k in before:
    np.testing.assert_array_equal(after[k], before[k])
  assert fine['train']['grad_norm'] > 0  # the head did get gradients


def _pretrained_workdir(tmp_path) -> str:
  """A workdir whose checkpoint holds BERTPretrain(CFG)'s parameters, and its config.json's
  sizes."""
  from seqmodels.train import checkpoint
  workdir = str(tmp_path / 'pretrain')
  ckpt = checkpoint.Checkpointer(workdir, every=1, keep=1)
  ckpt.save(1, {'params': _params(BERTPretrain(CFG))['params']}, {})
  ckpt.close()
  (tmp_path / 'pretrain' / 'config.json').write_text(
      '{"model": {"width": 16, "heads": 2, "ffn": 32, "embed": 0, "layers": 1}, '
      '"data": {"seq_len": 10}}')
  return workdir


@pytest.mark.parametrize(
    'changes, frozen, message',
    [({'D': 8}, (), r'\d+ parameter arrays of its checkpoint have other shapes than in this model '
      r'\(bert/blocks_0/attn/out/bias: \(16,\) there, \(8,\) here; .*model\.width=16'),
     ({'L': 12}, ('bert',),
      r'1 parameter array .* \(bert/pos/pos: \(10, 16\) there, \(12, 16\) here\).*seq_len=10'),
     ({'N': 2}, ('bert',),
      r"optim\.freeze='bert' freezes \d+ parameter arrays its checkpoint does not have "
      r'\(bert/blocks_1/.*random initialisation: config\.model\.layers.*layers=1'),])
def test_init_from_refuses_a_backbone_of_other_sizes_and_frozen_parameters_it_lacks(
    tmp_path, changes, frozen, message):
  from seqmodels.train import checkpoint
  workdir = _pretrained_workdir(tmp_path)
  params = _params(BERTClassifier(dataclasses.replace(CFG, **changes)))['params']
  shardings = jax.tree.map(lambda x: x.sharding, params)
  with pytest.raises(errors.CheckpointError, match=r'config\.train\.init_from=.*' + message):
    checkpoint.load_matching_params(workdir, params, shardings, frozen=frozen)


def test_init_from_leaves_trained_parameters_fresh_that_the_checkpoint_lacks(tmp_path):
  from seqmodels.train import checkpoint
  workdir = _pretrained_workdir(tmp_path)
  params = _params(BERTClassifier(CFG))['params']
  shardings = jax.tree.map(lambda x: x.sharding, params)
  _, _, fresh = checkpoint.load_matching_params(workdir, params, shardings, frozen=('bert',))
  assert fresh == ['classifier/bias', 'classifier/kernel']  # the new head: trained, so fine
  # fine-tuned whole: its extra block
  deeper = _params(BERTClassifier(dataclasses.replace(CFG, N=2)))['params']
  _, _, fresh = checkpoint.load_matching_params(workdir, deeper,
                                                jax.tree.map(lambda x: x.sharding, deeper))
  assert any(k.startswith('bert/blocks_1/') for k in fresh)


def test_init_from_a_classifier_of_other_classes_gives_a_fresh_head_and_loads_the_rest(tmp_path):
  from seqmodels.train import checkpoint
  # a fine-tuned run of 2 classes
  ckpt = checkpoint.Checkpointer(str(tmp_path / 'two'), every=1, keep=1)
  ckpt.save(1, {'params': _params(BERTClassifier(dataclasses.replace(CFG, C=2)))['params']}, {})
  ckpt.close()
  params = _params(BERTClassifier(CFG))['params']  # 3 classes
  _, loaded, fresh = checkpoint.load_matching_params(
      str(tmp_path / 'two'), params, jax.tree.map(lambda x: x.sharding, params), frozen=('bert',))
  # [3] and [D, 3] here, [2] and [D, 2] there
  assert fresh == ['classifier/bias', 'classifier/kernel']
  assert (all(k.startswith('bert/') for k in loaded) and
          len(loaded) == len(jax.tree.leaves(params['bert'])))


def test_launch_refuses_freezing_layers_the_init_from_checkpoint_lacks(tmp_path):
  c = _config(tmp_path, 'classify')  # CFG's one layer, as _pretrained_workdir saves
  c.train.init_from, c.optim.freeze = _pretrained_workdir(tmp_path), 'bert'
  validation.validate_devices(c, 8, 1, 'cpu')
  c.model.layers = 2
  with pytest.raises(errors.ConfigError,
                     match=r"config\.train\.init_from=.*config\.optim\.freeze='bert' "
                     r'freezes \d+ parameter arrays .*\(bert/blocks_1/'):
    validation.validate_devices(c, 8, 1, 'cpu')
