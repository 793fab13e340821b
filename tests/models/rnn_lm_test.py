"""Tests for seqmodels/models/rnn_lm.py: decoding a token at a time through the recurrent state
computes the same function as running the model over the whole text, for every cell."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqmodels import decoding
from seqmodels.models import rnn_lm

V, T = 11, 9
TOKENS = jnp.asarray(np.random.default_rng(0).integers(0, V, (3, T)), jnp.int32)


@pytest.mark.parametrize('cell', ['rnn', 'lstm', 'gru', 'mingru', 'minlstm'])
def test_stepping_through_the_state_gives_the_logits_of_the_whole_text(cell):
  model = rnn_lm.RNNLM(rnn_lm.RNNLMConfig(V=V, cell=cell, E=8, H=16, N=2, recurrence='hoisted',
                                          parallel_scan=True))
  params = model.init(jax.random.key(0), TOKENS)['params']
  full_BxTxV = model.apply({'params': params}, TOKENS)
  for P in (1, 4):  # no prefill (the zero state) and a prompt of 4
    step, carry, last_B = rnn_lm.step_function(model, params, TOKENS[:, :P])
    step = jax.jit(step)
    for t in range(T - P + 1):
      logits_BxV, carry = step(TOKENS[:, P - 1 + t] if t else last_B, carry, t)
      np.testing.assert_allclose(logits_BxV, full_BxTxV[:, P - 1 + t], rtol=1e-5, atol=1e-5)


def test_greedy_decoding_follows_the_models_own_argmax():
  model = rnn_lm.RNNLM(rnn_lm.RNNLMConfig(V=V, cell='lstm', E=8, H=16, N=1))
  params = model.init(jax.random.key(1), TOKENS)['params']
  prompt = TOKENS[:, :3]
  out = jax.jit(lambda p, x: decoding.sample(*rnn_lm.step_function(model, p, x), 12,
                                             jax.random.key(0), temperature=0.0))(params, prompt)
  text = jnp.concatenate([prompt, out], axis=1)
  argmax_BxT = model.apply({'params': params}, text).argmax(-1)
  # each token is the argmax given everything before it
  np.testing.assert_array_equal(out, argmax_BxT[:, 2:-1])


@pytest.mark.parametrize('E', [16, 8])  # as wide as the states, and narrower (a projection first)
def test_tied_output_layer_is_the_embedding(E):
  model = rnn_lm.RNNLM(rnn_lm.RNNLMConfig(V=V, cell='lstm', E=E, H=16, N=1, tie=True))
  params = model.init(jax.random.key(2), TOKENS)['params']
  assert ('head' not in params and params['head_bias'].shape == (V,) and
          ('tie_proj' in params) == (E != 16))
  E_VxE = params['embed']['embedding']
  assert float(jnp.abs(E_VxE).max()) <= 0.1  # U(-0.1, 0.1): small initial logits
  _, h_BxTxH = model.apply({'params': params}, TOKENS,
                           capture_intermediates=lambda m, _: m.name == 'rnn',
                           mutable=['intermediates'])
  h_BxTxH = h_BxTxH['intermediates']['rnn']['__call__'][0][0]
  y_BxTxE = (h_BxTxH if E == 16
             else h_BxTxH @ params['tie_proj']['kernel'] + params['tie_proj']['bias'])
  np.testing.assert_allclose(model.apply({'params': params}, TOKENS),
                             y_BxTxE @ E_VxE.T + params['head_bias'], rtol=1e-5, atol=1e-6)
  grads = jax.grad(lambda p: model.apply({'params': p}, TOKENS).sum())(params)
  assert float(jnp.abs(grads['embed']['embedding']).sum()) > 0


def test_the_registry_ties_a_recurrent_lm_from_its_config():
  from experiments.configs.base import get_base_config
  from seqmodels.models import registry
  m = get_base_config().model
  m.width, m.layers, m.tie_embeddings = 16, 1, True
  data = type('Data', (), {'vocab_size': V, 'seq_len': T, 'kind': 'lm', 'meta': {}})()
  params = registry.build(m, data, jnp.float32).init(jax.random.key(0), TOKENS)['params']
  assert 'head' not in params and 'head_bias' in params
