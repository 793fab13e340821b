"""The LM backbone: Transformer++ by default, its config checks in one line each, and training
through the loop like any LM."""

import types

import jax
import jax.numpy as jnp
import pytest
from flax import traverse_util

from experiments.configs.base import get_base_config
from seqmodels import errors, validation
from seqmodels.models import lm, registry
from seqmodels.train import loop


def _config(**model):
  c = get_base_config()
  c.model.name, c.model.width, c.model.layers, c.model.heads = 'lm', 16, 2, 2
  for k, v in model.items():
    c.model[k] = v
  return c


def test_the_default_backbone_is_transformer_plus_plus():
  model = registry.build(_config().model,
                         types.SimpleNamespace(vocab_size=11, seq_len=8, kind='lm', meta={}),
                         jnp.float32)
  assert model.cfg.position == 'rope' and model.cfg.mixer.rope and model.cfg.norm == 'rmsnorm'
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 8), jnp.int32))['params']
  names = traverse_util.flatten_dict(params, sep='/')
  assert not [n for n in names if n.endswith('bias')]  # no biases anywhere
  assert 'pos' not in params  # rotary, not learned positions
  # SwiGLU: gate and up, 8/3 * 16 rounded up to 8
  assert names['block0/mlp/fc/kernel'].shape == (16, 2, 48)
  assert names['block0/norm_mixer/scale'].shape == (16,)
  out = model.apply({'params': params}, jnp.zeros((1, 8), jnp.int32))
  assert out.shape == (1, 8, 11) and out.dtype == jnp.float32


@pytest.mark.parametrize('fields,message', [
    ({'pattern': 'lstm,mamba9'},
     "config.model.pattern='lstm,mamba9' names 'mamba9', which is not a mixer"),
    ({'mixer': 'lstm', 'position': 'rope'},
     'config.model.position=rope rotates the queries and keys of '
     "attention, and model.pattern ['lstm'] has none"),
    ({'heads': 3}, 'config.model.heads=3 does not divide config.model.width=16'),
    ({'norm': 'batchnorm'}, "config.model.norm='batchnorm' is not a norm"),
    ({'mlp': 'swish'}, "config.model.mlp='swish' is not an MLP"),
    ({'window': -1}, 'config.model.window=-1 must be >= 0'),
    ({'scan': 'fast'}, "config.model.scan='fast' is not a way to run a recurrence"),
    ({'mixer': 'mamba2', 'heads': 3}, 'config.model \\(pattern mamba2, width 16, heads 3, expand '
     '2, scan auto\\): mamba2: inner width expand \\* D = 32 does not split into H = 3 heads'),
    ({'mixer': 'rglru', 'scan': 'chunked'}, "rglru has no 'chunked' scan form"),
])
def test_bad_backbone_configs_are_one_line(fields, message):
  c = _config(**fields)
  c.data.name = 'copy'
  with pytest.raises(errors.ConfigError, match=message.replace('[', r'\[').replace(']', r'\]')):
    validation.validate(c)


def test_a_hybrid_backbone_trains_through_the_loop(tmp_path):
  c = _config(pattern='gru,attention', position='learned')
  c.data.name, c.data.min_len, c.data.max_len, c.data.num_symbols = 'copy', 2, 4, 4
  c.data.num_train, c.data.num_validation, c.data.data_dir = 128, 32, str(tmp_path / 'tfds')
  c.optim.lr, c.optim.warmup_steps = 1e-2, 2
  c.train.num_steps, c.train.batch_size, c.train.eval_every, c.train.log_every = 30, 16, 30, 10
  validation.validate(c)
  summary = loop.train_and_evaluate(c, str(tmp_path / 'run'))
  assert summary['status'] == 'done' and summary['model'] == 'lm'
  # it learnt: below a uniform guess over the 8 tokens
  assert summary['eval']['loss'] < 0.9 * jnp.log(8.0)
  assert lm.unbounded(
      registry.build(c.model, types.SimpleNamespace(vocab_size=8, seq_len=10, kind='lm', meta={}),
                     jnp.float32).cfg) is False
