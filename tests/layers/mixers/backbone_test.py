"""Every mixer of seqmodels/layers/mixers in the LM backbone: causal, and decoding from its cache (a
prefill, then a token at a time) gives the logits of the training form. A new mixer is covered by
registering it."""

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs.base import get_base_config
from seqmodels.layers.mixers import MIXERS
from seqmodels.models import lm, registry

V, T, B = 13, 12, 2


def _model(pattern: str, **fields):
  c = get_base_config()
  c.model.name, c.model.width, c.model.layers, c.model.heads, c.model.pattern = (
      'lm', 16, 2, 2, pattern)
  c.model.d_state, c.model.chunk = 4, 4
  c.model.ssm_groups = 2  # mamba2: a B and C for each of two groups of heads (the default 1 is in
                          # mixers/mamba2_test.py)
  for k, v in fields.items():
    c.model[k] = v
  return registry.build(c.model, types.SimpleNamespace(vocab_size=V, seq_len=T, kind='lm', meta={}),
                        jnp.float32)


@pytest.mark.parametrize('mixer', sorted(MIXERS))
def test_decoding_from_the_cache_gives_the_training_forms_logits_and_the_future_is_unseen(mixer):
  model = _model(f'{mixer},attention')  # a hybrid: the mixer beside attention's KV cache
  tokens = jnp.asarray(np.random.default_rng(0).integers(0, V, (B, T)))
  params = model.init(jax.random.PRNGKey(0), tokens)['params']
  forward = jax.jit(lambda p, x: model.apply({'params': p}, x))  # compiled once for both calls
  full_BxTxV = forward(params, tokens)
  changed = tokens.at[:, -1].set((tokens[:, -1] + 1) % V)
  np.testing.assert_array_equal(forward(params, changed)[:, :-1], full_BxTxV[:, :-1])
  # One compiled step for every position (decode_position traced), one for the prefill.
  decode = jax.jit(lambda p, cache, x, position: model.apply(
      {'params': p, 'cache': cache}, x, decode_position=position, mutable=['cache']))
  P = 5
  logits, mutated = decode(params, lm.init_cache(model, B), tokens[:, :P], jnp.int32(0))
  steps = [logits]
  for t in range(P, T):
    logits, mutated = decode(params, mutated['cache'], tokens[:, t:t + 1], jnp.int32(t))
    steps.append(logits)
  np.testing.assert_allclose(jnp.concatenate(steps, 1), full_BxTxV, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('mixer', sorted(n for n, m in MIXERS.items() if m.recurrent))
def test_a_backbone_of_fixed_size_states_generates_past_its_context(mixer):
  model = _model(mixer)
  # auto: no positions without attention
  assert lm.unbounded(model.cfg) and model.cfg.position == 'none'
  tokens = jnp.asarray(np.random.default_rng(1).integers(0, V, (B, 3)))
  params = model.init(jax.random.PRNGKey(0), tokens)['params']
  out = lm.generate(model, params, tokens, jax.random.PRNGKey(0), max_new=2 * T)  # greedy
  assert out.shape == (B, 2 * T)
  text = jnp.concatenate([tokens, out], 1)
  # whole text, training form
  greedy = jnp.argmax(model.apply({'params': params}, text[:, :-1]), -1)[:, 2:]
  np.testing.assert_array_equal(greedy, out)


def test_state_bytes_grow_with_length_for_attention_only():
  cfg = _model('attention').cfg.mixer
  for name, m in MIXERS.items():
    small, large = m.state_bytes(cfg, 1, 64), m.state_bytes(cfg, 1, 4096)
    assert (large > small) == (not m.recurrent) and small > 0, name
