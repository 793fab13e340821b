"""TrainState: everything a run needs to continue exactly, as one pytree."""

from __future__ import annotations

import flax.struct
import jax


class TrainState(flax.struct.PyTreeNode):
  step: jax.Array       # int32 scalar: number of updates applied
  params: dict          # float32 parameters
  opt_state: tuple      # optax state
  rng: jax.Array        # uint32[2] base key; step s uses fold_in(rng, s)


def create(model, tx, rng: jax.Array, example_inputs: tuple) -> TrainState:
  """Initialises parameters (from the model's positional inputs) and optimizer state, purely from `rng`."""
  init_rng, train_rng = jax.random.split(rng)
  params = model.init({'params': init_rng}, *example_inputs, train=False)['params']
  return TrainState(step=jax.numpy.zeros((), jax.numpy.int32), params=params, opt_state=tx.init(params),
                    rng=train_rng)
