"""Recall tasks, the synthetic benchmarks that separate recurrent from attention models:
multi-query associative recall (MQAR, Arora et al. 2023, "Zoology"), selective copying and induction
heads (Gu & Dao 2023, "Mamba", 4.1 and App. E.1).

Every example is `inputs` [T], `targets` [T] and `weights` [T] of next-token prediction where only
the positions that must recall something have weight 1, so the LM objective's accuracy is the recall
accuracy (named so in the metrics). Examples are a deterministic function of (seed, split, index).
Besides train / validation / test at data.seq_len, `data.eval_lens` adds one split of data.num_test
examples per length, `len<n>`, on which the trained model is evaluated after training (length
generalisation: `recall_accuracy_len<n>` in summary.json's eval).
"""

import dataclasses
import json
import zlib

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from seqmodels.data import builders, core
from seqmodels.errors import check

TASKS = ('mqar', 'selective_copying', 'induction_heads')


def split_rng(seed: int, split: str, index: int) -> np.random.Generator:
  """The random generator that owns example `index` of `split` (any split name)."""
  return np.random.default_rng([seed, zlib.crc32(split.encode()), index])


def power_law(space: int, a: float) -> np.ndarray:
  """Zoology's query-gap distribution over gaps 0..space-1: p(g) proportional to (g + 1)^(a - 1)."""
  p = a * np.arange(1, space + 1, dtype=np.float64) ** (a - 1)
  return p / p.sum()


def mqar(rng: np.random.Generator, *, seq_len: int, kv_pairs: int, vocab: int, power_a: float,
         random_non_queries: bool) -> dict[str, np.ndarray]:
  """MQAR as Zoology's `multiquery_ar` generates it: the context k1 v1 ... kp vp (keys from [1,
  V/2), values from [V/2, V), each drawn without replacement), then each key once more as a query at
  context + 2 * gap, the gaps drawn without replacement from `power_law`; the target at a query is
  its value. The other positions are 0 (or random tokens of [0, V) with `random_non_queries`)."""
  keys = rng.choice(np.arange(1, vocab // 2), kv_pairs, replace=False)
  values = rng.choice(np.arange(vocab // 2, vocab), kv_pairs, replace=False)
  context = 2 * kv_pairs
  gaps = rng.choice(seq_len // 2 - kv_pairs, kv_pairs, replace=False,
                    p=power_law(seq_len // 2 - kv_pairs, power_a))
  inputs = np.zeros(seq_len, np.int32)
  inputs[0:context:2], inputs[1:context:2] = keys, values
  queries = context + 2 * gaps
  inputs[queries] = keys
  if random_non_queries:
    filler = inputs == 0
    inputs[filler] = rng.integers(0, vocab, seq_len)[filler]
  targets = np.full(seq_len, -1, np.int32)
  targets[queries] = values
  return {'inputs': inputs, 'targets': targets}


def selective_copying(rng: np.random.Generator, *, seq_len: int, copy_tokens: int,
                      vocab: int) -> dict[str, np.ndarray]:
  """Selective copying (Mamba App. E.1): `copy_tokens` data tokens of [1, V - 1) at random places
  (in order) among noise tokens 0 in the first seq_len - copy_tokens positions, then as many marker
  tokens V - 1, at each of which the next data token in order is the target."""
  region = seq_len - copy_tokens
  data = rng.integers(1, vocab - 1, copy_tokens)
  inputs = np.zeros(seq_len, np.int32)
  inputs[np.sort(rng.choice(region, copy_tokens, replace=False))] = data
  inputs[region:] = vocab - 1
  targets = np.full(seq_len, -1, np.int32)
  targets[region:] = data
  return {'inputs': inputs, 'targets': targets}


def induction_heads(rng: np.random.Generator, *, seq_len: int, vocab: int) -> dict[str, np.ndarray]:
  """Induction heads (Mamba 4.1.2): tokens uniform over [0, V - 1), the special token V - 1 at one
  position p in [0, T - 3] and at the end; at the end the target is the token after it, tokens[p +
  1]."""
  inputs = rng.integers(0, vocab - 1, seq_len).astype(np.int32)
  p = int(rng.integers(0, seq_len - 2))
  inputs[p] = inputs[-1] = vocab - 1
  targets = np.full(seq_len, -1, np.int32)
  targets[-1] = inputs[p + 1]
  return {'inputs': inputs, 'targets': targets}


def example(cfg: 'RecallConfig', split: str, index: int) -> dict[str, np.ndarray]:
  """Example `index` of `split` (its length: seq_len, or n for the split len<n>)."""
  rng = split_rng(cfg.seed, split, index)
  T = int(split[3:]) if split.startswith('len') else cfg.seq_len
  if cfg.task == 'mqar':
    return mqar(rng, seq_len=T, kv_pairs=cfg.kv_pairs, vocab=cfg.num_symbols,
                power_a=cfg.power_a, random_non_queries=cfg.random_non_queries)
  if cfg.task == 'selective_copying':
    return selective_copying(rng, seq_len=T, copy_tokens=cfg.copy_tokens, vocab=cfg.num_symbols)
  return induction_heads(rng, seq_len=T, vocab=cfg.num_symbols)


# ---- TFDS builder --------------------------------------------------------------------------------

@dataclasses.dataclass(eq=False, kw_only=True)
class RecallConfig(tfds.core.BuilderConfig):
  """Parameters of a recall dataset; the fields a task does not read are left at their defaults."""
  task: str
  seq_len: int
  num_symbols: int
  seed: int
  split_sizes: dict[str, int]
  kv_pairs: int = 0
  power_a: float = 0.0
  random_non_queries: bool = False
  copy_tokens: int = 0


def eval_lengths(d) -> tuple[int, ...]:
  """data.eval_lens ('512,1024') as lengths; ConfigError for anything else."""
  text = str(d.get('eval_lens', '') or '')
  parts = [p.strip() for p in text.split(',') if p.strip()]
  check(all(p.isdigit() and int(p) > 0 for p in parts), f'config.data.eval_lens={text!r} must be '
        "positive lengths separated by commas, e.g. '512,1024' ('' for none)")
  return tuple(sorted({int(p) for p in parts}))


def recall_config(d) -> RecallConfig:
  """The builder config of data config `d`, named by every parameter its task reads."""
  task, own = d.name, {}
  if task == 'mqar':
    own = {'kv_pairs': d.kv_pairs, 'power_a': float(d.power_a),
           'random_non_queries': bool(d.random_non_queries)}
  elif task == 'selective_copying':
    own = {'copy_tokens': d.copy_tokens}
  sizes = {'train': d.num_train, 'validation': d.num_validation, 'test': d.num_test,
           **{f'len{n}': d.num_test for n in eval_lengths(d)}}
  tag = ''.join(f'_{k}{v}' for k, v in own.items())
  lens = '-'.join(str(n) for n in eval_lengths(d))
  name = (f'{task}_T{d.seq_len}_V{d.num_symbols}{tag}_n{d.num_train}-{d.num_validation}-'
          f'{d.num_test}{"_eval" + lens if lens else ""}_seed{d.seed}')
  return RecallConfig(name=name, task=task, seq_len=d.seq_len, num_symbols=d.num_symbols,
                      seed=d.seed, split_sizes=sizes, **own)


class Recall(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """int32 `inputs` and `targets` (-1 where nothing is scored) of each example, in index order."""

  VERSION = tfds.core.Version('1.0.0')
  code_path = epath.Path(__file__)

  def _info(self) -> tfds.core.DatasetInfo:
    cfg = self.builder_config
    params = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(RecallConfig)
              if f.name not in ('version', 'release_notes', 'supported_versions', 'tags')}
    seq = tfds.features.Tensor(shape=(None,), dtype=np.int32)
    return tfds.core.DatasetInfo(builder=self, description=json.dumps(params),
                                 features=tfds.features.FeaturesDict({'inputs': seq,
                                                                      'targets': seq}),
                                 disable_shuffling=True)

  def _split_generators(self, dl_manager):
    del dl_manager  # Generated locally.
    sizes = self.builder_config.split_sizes
    return {split: self._generate_examples(split, n) for split, n in sizes.items() if n > 0}

  def _generate_examples(self, split: str, num_examples: int):
    for index in range(num_examples):
      yield index, example(self.builder_config, split, index)


def format_example(inputs_T: np.ndarray, targets_T: np.ndarray) -> core.Batch:
  """An LM row: weight 1 exactly at the scored positions (targets >= 0)."""
  scored_T = targets_T >= 0
  return {'inputs': inputs_T.astype(np.int32), 'targets': np.where(scored_T, targets_T, 0),
          'weights': scored_T.astype(np.float32)}


def prepare(data_cfg, directory: str) -> None:
  """Generates and writes the task's splits unless they are written."""
  builder = Recall(config=recall_config(data_cfg), data_dir=directory, file_format='array_record')
  builders.build_if_needed(builder, f'config.data.name={data_cfg.name}')


def load(data_cfg, directory: str) -> core.Data:
  """The splits as LM rows of the task's own vocabulary (data.num_symbols tokens); meta names the
  length splits (`eval_lengths`: {split: length})."""
  config = recall_config(data_cfg)
  splits = [split for split, n in config.split_sizes.items() if n > 0]
  sources = core.sources(f'{Recall.name}/{config.name}', splits, directory)
  examples = core.decoded(sources, lambda ex: format_example(ex['inputs'], ex['targets']))
  lengths = {f'len{n}': n for n in eval_lengths(data_cfg)}
  return core.Data('lm', data_cfg.num_symbols, data_cfg.seq_len, examples,
                   lambda tokens: ' '.join(str(t) for t in np.asarray(tokens).reshape(-1).tolist()),
                   meta={'recall': True, 'eval_lengths': lengths})


def check_config(config) -> None:
  """The task's sizes fit: Zoology's 4 x kv_pairs <= seq_len, a vocabulary with room for the keys
  and values (or data tokens and specials), and every length in data.eval_lens as well."""
  d = config.data
  core.check_no_byte_level(d)
  core.check_no_tokenizer(d)
  core.check_positive(d, 'seq_len', 'num_symbols', 'num_train', 'num_validation', 'num_test')
  lengths = (d.seq_len, *eval_lengths(d))
  if d.name == 'mqar':
    core.check_positive(d, 'kv_pairs')
    check(0 < d.power_a <= 1, f'config.data.power_a={d.power_a!r} must be in (0, 1] (Zoology: '
          '0.01; 1 is uniform gaps)')
    for T in lengths:
      field = 'seq_len' if T == d.seq_len else f'eval_lens length {T}'
      check(T % 2 == 0 and 4 * d.kv_pairs <= T, f'config.data.{field}: MQAR needs an even length '
            f'of at least 4 x kv_pairs = {4 * d.kv_pairs} (the context and a query slot per pair):'
            ' lower config.data.kv_pairs or lengthen it')
    need = max(2 * d.kv_pairs + 2, max(lengths) + 1)
    check(d.num_symbols >= need, f'config.data.num_symbols={d.num_symbols} is too small for '
          f'{d.kv_pairs} distinct keys in [1, V/2) and values in [V/2, V) (Zoology also asks V > '
          f'seq_len): set num_symbols >= {need} (Zoology: 8192)')
  elif d.name == 'selective_copying':
    core.check_positive(d, 'copy_tokens')
    check(d.num_symbols >= 3, f'config.data.num_symbols={d.num_symbols} leaves no data token '
          'beside the noise (0) and marker (V - 1) tokens: set num_symbols >= 3 (Mamba: 16)')
    check(min(lengths) >= 2 * d.copy_tokens, f'config.data.copy_tokens={d.copy_tokens} does not '
          f'fit length {min(lengths)}: the tokens and their markers need 2 x copy_tokens '
          'positions; lower copy_tokens or lengthen seq_len / eval_lens')
  else:
    check(d.num_symbols >= 3, f'config.data.num_symbols={d.num_symbols} leaves the special token '
          'too few symbols to recall: set num_symbols >= 3 (Mamba: 16)')
    check(min(lengths) >= 3, f'induction heads needs sequences of 3 tokens at least, not '
          f'{min(lengths)}: lengthen config.data.seq_len / eval_lens')


DATASETS = {name: core.Dataset('lm', prepare, load, check_config) for name in TASKS}
