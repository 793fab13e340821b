"""Fixtures of tests/data: a small prepared `reverse` dataset, built once a module."""

import ml_collections
import pytest

from seqmodels.data import registry


def _cfg(data_dir, **overrides) -> ml_collections.ConfigDict:
  cfg = dict(name='reverse', min_len=1, max_len=6, num_symbols=5, num_train=40, num_validation=11,
             num_test=5, seed=0, path='', seq_len=8, stride=0, data_dir=str(data_dir))
  return ml_collections.ConfigDict({**cfg, **overrides})


@pytest.fixture(scope='module')
def reverse_cfg(tmp_path_factory):
  cfg = _cfg(tmp_path_factory.mktemp('tfds'))
  registry.prepare(cfg)
  return cfg


@pytest.fixture(scope='module')
def reverse_data(reverse_cfg):
  return registry.load(reverse_cfg)
