"""How the sequential scans hold a [..., G] array of n gates (G = n * H): whole, or as n [..., H]
parts on CPU.

XLA:CPU compiles a fused step that reads several gate slices of one dynamically sliced [B, G] row
into slow code. A forward LSTM step (H=128, B=16) took 43 us that way and 23 us when the scan read
one [T, B, H] array per gate (2-core Xeon, jax 0.10.2; bench/README.md). So on CPU the scans of
seqmodels/layers/recurrent.py and minrnn.py take and give such arrays one gate at a time, and the
cells take their gates already split. Elsewhere the arrays stay whole, as measured on GPUs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array
Gates = Array | tuple[Array, ...]


def split_on_cpu(n: int) -> bool:
  """Whether scans hold arrays of n gates as n parts: on CPU, for more than one gate."""
  return n > 1 and jax.default_backend() == 'cpu'


def by_gate(x: Array, n: int) -> Gates:
  """[..., n * H] as a tuple of its n gates' [..., H] parts where `split_on_cpu(n)`; else as it
  is."""
  return tuple(jnp.split(x, n, axis=-1)) if split_on_cpu(n) else x


def parts(x: Gates, n: int) -> tuple[Array, ...]:
  """The n gates of a step's [B, n * H] array; already split (a tuple, from `by_gate`), as they
  are."""
  return x if isinstance(x, tuple) else tuple(jnp.split(x, n, axis=-1))


def joined(x: Gates) -> Array:
  """The inverse of `by_gate`: one [..., n * H] array."""
  return jnp.concatenate(x, axis=-1) if isinstance(x, tuple) else x
