"""Tests for seqmodels/models/gpt.py: causality, KV-cache logits equal full-forward logits, cached
generation equals uncached generation (greedy and top-k/top-p sampling), past the context too, where
the window slides."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqmodels.models import gpt

V, L = 17, 12
MODEL = gpt.GPT(gpt.GPTConfig(V=V, L=L, D=16, N=2, H=2, F=32))


def _params(seed=0):
  shapes = jax.eval_shape(lambda: MODEL.init(jax.random.key(0),
                                             jnp.zeros((1, L), jnp.int32)))['params']
  leaves, tree = jax.tree.flatten(shapes)
  rng = np.random.default_rng(seed)
  return jax.tree.unflatten(
      tree, [jnp.asarray(rng.normal(size=l.shape) * 0.5, jnp.float32) for l in leaves])


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
  step = jax.jit(
      lambda p, tok, cache, t: gpt.step_function(MODEL, p, TOKENS[:, :P])[0](tok, cache, t))
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


def _greedy_by_cropping(prompt, n):
  """nanoGPT's sample.py: every step reruns the model on the last L tokens and takes the last
  position's argmax."""
  apply = jax.jit(lambda tokens: MODEL.apply({'params': PARAMS}, tokens))
  text = np.asarray(prompt)
  for _ in range(n):
    text = np.concatenate([text, np.asarray(apply(text[:, -L:])[:, -1].argmax(-1))[:, None]],
                          axis=1)
  return text[:, prompt.shape[1]:]


@pytest.mark.parametrize('P', [1, 5, L + 3])  # short prompts, and one longer than the context
def test_generation_past_the_context_slides_the_window(P):
  prompt = jnp.asarray(np.random.default_rng(P).integers(0, V, (2, P)), jnp.int32)
  n = 2 * L
  greedy = gpt.generate(MODEL, PARAMS, prompt, jax.random.key(0), max_new=n)
  np.testing.assert_array_equal(greedy, _greedy_by_cropping(prompt, n))
  sampling = dict(temperature=1.0, top_k=5, top_p=0.9)
  cached = gpt.generate(MODEL, PARAMS, prompt, jax.random.key(3), max_new=n, **sampling)
  uncached = gpt.generate(MODEL, PARAMS, prompt, jax.random.key(3), max_new=n, use_cache=False,
                          **sampling)
  np.testing.assert_array_equal(cached, uncached)
  assert cached.shape == (2, n) and not np.array_equal(cached, greedy)


def test_tokens_after_an_eos_are_padding_in_both_parts():
  prompt, n, sampling = TOKENS[:, :2], 2 * L, dict(temperature=1.0)
  # the tokens decoded through the cache; the rest slide the window
  in_context = L - prompt.shape[1] + 1
  free = np.asarray(gpt.generate(MODEL, PARAMS, prompt, jax.random.key(0), max_new=n, **sampling))
  first = lambda v: [np.flatnonzero(row == v)[0] if (row == v).any() else n for row in free]
  # an EOS that ends one row while the cache decodes and another once the window slides
  eos = next(v for v in range(V) if min(first(v)) < in_context <= max(f for f in first(v) if f < n))
  out = np.asarray(gpt.generate(MODEL, PARAMS, prompt, jax.random.key(0), max_new=n, eos_id=eos,
                                **sampling))
  for row_free, row, end in zip(free, out, first(eos)):
    np.testing.assert_array_equal(row[:end + 1], row_free[:end + 1])  # the same draws up to the EOS
    assert np.all(row[end + 1:] == 0)
