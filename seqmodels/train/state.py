"""TrainState: everything a run needs to continue exactly, as one pytree."""

from __future__ import annotations

from typing import Any

import flax.struct
import jax


class TrainState(flax.struct.PyTreeNode):
  step: jax.Array       # int32 scalar: number of updates applied
  params: dict          # float32 parameters
  opt_state: tuple      # optax state
  rng: jax.Array        # uint32[2] base key; step s uses fold_in(rng, s)
  # With train.carry_state: the recurrent state at the end of the last batch, one carry per layer,
  # float32 [global batch, H] each, which the next batch's windows (the streams' next ones) start
  # from. None otherwise.
  carry: Any = None
  # With optim.plateau_decay: float32 scalar, the factor on every update (so on the learning rate)
  # that each evaluation not better than the best so far multiplies by plateau_decay. None
  # otherwise.
  lr_scale: Any = None


def create(model, tx, rng: jax.Array, example_inputs: tuple, carry_rows: int = 0,
           lr_scale: bool = False) -> TrainState:
  """Initialises parameters (from the model's positional inputs) and optimizer state, purely from
  `rng`; `carry_rows` > 0 adds the zero state of that many rows (the global batch) for
  train.carry_state, `lr_scale` an lr_scale of 1 for optim.plateau_decay."""
  init_rng, train_rng = jax.random.split(rng)
  params = model.init({'params': init_rng}, *example_inputs, train=False)['params']
  carry = zero_carry(model, params, carry_rows) if carry_rows else None
  return TrainState(step=jax.numpy.zeros((), jax.numpy.int32), params=params,
                    opt_state=tx.init(params), rng=train_rng, carry=carry,
                    lr_scale=jax.numpy.ones((), jax.numpy.float32) if lr_scale else None)


def zero_carry(model, params, rows: int):
  """The zero recurrent state of a recurrent LM (`carry0=None`, `return_carry=True`) for `rows`
  streams."""
  tokens = jax.numpy.zeros((rows, 1), jax.numpy.int32)
  shapes = jax.eval_shape(lambda p: model.apply({'params': p}, tokens, return_carry=True)[1],
                          params)
  return jax.tree.map(lambda s: jax.numpy.zeros(s.shape, s.dtype), shapes)
