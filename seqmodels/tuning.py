"""Equal tuning: every architecture gets the same search, its best setting is chosen on the
validation split and rerun with more seeds, and the comparison is reported on the test split.

A sweep file returns a `Tuning` instead of a list of trials:

  def get_sweep(arg=''):
    return tuning.Tuning(arms=[{'model.name': 'gpt', ...}, {'model.name': 'lstm', ...}],
                         search=tuning.lr_grid(1e-3, 1e-2, 3), seeds=3)

and `launch.py --sweep=FILE` runs it in two stages under one workdir: every arm at every setting of
the search (seed: the config's), then each arm's best setting (lowest validation loss) with seeds
1 .. seeds - 1. `tuning.json` records the plan; the report (seqmodels/report) chooses again from
the summaries with `choose` and reports test mean +- std over the seeds, with the trials each arm
had.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping, Sequence

import numpy as np

from seqmodels import sweep

Overrides = dict[str, Any]
TUNING_FILE = 'tuning.json'


def lr_grid(lo: float, hi: float, n: int, field: str = 'optim.lr') -> list[Overrides]:
  """`n` learning rates log-spaced from `lo` to `hi`, ends included (3 significant digits)."""
  return sweep.sweep(field, [float(f'{v:.3g}') for v in np.geomspace(lo, hi, n)])


def lr_draws(lo: float, hi: float, k: int, seed: int = 0,
             field: str = 'optim.lr') -> list[Overrides]:
  """`k` learning rates drawn log-uniformly from [lo, hi) with `seed`: the same draw for every arm
  (Bergstra & Bengio 2012's random search, made equal)."""
  draws = np.exp(np.random.default_rng(seed).uniform(math.log(lo), math.log(hi), k))
  return sweep.sweep(field, sorted(float(f'{v:.3g}') for v in draws))


@dataclasses.dataclass(frozen=True)
class Tuning:
  """A comparison of `arms` (each an architecture at its size, as overrides) under one search:
  every arm runs every setting of `search` (e.g. `lr_grid`, or its product with other axes via
  sweep.product), the same steps and data; then `seeds` - 1 more seeds at its best setting."""
  arms: Sequence[Overrides]
  search: Sequence[Overrides]
  seeds: int = 3
  seed_field: str = 'seed'

  def arm_names(self) -> list[str]:
    return [sweep.trial_name(a) for a in self.arms]

  def search_trials(self) -> list[Overrides]:
    """Stage 1: every arm at every setting."""
    return [{**arm, **setting} for arm in self.arms for setting in self.search]

  def reruns(self, chosen: Mapping[str, int]) -> list[Overrides]:
    """Stage 2: each arm's chosen setting (an index into `search`, from `choose`) with the other
    seeds; an arm with none chosen (every trial failed) gets none."""
    return [{**arm, **self.search[chosen[name]], self.seed_field: seed}
            for arm, name in zip(self.arms, self.arm_names()) if chosen.get(name) is not None
            for seed in range(1, self.seeds)]

  def to_json(self) -> dict[str, Any]:
    return {'arms': list(self.arms), 'search': list(self.search), 'seeds': self.seeds,
            'seed_field': self.seed_field, 'select_on': 'validation', 'report_on': 'test'}

  @classmethod
  def from_json(cls, record: Mapping[str, Any]) -> Tuning:
    return cls(record['arms'], record['search'], record['seeds'],
               record.get('seed_field', 'seed'))


def validation_loss(summary: Mapping[str, Any] | None) -> float:
  """The final validation loss of a finished run's summary; inf for none (failed, unfinished or
  non-finite: such a setting is never chosen)."""
  loss = ((summary or {}).get('eval') or {}).get('loss')
  return float(loss) if isinstance(loss, (int, float)) and math.isfinite(loss) else math.inf


def choose(tuning: Tuning, summaries: Mapping[str, Mapping[str, Any] | None]) -> dict[str, int]:
  """{arm name: the index of its setting with the lowest validation loss} from the summaries of
  the search trials by trial name; None for an arm none of whose trials finished. The test split
  plays no part."""
  chosen: dict[str, int | None] = {}
  for arm, name in zip(tuning.arms, tuning.arm_names()):
    losses = [validation_loss(summaries.get(sweep.trial_name({**arm, **s})))
              for s in tuning.search]
    best = int(np.argmin(losses))
    chosen[name] = best if math.isfinite(losses[best]) else None
  return chosen


def steps_for_tokens(tokens: float, tokens_per_step: int) -> int:
  """The steps that train on `tokens` tokens (at least one): a scaling sweep's length at a fixed
  number of tokens per parameter (tokens = ratio x parameters), or at a fixed compute C (tokens =
  C / (6 x parameters), Kaplan et al. 2020's estimate)."""
  return max(1, round(tokens / tokens_per_step))
