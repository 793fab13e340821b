"""Sweeps: a grid of config overrides (product, zip, seeds), each trial named from its overrides."""

from __future__ import annotations

import importlib.util
import itertools
import re
from typing import Any, Sequence

import ml_collections

Overrides = dict[str, Any]


def product(*axes: Sequence[Overrides]) -> list[Overrides]:
  """Every combination of one entry from each axis: product([{a:1},{a:2}], [{b:3}]) -> [{a:1,b:3},{a:2,b:3}]."""
  return [dict(itertools.chain.from_iterable(d.items() for d in combo)) for combo in itertools.product(*axes)]


def zip_(*axes: Sequence[Overrides]) -> list[Overrides]:
  """Entries taken together position by position; the axes must have the same length."""
  lengths = {len(a) for a in axes}
  if len(lengths) > 1:
    raise ValueError(f'zip_ needs axes of one length, got lengths {sorted(lengths)}')
  return [dict(itertools.chain.from_iterable(d.items() for d in combo)) for combo in zip(*axes)]


def sweep(field: str, values: Sequence[Any]) -> list[Overrides]:
  """One axis: [{field: v} for v in values]."""
  return [{field: v} for v in values]


def seeds(n: int, field: str = 'seed') -> list[Overrides]:
  return sweep(field, list(range(n)))


def load(path: str) -> list[Overrides]:
  """The trials of a sweep file: the list its get_sweep() returns."""
  spec = importlib.util.spec_from_file_location('seqmodels_sweep_file', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return list(module.get_sweep())


def trial_name(overrides: Overrides) -> str:
  """A directory name from the overrides, e.g. 'model.name=gpt,model.width=64'."""
  name = ','.join(f'{k}={v}' for k, v in overrides.items()) or 'base'
  return re.sub(r'[^A-Za-z0-9._=,+-]', '_', name)


def apply(config: ml_collections.ConfigDict, overrides: Overrides) -> ml_collections.ConfigDict:
  """A copy of `config` with dotted-path overrides applied; unknown fields are an error naming the field."""
  config = ml_collections.ConfigDict(config.to_dict())
  for key, value in overrides.items():
    *parents, leaf = key.split('.')
    node = config
    for p in parents:
      if p not in node:
        raise KeyError(f'sweep override {key!r}: config has no field {p!r}')
      node = node[p]
    if leaf not in node:
      raise KeyError(f'sweep override {key!r}: config has no field {key!r}')
    node[leaf] = value
  return config
