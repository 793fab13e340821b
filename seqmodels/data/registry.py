"""Dataset registry: config.data.name -> its `Dataset` (kind, prepare, load, checks, local files).

Each dataset module ends with its entries (a dict DATASETS); adding a family of datasets is one
module and one line in FAMILIES. Generic code asks an entry (`kind`, `text`, `streams`, ...), never
a name.
"""

import fcntl
import os

from seqmodels.data import bert, builders, core, recall, tasks, text, translation, word2vec
from seqmodels.data.core import Dataset

# in the order the names are listed to the user
FAMILIES = (tasks, text, bert, translation, word2vec, recall)
DATASETS: dict[str, Dataset] = {name: entry for family in FAMILIES
                                for name, entry in family.DATASETS.items()}


def _entry(name: str) -> Dataset:
  if name not in DATASETS:
    raise ValueError(f'Unknown data.name {name!r}.')
  return DATASETS[name]


def kind(name: str) -> str:
  """The task kind of dataset `name`: an objective of seqmodels.train.steps.OBJECTIVES."""
  return _entry(name).kind


def check_name(name: str) -> None:
  """Raises ConfigError unless `name` is a dataset."""
  core.check(name in DATASETS, f'config.data.name={name!r} is not a dataset: choose one of '
             f'{", ".join(DATASETS)}')


def check(config) -> None:
  """Raises ConfigError for the first problem of config.data (translation: of config.decode too)."""
  check_name(config.data.name)
  DATASETS[config.data.name].check(config)


def prepare(data_cfg) -> None:
  """Builds the dataset of `data_cfg` unless already built; safe to call from many processes."""
  directory = core.data_dir(data_cfg)
  os.makedirs(directory, exist_ok=True)
  with open(os.path.join(directory, '.seqmodels_prepare.lock'), 'w') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)  # Released when the file closes.
    _entry(data_cfg.name).prepare(data_cfg, directory)


def load(data_cfg) -> core.Data:
  """Opens the prepared dataset of `data_cfg` (see `prepare`)."""
  return _entry(data_cfg.name).load(data_cfg, core.data_dir(data_cfg))


def local_files(data_cfg) -> list[str]:
  """The local files the dataset of `data_cfg` is made from, absolute, each split's; [] for
  generated and TFDS data. Files that do not exist are left out (the loaders name them)."""
  entry = DATASETS.get(data_cfg.name)
  return entry.local_files(data_cfg) if entry else []


def file_digests(data_cfg) -> dict[str, str]:
  """{file: sha256 of its bytes} of the dataset's `local_files`: what a run was trained on."""
  return {file: builders.file_sha256(file) for file in local_files(data_cfg)}


def tokenizer_name(data_cfg) -> str:
  """data.tokenizer as the dataset uses it ('' for datasets with their own tokens): 'auto' is
  characters for `text` (bytes with data.byte_level) and a unigram sentencepiece model for
  translation. `data_cfg` may be the dict of an older config.json."""
  entry = DATASETS.get(data_cfg.get('name'))
  return entry.tokenizer_name(data_cfg) if entry else ''
