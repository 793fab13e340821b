"""Tests for seqmodels/models/gpt.py: causality, KV-cache logits equal full-forward logits, cached generation
equals uncached generation (greedy and top-k/top-p sampling)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqmodels.models import gpt

V, L = 17, 12
MODEL = gpt.GPT(gpt.GPTConfig(V=V, L=L, D=16, N=2, H=2, F=32))


def _params(seed=0):
  shapes = jax.eval_shape(lambda: MODEL.init(jax.random.key(0), jnp.zeros((1, L), jnp.int32)))['params']
  leaves, tree = jax.tree.flatten(shapes)
  rng = np.random.default_rng(seed)
  return jax.tree.unflatten(tree, [jnp.asarray(rng.normal(size=l.shape) * 0.5, jnp.float32) for l in leaves])


PARAMS = _params()
TOKENS = jnp.asarray(np.random.default_rng(1).integers(0, V, (3, L)), jnp.int32)


def test_changing_a_future_token_never_changes_earlier_logits():
  apply = jax.jit(lambda tokens: MODEL.apply({'params': PARAMS}, tokens))
  full = apply(TOKENS)
  for t in (2, 7):
    changed = TOKENS.at[:, t].set((TOKENS[:, t] + 1) % V)
    np.testing.assert_allclose(apply(changed)[:, :t], full[:, :t], atol=1e-5)
    assert not np.allclose(apply(changed)[:, t], full[:, t])


def test_cached_logits_equal_full_forward_logits_after_a_prompt():
  full_BxLxV = jax.jit(lambda p, x: MODEL.apply({'params': p}, x))(PARAMS, TOKENS)
  P = 4
  # Prefill P - 1 tokens, then one token per step (positions P - 1 .. L - 1).
  cache = jax.jit(lambda p, x: gpt.step_function(MODEL, p, x)[1])(PARAMS, TOKENS[:, :P])
  step = jax.jit(lambda p, tok, cache, t: gpt.step_function(MODEL, p, TOKENS[:, :P])[0](tok, cache, t))
  for t in range(L - P + 1):
    logits_BxV, cache = step(PARAMS, TOKENS[:, P - 1 + t], cache, t)
    np.testing.assert_allclose(logits_BxV, full_BxLxV[:, P - 1 + t], atol=1e-4)


def test_generation_with_and_without_kv_cache_gives_identical_tokens():
  sampling = dict(temperature=1.0, top_k=5, top_p=0.9)  # greedy is covered by the logits test above
  prompt = TOKENS[:, :3]
  rng = jax.random.key(7)
  cached = gpt.generate(MODEL, PARAMS, prompt, rng, max_new=L - 2, use_cache=True, **sampling)
  uncached = gpt.generate(MODEL, PARAMS, prompt, rng, max_new=L - 2, use_cache=False, **sampling)
  assert cached.shape == (3, L - 2)
  np.testing.assert_array_equal(cached, uncached)


def test_generation_longer_than_the_context_is_refused():
  with pytest.raises(ValueError, match='exceeds the context'):
    gpt.generate(MODEL, PARAMS, TOKENS[:, :4], jax.random.key(0), max_new=L)
