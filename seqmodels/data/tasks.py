"""Synthetic sequence tasks (copy, reverse, sort, adding problem) as pure numpy generators.

Every example is a deterministic function of (seed, split, index): its random stream is seeded
with `np.random.SeedSequence([seed, split_id, index])`, so any example can be regenerated alone.
"""

from typing import Callable

import numpy as np

SPLITS = ('train', 'validation', 'test')
SEQ_TASKS = ('copy', 'reverse', 'sort')
TASKS = SEQ_TASKS + ('adding',)

_SEQ_TARGET_FNS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    'copy': lambda x_T: x_T.copy(),
    'reverse': lambda x_T: x_T[::-1].copy(),
    'sort': np.sort,
}


def example_rng(seed: int, split: str, index: int) -> np.random.Generator:
  """Returns the random generator that owns example `index` of `split`."""
  return np.random.default_rng([seed, SPLITS.index(split), index])


def _sample_length(rng: np.random.Generator, min_len: int, max_len: int) -> int:
  return int(rng.integers(min_len, max_len + 1))


def seq_example(
    task: str, *, seed: int, split: str, index: int, min_len: int, max_len: int, num_symbols: int
) -> dict[str, np.ndarray]:
  """Copy / reverse / sort: `inputs` uniform symbols in [0, num_symbols), `targets` = task(inputs)."""
  rng = example_rng(seed, split, index)
  length = _sample_length(rng, min_len, max_len)
  inputs_T = rng.integers(0, num_symbols, size=length, dtype=np.int32)
  return {'inputs': inputs_T, 'targets': _SEQ_TARGET_FNS[task](inputs_T).astype(np.int32)}


def adding_example(
    *, seed: int, split: str, index: int, min_len: int, max_len: int
) -> dict[str, np.ndarray]:
  """Adding problem (Hochreiter & Schmidhuber, 1997): sum the two marked values.

  `values` are uniform in [0, 1); `markers` has exactly two ones, the first in the first half
  [0, T//2) and the second in the second half [T//2, T); `target` is the sum of the marked values.
  """
  rng = example_rng(seed, split, index)
  length = _sample_length(rng, min_len, max_len)
  values_T = rng.random(length, dtype=np.float32)
  first = int(rng.integers(0, length // 2))
  second = int(rng.integers(length // 2, length))
  markers_T = np.zeros(length, np.int32)
  markers_T[[first, second]] = 1
  target = np.float32(values_T[first] + values_T[second])
  return {'values': values_T, 'markers': markers_T, 'target': target}


def example(task: str, *, seed: int, split: str, index: int, min_len: int, max_len: int,
            num_symbols: int) -> dict[str, np.ndarray]:
  """Example `index` of `split` for any task in TASKS (`num_symbols` is unused by 'adding')."""
  if task == 'adding':
    return adding_example(seed=seed, split=split, index=index, min_len=min_len, max_len=max_len)
  return seq_example(task, seed=seed, split=split, index=index, min_len=min_len, max_len=max_len,
                     num_symbols=num_symbols)
