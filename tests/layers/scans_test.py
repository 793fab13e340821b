"""Every form of a linear recurrence computes the same function: outputs, final state and
gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqmodels.layers import scans


def _naive_attention(q, k, v, log_decay, s0):
  """The definition, a step at a time in numpy float64."""
  B, T, H, K = k.shape
  s = np.array(s0, np.float64)
  out = np.zeros(v.shape, np.float64)
  for t in range(T):
    g = np.exp(np.asarray(log_decay[:, t], np.float64))
    decay = g[..., None, None] if g.ndim == 2 else g[..., None]
    s = decay * s + np.einsum('bhk,bhv->bhkv', k[:, t], v[:, t])
    out[:, t] = np.einsum('bhk,bhkv->bhv', q[:, t], s)
  return out, s


@pytest.mark.parametrize('per_key', [False, True])
def test_chunked_linear_attention_equals_the_recurrence_with_its_gradients(per_key):
  with jax.enable_x64(True):
    rng = np.random.default_rng(0)
    B, T, H, K, V = 2, 11, 2, 3, 4  # T not a multiple of the chunk: padded
    q, k = rng.normal(size=(B, T, H, K)), rng.normal(size=(B, T, H, K))
    v = rng.normal(size=(B, T, H, V))
    g = -rng.uniform(0.01, 2.0, size=(B, T, H, K) if per_key else (B, T, H))
    s0 = rng.normal(size=(B, H, K, V))
    want_o, want_s = _naive_attention(q, k, v, g, s0)
    for form, chunk in [('sequential', 1), ('chunked', 4), ('chunked', 16)]:
      o, sT = scans.linear_attention(q, k, v, g, s0, form=form, chunk=chunk)
      assert o.dtype == jnp.float64
      np.testing.assert_allclose(o, want_o, rtol=1e-10, atol=1e-10)
      np.testing.assert_allclose(sT, want_s, rtol=1e-10, atol=1e-10)
    loss = lambda form: lambda *xs: jnp.sum(
        jnp.sin(scans.linear_attention(*xs, form=form, chunk=4)[0]))
    grads = [jax.grad(loss(form), argnums=(0, 1, 2, 3, 4))(q, k, v, g, s0)
             for form in ('sequential', 'chunked')]
    for a, b in zip(*grads):
      np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)


def test_both_forms_of_the_elementwise_recurrence_agree_with_the_definition():
  with jax.enable_x64(True):
    rng = np.random.default_rng(1)
    # Mamba's [D, N] state
    a, b = rng.uniform(0.5, 1.0, size=(2, 9, 3, 4)), rng.normal(size=(2, 9, 3, 4))
    h0 = rng.normal(size=(2, 3, 4))
    h, want = [], h0
    for t in range(9):
      want = a[:, t] * want + b[:, t]
      h.append(want)
    for form in scans.FORMS:
      hs, hT = scans.linear_recurrence(a, b, h0, form=form)
      np.testing.assert_allclose(hs, np.stack(h, 1), rtol=1e-12)
      np.testing.assert_allclose(hT, want, rtol=1e-12)
    grads = [jax.grad(lambda *x: jnp.sum(scans.linear_recurrence(*x, form=f)[0] ** 2),
                      argnums=(0, 1, 2))(a, b, h0) for f in scans.FORMS]
    for x, y in zip(*grads):
      np.testing.assert_allclose(x, y, rtol=1e-10)


def test_an_unknown_form_is_named():
  with pytest.raises(ValueError, match="unknown scan form 'fast'"):
    scans.linear_recurrence(jnp.ones((1, 2, 1)), jnp.ones((1, 2, 1)), form='fast')
  with pytest.raises(ValueError, match="unknown linear attention form 'fast'"):
    scans.linear_attention(*[jnp.ones((1, 2, 1, 1))] * 3, jnp.zeros((1, 2, 1)), form='fast')
