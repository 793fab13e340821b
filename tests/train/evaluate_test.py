"""Context-controlled evaluation of running text: strided windows against a token-by-token
reference, and the refusals of modes a model or dataset does not have."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from experiments.configs.base import get_base_config
from seqmodels import errors, validation
from seqmodels.data import core
from seqmodels.models import registry
from seqmodels.train import evaluate, sharding, steps

T, V, N = 8, 11, 45


@pytest.fixture(scope='module')
def tiny_lm():
  """A 1-block RoPE attention LM (random weights) and a running text of N tokens."""
  c = get_base_config()
  c.model.name, c.model.width, c.model.layers, c.model.heads = 'lm', 16, 1, 2
  ids_N = np.random.default_rng(0).integers(0, V, N).astype(np.int32)
  data = core.Data('lm', V, T, tokens={'validation': ids_N})
  model = registry.build(c.model, data, jnp.float32)
  params = jax.jit(model.init)(jax.random.PRNGKey(0), jnp.zeros((1, T), jnp.int32))['params']
  return model, params, data


def _reference_nll(model, params, ids_N, contexts) -> np.ndarray:
  """-log p(x_i | the contexts[i - 1] tokens before it) for each target i: the model read from
  x_{i - c} in a window of T tokens (a causal model: what follows x_{i - 1} in the window does not
  change its prediction), all windows in one batch."""
  targets = np.arange(1, len(ids_N))
  starts = targets - np.asarray(contexts)
  windows = ids_N[np.minimum(starts[:, None] + np.arange(T), len(ids_N) - 1)]
  logits = jax.jit(lambda w: model.apply({'params': params}, w, train=False))(windows)
  picked = logits[np.arange(len(targets)), np.asarray(contexts) - 1]
  return np.asarray(optax.softmax_cross_entropy_with_integer_labels(picked, ids_N[targets]))


def test_strided_evaluation_equals_a_token_by_token_reference(tiny_lm):
  model, params, data = tiny_lm
  ids_N = data.tokens['validation']
  step = jax.jit(steps.make_eval_step(model))
  batch_sh = sharding.batch_sharding(sharding.make_mesh())
  run = lambda stride: evaluate.evaluate(step, steps.LM, params, data, 8, batch_sh, None,
                                         'validation', stride=stride)
  # stride 1: every target sees the T tokens before it (fewer in the first window)
  reference = _reference_nll(model, params, ids_N, [min(i, T) for i in range(1, N)])
  np.testing.assert_allclose(run(1)['loss'], reference.mean(), rtol=1e-5)
  # stride T: non-overlapping windows, the tail in a last one ending at the text's end
  tail = (N - 1) // T * T
  contexts = [(i - 1) % T + 1 if i <= tail else i - (N - 1 - T) for i in range(1, N)]
  reference = _reference_nll(model, params, ids_N, contexts)
  np.testing.assert_allclose(run(T)['loss'], reference.mean(), rtol=1e-5)
  # every target is scored once, with at least T - stride tokens of context after the first window
  for stride in (1, 3, T):
    windows = core.strided_windows(ids_N, T, stride)
    batch = windows.gather(np.arange(windows.size))
    assert batch['weights'].sum() == N - 1
    scored = np.argwhere(batch['weights'][1:] > 0)[:, 1]
    assert scored.min() >= T - stride
  # the loss by position sums to the whole windows' loss
  windows = core.strided_windows(ids_N, T, T)
  batch = windows.gather(np.arange(windows.size))
  sums = jax.jit(steps.make_position_step(model))(params, batch)
  assert sums['nll'].shape == (T,) and float(sums['tokens'].sum()) == N - 1
  np.testing.assert_allclose(float(sums['nll'].sum()), float(step(params, batch)['nll']),
                             rtol=1e-5)


@pytest.mark.parametrize('fields, message', [
    ({'model.name': 'gpt', 'train.eval_lengths': '2,4'},
     "config.train.eval_lengths=2,4 evaluates windows longer than training, and model.name='gpt' "
     'cannot read them: GPT learns one position embedding per position up to config.data.seq_len'),
    ({'model.name': 'lm', 'model.position': 'learned', 'train.eval_lengths': '2'},
     'model.position=learned learns one embedding per position'),
    ({'model.name': 'lstm', 'train.eval_mode': 'carried'},
     'config.train.eval_mode=carried reads a split as streams'),
    ({'model.name': 'lstm', 'data.name': 'copy', 'train.eval_mode': 'strided'},
     "config.train.eval_mode=strided reads running text, and config.data.name='copy'"),
    ({'model.name': 'lstm', 'train.eval_lengths': '1,2'}, 'must list multiples of data.seq_len'),
    ({'model.name': 'lstm', 'train.branch_from': '/nonexistent'},
     "continues the stable phase of a wsd run: set config.optim.schedule='wsd'"),
])
def test_modes_a_model_or_dataset_lacks_are_refused_in_one_line(tmp_path, fields, message):
  c = get_base_config()
  c.data.name, c.data.path = 'text', str(tmp_path / 'text.txt')
  (tmp_path / 'text.txt').write_text('hello world, ' * 200)
  for key, value in fields.items():
    section, field = key.split('.')
    c[section][field] = value
  with pytest.raises(errors.ConfigError, match=None) as e:
    validation.validate(c)
  assert message in str(e.value) and '\n' not in str(e.value)
