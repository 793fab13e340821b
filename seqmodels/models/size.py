"""A model's size, counted from its shapes: parameters (embedding apart) and training FLOPs per
token; and the width that reaches a size asked for (config.model.params / flops_per_token).

Embedding parameters are the vocabulary's and the positions' tables (flax `nn.Embed`'s 'embedding'
and the learned 'pos' tables); the rest are non-embedding (an untied output layer among them), the
N of Kaplan et al. 2020. FLOPs per token, forward: 2 per weight of the non-embedding parameters
(every array of rank >= 2 multiplies each token once: dense kernels, depthwise convolutions,
block-diagonal gates) plus what the model's entry adds (`Entry.flops`: attention's 4 T D a block,
a scan's per-step work, a chunked form's matmuls, a tied output layer's 2 V D). Training is 3 x
forward (the backward pass is twice the forward's matmuls), PaLM's 6N + 12 L H Q T (appendix B)
generalised. Elementwise work (norms, activations, gates, the loss, the optimizer) is left out;
tests/models/size_test.py measures against XLA's count of the compiled train step what that leaves.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from seqmodels.errors import ConfigError
from seqmodels.models import registry

EMBEDDING_LEAVES = ('embedding', 'pos')  # nn.Embed's table; learned positions
TARGETS = ('params', 'flops_per_token')  # config.model fields that ask for a size
MAX_WIDTH = 1 << 16


@dataclasses.dataclass(frozen=True)
class Size:
  params_embedding: int
  params_non_embedding: int
  flops_per_token: float  # training: forward and backward, per token of batch_size x seq_len

  def fields(self) -> dict[str, Any]:
    """summary.json's fields."""
    return dataclasses.asdict(self)


def _leaf_name(path) -> str:
  last = path[-1]
  return str(getattr(last, 'key', getattr(last, 'name', last)))


def count(model_cfg, data, params) -> Size:
  """The size of config.model `model_cfg` on `data` (vocab_size, seq_len, kind) with `params` (its
  parameter tree, arrays or shapes)."""
  embedding = non_embedding = weights = 0
  for path, leaf in jax.tree_util.tree_leaves_with_path(params):
    n = int(np.prod(leaf.shape))
    if _leaf_name(path) in EMBEDDING_LEAVES:
      embedding += n
    else:
      non_embedding += n
      weights += n if len(leaf.shape) >= 2 else 0
  forward = 2.0 * weights + registry.MODELS[model_cfg.name].flops(model_cfg, data)
  return Size(embedding, non_embedding, 3.0 * forward)


def abstract_params(model_cfg, data, inputs: tuple) -> Any:
  """The parameter shapes of config.model `model_cfg` on `data`, for the model's `inputs`, traced
  (nothing is computed)."""
  model = registry.build(model_cfg, data, jnp.float32)
  return jax.eval_shape(lambda: model.init({'params': jax.random.PRNGKey(0)}, *inputs,
                                           train=False))['params']


def target(model_cfg) -> tuple[str, float] | None:
  """(field, value) of the size config.model asks for, or None where it sets its width itself."""
  for field in TARGETS:
    if model_cfg.get(field, 0):
      return field, model_cfg[field]
  return None


def solve(config, data, inputs: tuple):
  """(config, record): `config` with model.width chosen to bring the size model.params
  (non-embedding parameters) or model.flops_per_token asks for closest, among the multiples of
  the model's `width_multiple`; config itself and None where neither is set. ConfigError (one line)
  for a target that no width reaches."""
  asked = target(config.model)
  if asked is None:
    return config, None
  field, goal = asked
  m = config.model
  step = registry.MODELS[m.name].width_multiple(m)

  def measure(k: int) -> Size:
    trial = m.copy_and_resolve_references()
    trial.width = k * step
    return count(trial, data, abstract_params(trial, data, inputs))

  value = lambda s: s.params_non_embedding if field == 'params' else s.flops_per_token
  sizes = {1: measure(1)}
  what = f'{m.name} of {m.layers} layers'
  if value(sizes[1]) > goal:
    raise ConfigError(f'config.model.{field}={goal:g} is below the smallest {what} (width {step}: '
                      f'{value(sizes[1]):.4g}): raise it, or lower config.model.layers')
  hi = 2
  while True:  # doubling, then bisection: the size grows with the width
    sizes[hi] = measure(hi)
    if value(sizes[hi]) >= goal:
      break
    if hi * step >= MAX_WIDTH:
      raise ConfigError(f'config.model.{field}={goal:g} is above the {what} of width {hi * step} '
                        f'({value(sizes[hi]):.4g}): lower it, or raise config.model.layers')
    hi *= 2
  lo = hi // 2
  while hi - lo > 1:
    mid = (lo + hi) // 2
    sizes[mid] = measure(mid)
    lo, hi = (mid, hi) if value(sizes[mid]) < goal else (lo, mid)
  k = min((lo, hi), key=lambda j: abs(value(sizes[j]) - goal))
  config = config.copy_and_resolve_references()
  config.model.width = k * step
  got = sizes[k]
  logging.info('config.model.%s=%g: width %d gives %d non-embedding parameters, %.4g FLOPs a '
               'token', field, goal, k * step, got.params_non_embedding, got.flops_per_token)
  return config, {'target': {field: goal}, 'width': k * step, **got.fields()}
