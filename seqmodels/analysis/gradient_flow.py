"""Gradient flow through time: ||dL/dh_t|| for every step t (Hochreiter 1991; Bengio et al. 1994).

L is a loss read at one position (the last, usually) and h_t the hidden state at step t. A tanh RNN multiplies the
gradient by the recurrent Jacobian once per step, so ||dL/dh_t|| shrinks (or grows) geometrically with T - t;
attention reaches every position in one step, so it does not.

Everything reduces to one idea: dL/dh_t is the gradient with respect to a zero perturbation added to h_t where h_t
is computed, because L(h + eps) and L(h) have the same derivative at eps = 0. Two ways in:
  * `step_gradient_norms(loss_of_h, h_BxTxH)`: when the model splits as loss = f(h) (the part above h), e.g. the
    Transformer blocks above a layer. Pass zeros and an f that adds its argument at the right place otherwise.
  * `perturbation_gradient_norms(model, variables, loss_fn, *inputs)`: any flax module with flax `perturb` sites.
    RecurrentLayer and MinRNNLayer add theirs, named 'h', *inside* the recurrence, so the gradient includes every
    path through later steps (an RNN's output sequence is the wrong place: the layer above reads h_T only at T).
    Modules without a site (e.g. a Transformer `Block`) get one on their output with `perturb_outputs_of=(Block,)`.
Both return the mean over the batch of per-example norms, float32 [T] (one array per site for the second).
"""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


def _batch_mean_norms(g_BxTx: Array) -> Array:
  """||g[b, t, ...]||_2 averaged over b -> [T]."""
  g_BxTxF = g_BxTx.reshape(g_BxTx.shape[0], g_BxTx.shape[1], -1).astype(jnp.float32)
  return jnp.linalg.norm(g_BxTxF, axis=-1).mean(0)


def step_gradient_norms(loss_of_h: Callable[[Array], Array], h_BxTxH: Array) -> Array:
  """Mean over the batch of ||dL_b/dh_{b,t}|| for every t, float32 [T].

  `loss_of_h` maps h_BxTxH to per-example losses [B] (or their sum); examples must not interact (no batch norm)
  for the norms to be per example.
  """
  g_BxTxH = jax.jit(jax.grad(lambda h: jnp.sum(loss_of_h(h))))(h_BxTxH)
  return _batch_mean_norms(g_BxTxH)


def _perturbing_outputs_of(classes: tuple[type, ...]):
  """A flax method interceptor that adds a perturbation site 'output' to the output of every module of `classes`."""

  def interceptor(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    if classes and context.method_name == '__call__' and isinstance(context.module, classes):
      out = context.module.perturb('output', out)
    return out

  return nn.intercept_methods(interceptor)


def perturbation_gradient_norms(model: nn.Module, variables: dict, loss_fn: Callable[[Any], Array], *inputs: Any,
                                perturb_outputs_of: tuple[type, ...] = (), **apply_kwargs) -> dict[str, Array]:
  """{site path: mean over the batch of ||dL_b/dh_{b,t}||, float32 [T]} for every flax `perturb` site.

  `loss_fn` maps the model's output to per-example losses [B] (or their sum), e.g. the cross-entropy of the last
  position. Sites are the module's own `perturb` calls plus the outputs of modules of `perturb_outputs_of`.
  Paths name the module and site, e.g. 'layer0/h' (RecurrentLayer) or 'block2/output'.
  """
  variables = {k: v for k, v in variables.items() if k != 'perturbations'}
  classes = tuple(perturb_outputs_of)

  def zero_perturbations(variables, inputs):
    with _perturbing_outputs_of(classes):
      return model.apply(variables, *inputs, mutable='perturbations', **apply_kwargs)[1]

  def loss(perturbations, variables, inputs):
    with _perturbing_outputs_of(classes):
      out = model.apply({**variables, 'perturbations': perturbations}, *inputs, **apply_kwargs)
    return jnp.sum(loss_fn(out))

  state = jax.eval_shape(zero_perturbations, variables, inputs)
  if 'perturbations' not in state:
    raise ValueError(f'{type(model).__name__} has no perturbation site: pass perturb_outputs_of=(SomeLayer,) '
                     'naming the layer class whose outputs are the hidden states.')
  zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), state['perturbations'])
  grads = jax.jit(jax.grad(loss))(zeros, variables, inputs)
  flat = jax.tree_util.tree_flatten_with_path(grads)[0]
  return {'/'.join(str(getattr(k, 'key', k)) for k in path): _batch_mean_norms(g) for path, g in flat}


def decay_rate(norms_T: Array | np.ndarray, skip_last: int = 1) -> float:
  """Least-squares slope of log ||dL/dh_t|| per step of distance from the end (< 0: gradients vanish backwards).

  The last `skip_last` steps are left out: there L reads h_t directly, not through the recurrence or attention.
  """
  n = np.asarray(norms_T, np.float64)[:len(norms_T) - skip_last]
  distance = np.arange(len(n))[::-1] + skip_last
  return float(np.polyfit(distance, np.log(np.maximum(n, 1e-300)), 1)[0])
