"""What every dataset module builds on: batches, a split's examples, `Data` and its exactness
contract, special tokens, formatting and path helpers, the config checks datasets share, and the
registry's `Dataset` entry.

Training batches follow an exactness contract: the global batch at step s holds rows
[s*B, (s+1)*B) of one seeded stream (every epoch a fresh permutation), and process p of P receives
rows [p*b, (p+1)*b) of it, where B = P*b. So results do not depend on the process count, and
`start_step=k` resumes exactly where step k of an unbroken run would be.

Running text can also be read as B contiguous streams (`stream_batches`), for recurrent LMs that
carry their state from one window to the next (truncated backpropagation through time, as Zaremba et
al. 2014 and PyTorch's word_language_model train): row r of every batch is the next window of stream
r, under the same contract.

Each batch is gathered in one vectorized read of the rows it needs; a grain MapDataset over step
numbers computes the next batches on background threads.
"""

import dataclasses
import os
import stat
import threading
from typing import Any, Callable, Iterator, Mapping, Sequence

import grain
import numpy as np
import tensorflow_datasets as tfds

from seqmodels import errors
from seqmodels.errors import check
from seqmodels.data import builders

# Special tokens of synthetic sequence tasks (and lm1b): symbol s is token s + NUM_SPECIALS.
PAD, BOS, SEP, EOS = 0, 1, 2, 3
NUM_SPECIALS = 4
DEFAULT_DATA_DIR = '~/.cache/seqmodels/tfds'
# Splits up to these sizes are decoded once at load and then batched by numpy indexing: TFDS
# decodes only ~10k examples/s, far too slow to feed small models batch by batch.
MAX_CACHED_EXAMPLES = 200_000
MAX_CACHED_BYTES = 2**31
_READ_OPTIONS = grain.ReadOptions(num_threads=4, prefetch_buffer_size=8)  # Counted in batches.
_ENDLESS = 2**62

Batch = dict[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class Examples:
  """A split's formatted examples: `gather(indices [n])` returns their rows stacked, [n, ...]."""
  size: int
  gather: Callable[[np.ndarray], Batch]


@dataclasses.dataclass(frozen=True)
class Data:
  """A prepared dataset: formatted examples per split, and how to batch and decode them."""

  kind: str  # 'lm' (token batches) or 'regression' (adding problem).
  vocab_size: int  # Token vocabulary for 'lm'; 0 for 'regression'.
  seq_len: int  # T of the [b, T] batch arrays.
  splits: Mapping[str, Examples] = dataclasses.field(default_factory=dict, repr=False)
  decoder: Callable[[Any], str] = dataclasses.field(default=str, repr=False)
  # text -> token ids, where the task has a text form (character/byte LMs; lm1b: a sentence begun
  # with BOS)
  encoder: Callable[[str], np.ndarray] | None = dataclasses.field(default=None, repr=False)
  # Facts about the task a model may need, e.g. {'num_classes': 2} for 'classify'.
  meta: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  # (train batch, global stream rows [b], seed) -> batch: per-row randomness of training batches
  # (BERT's masking), drawn from the row's place in the stream, so it stays exact under resume and
  # any process count.
  augment: Callable[[Batch, np.ndarray, int], Batch] | None = dataclasses.field(
      default=None, repr=False)
  # Running text: each split's token ids int32 [N] in order, which `stream_batches` reads; empty for
  # other data.
  tokens: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict, repr=False)

  def train_batches(self, *, batch_size: int, start_step: int, seed: int, process_index: int = 0,
                    process_count: int = 1) -> Iterator[Batch]:
    """Endless local batches of `batch_size` rows for steps start_step, start_step + 1, ..."""
    examples = self._split('train')
    order = _EpochOrder(examples.size, seed)
    rows = process_index * batch_size + np.arange(batch_size)
    global_batch = batch_size * process_count
    steps = grain.MapDataset.range(start_step, _ENDLESS)
    if self.augment is None:
      return _prefetched(steps.map(lambda step: examples.gather(order(step * global_batch + rows))))
    augment = lambda step: self.augment(examples.gather(order(step * global_batch + rows)),
                                        step * global_batch + rows, seed)
    return _prefetched(steps.map(augment))

  def eval_batches(self, *, batch_size: int, split: str = 'validation', process_index: int = 0,
                   process_count: int = 1, max_batches: int | None = None) -> Iterator[Batch]:
    """One pass over `split` in order, each example once across processes; padding has weight 0.

    Every process yields the same number of batches. Padding rows are all zeros, so their
    `weights` (lm) or `mask` (regression) are 0.
    """
    return examples_batches(self._split(split), batch_size=batch_size,
                            process_index=process_index, process_count=process_count,
                            max_batches=max_batches)

  def stream_batches(self, *, batch_size: int, split: str = 'train', start_step: int = 0,
                     process_index: int = 0, process_count: int = 1,
                     max_batches: int | None = None) -> Iterator[Batch]:
    """Running text as B = batch_size * process_count contiguous streams, one per row of the global
    batch: stream r is tokens [r*L, (r+1)*L) of the split, L = N // B (the last N - B*L tokens are
    left out, as PyTorch's batchify does), and the batch of step s holds the next window of seq_len
    + 1 tokens of every stream, the windows of a stream overlapping by one token, so each token but
    a stream's first is a target once.

    Training ('train') is endless: an epoch is the (L - 1) // seq_len whole windows of every stream,
    in order, and `reset` [b] is 1 at each epoch's first window, where a carried state starts again
    from zero. Other splits are one pass, (L - 1) / seq_len windows rounded up, the last one padded
    with weight 0, to be read with a state carried from the zero state through all of them. Process
    p receives streams [p*b, (p+1)*b).
    """
    if split not in self.tokens:
      raise ValueError(f'the {split!r} split is not running text, which streams need; this dataset '
                       f'has {sorted(self.tokens) or "none"}')
    ids_N, T, streams = self.tokens[split], self.seq_len, batch_size * process_count
    length = len(ids_N) // streams
    train = split == 'train'
    windows = (length - 1) // T if train else -(-(length - 1) // T)
    if windows < 1:
      need = f'one window of config.data.seq_len + 1 = {T + 1} tokens' if train else 'two tokens'
      field = 'config.train.batch_size' if train else 'config.train.eval_batch_size'
      raise errors.DataError(f'streams of the {split} split: its {len(ids_N)} tokens in {streams} '
                             f'streams ({field}) are {length} tokens each, fewer than {need}: '
                             f'lower {field}{"" if train else " (0: batch_size)"}'
                             f'{" or config.data.seq_len" if train else ""}, or use more text')
    starts_b = (process_index * batch_size + np.arange(batch_size)) * length
    offsets_L = np.arange(T + 1)

    def batch_at(step: int) -> Batch:
      k = step % windows
      positions_L = k * T + offsets_L
      batch = format_window(ids_N[starts_b[:, None] + np.minimum(positions_L, length - 1)])
      # eval's last window: past the stream
      batch['weights'] *= (positions_L[1:] < length).astype(np.float32)
      if train:
        batch['reset'] = np.full(batch_size, float(k == 0), np.float32)
      return batch

    steps = grain.MapDataset.range(start_step, _ENDLESS) if train else grain.MapDataset.range(
        min(windows, max_batches or windows))
    return _prefetched(steps.map(batch_at))

  def steps_per_epoch(self, batch_size: int, streams: bool = False) -> float:
    """Training steps of `batch_size` global rows that one epoch takes: the train split's examples
    over the batch (`train_batches`), or with `streams` each stream's whole windows
    (`stream_batches`)."""
    if streams:
      return float((len(self.tokens['train']) // batch_size - 1) // self.seq_len)
    return self._split('train').size / batch_size

  def decode(self, tokens) -> str:
    """Renders a token sequence (or adding-problem values) as text."""
    return self.decoder(tokens)

  def encode(self, text: str) -> np.ndarray:
    """Token ids int32 [n] of `text`; ValueError for a task without a text form or text outside the
    vocabulary."""
    if self.encoder is None:
      raise ValueError(
          'this dataset has no text form to encode: its tokens come from its own examples')
    return np.asarray(self.encoder(text), np.int32)

  def _split(self, split: str) -> Examples:
    if split not in self.splits:
      raise ValueError(f'No split {split!r} in this dataset; it has {sorted(self.splits)}.')
    return self.splits[split]


def examples_batches(examples: Examples, *, batch_size: int, process_index: int = 0,
                     process_count: int = 1, max_batches: int | None = None) -> Iterator[Batch]:
  """One pass over `examples` in order (`Data.eval_batches`), each example once across processes;
  padding rows are all zeros (weight 0)."""
  global_batch = batch_size * process_count
  num_steps = -(-examples.size // global_batch)
  if max_batches is not None:
    num_steps = min(num_steps, max_batches)
  rows = process_index * batch_size + np.arange(batch_size)

  def batch_at(step: int) -> Batch:
    indices = step * global_batch + rows
    batch = examples.gather(np.minimum(indices, examples.size - 1))
    for value in batch.values():
      value[indices >= examples.size] = 0
    return batch

  return _prefetched(grain.MapDataset.range(num_steps).map(batch_at))


def strided_windows(ids_N: np.ndarray, seq_len: int, stride: int) -> Examples:
  """Windows of seq_len + 1 tokens starting every `stride` tokens, each target scored once: a
  window weights only the targets past the previous window's end, so every token but the first
  window's is scored with at least seq_len - stride tokens of context (the standard strided
  perplexity). A last window ending at the text's end scores its tail; stride = seq_len is the
  non-overlapping windows, tail included."""
  T, last = seq_len, len(ids_N) - 1  # targets are tokens 1..last
  starts = list(range(0, max(last - T, 0) + 1, stride))
  if starts[-1] + T < last:
    starts.append(last - T)
  starts_K = np.asarray(starts)
  # targets of window k before this index were scored by window k - 1
  seen_K = np.concatenate([[0], starts_K[:-1] + T - starts_K[1:]])
  offsets_L, positions_T = np.arange(T + 1), np.arange(T)

  def gather(indices: np.ndarray) -> Batch:
    batch = format_window(ids_N[starts_K[indices][:, None] + offsets_L])
    batch['weights'] = (positions_T >= seen_K[indices][:, None]).astype(np.float32)
    return batch

  return Examples(len(starts_K), gather)


class _EpochOrder:
  """Maps row r of the endless training stream to an example: epoch r // n is a new permutation."""

  def __init__(self, size: int, seed: int):
    self._size, self._seed = size, seed
    self._lock = threading.Lock()
    self._permutations: dict[int, np.ndarray] = {}

  def _permutation(self, epoch: int) -> np.ndarray:
    with self._lock:  # Prefetch threads share it; an epoch of lm1b takes seconds to permute.
      if epoch not in self._permutations:
        if len(self._permutations) >= 2:
          self._permutations.pop(min(self._permutations))
        self._permutations[epoch] = np.random.default_rng([self._seed, epoch]).permutation(
            self._size)
      return self._permutations[epoch]

  def __call__(self, rows: np.ndarray) -> np.ndarray:
    epochs, positions = np.divmod(rows, self._size)
    indices = np.empty_like(rows)
    for epoch in np.unique(epochs):
      in_epoch = epochs == epoch
      indices[in_epoch] = self._permutation(int(epoch))[positions[in_epoch]]
    return indices


def _prefetched(batches: grain.MapDataset) -> Iterator[Batch]:
  """Computes the next batches on background threads, in order."""
  yield from batches.to_iter_dataset(_READ_OPTIONS)


def _stack(examples: Sequence[Batch]) -> Batch:
  return {k: np.stack([ex[k] for ex in examples]) for k in examples[0]}



def with_bits_per_char(metrics: dict[str, float], data: Data, split: str) -> dict[str, float]:
  """Adds `bits_per_char` (and `bits_per_byte`) to a split's LM metrics where the data is running
  text: bits/token over the split's characters (UTF-8 bytes) per token, which compares models of
  any tokenization."""
  chars_per_token = data.meta.get('chars_per_token', {}).get(split)
  if not chars_per_token or 'bits_per_token' not in metrics:
    return metrics
  unk = data.meta.get('unk_fraction', {}).get(split)
  bytes_per_token = data.meta.get('bytes_per_token', {}).get(split)
  return {**metrics, 'bits_per_char': metrics['bits_per_token'] / chars_per_token,
          # UTF-8 bytes: comparable across tokenizers and scripts (absent where decoding is lossy)
          **({'bits_per_byte': metrics['bits_per_token'] / bytes_per_token}
             if bytes_per_token else {}),
          # word tokens: the share of the split's tokens that are <unk>, whose bits stand for many
          # words' (so a word model's bits/char is a lower bound where it is large)
          **({'unk_fraction': unk} if unk is not None else {})}


def with_recall_accuracy(metrics: dict[str, float], data: Data) -> dict[str, float]:
  """Adds `recall_accuracy` where the data is a recall task (seqmodels/data/recall.py): its
  weights mark only the positions that must recall a token, so the token accuracy over them is the
  recall accuracy (Zoology's metric)."""
  if not data.meta.get('recall') or 'accuracy' not in metrics:
    return metrics
  return {**metrics, 'recall_accuracy': metrics['accuracy']}


def decoded_examples(source: Sequence, fmt: Callable[[Any], Batch]) -> Examples:
  """Examples of a `tfds.data_source` split, formatted by `fmt`; cached in memory if small."""
  size, chunk = len(source), 4096
  read = lambda indices: _stack([fmt(ex) for ex in source.__getitems__(indices.tolist())])
  first = read(np.arange(min(size, chunk)))
  example_bytes = sum(v.nbytes for v in first.values()) / min(size, chunk)
  if size > MAX_CACHED_EXAMPLES or size * example_bytes > MAX_CACHED_BYTES:
    return Examples(size, read)
  chunks = [first] + [read(np.arange(i, min(i + chunk, size))) for i in range(chunk, size, chunk)]
  arrays = {k: np.concatenate([c[k] for c in chunks]) for k in first}
  return Examples(size, lambda indices: {k: v[indices] for k, v in arrays.items()})



def format_window(tokens_xL: np.ndarray) -> Batch:
  """Windows of T + 1 tokens (any leading axes) as T next-token pairs, all weighted."""
  tokens_xL = np.asarray(tokens_xL, np.int32)
  inputs_xT = tokens_xL[..., :-1]
  return {'inputs': inputs_xT, 'targets': tokens_xL[..., 1:],
          'weights': np.ones(inputs_xT.shape, np.float32)}



def data_dir(data_cfg) -> str:
  """Directory where TFDS datasets are built and read ('' means DEFAULT_DATA_DIR)."""
  return os.path.abspath(os.path.expanduser(data_cfg.data_dir or DEFAULT_DATA_DIR))


# data config fields that name local files or folders
PATH_FIELDS = ('path', 'src_path', 'tgt_path', 'data_dir')


def with_absolute_paths(data_cfg: dict) -> dict:
  """A data config (a dict, as config.json holds it) whose non-empty PATH_FIELDS are absolute: a
  run's record reads from any directory (the analysis commands), not only the one it was launched
  from."""
  return {k: os.path.abspath(os.path.expanduser(v)) if k in PATH_FIELDS and isinstance(v, str) and v
          else v for k, v in data_cfg.items()}




def changed_files(recorded: Mapping[str, str], now: Mapping[str, str]) -> str:
  """'' when the files read now are those recorded (same paths, same bytes), else what differs, in
  words."""
  changed = [f for f in sorted(recorded) if f in now and now[f] != recorded[f]]
  if changed:
    more = f' (and {len(changed) - 1} more)' if len(changed) > 1 else ''
    return f'{changed[0]}{more} changed since the run began'
  if set(recorded) != set(now):
    gone, new = sorted(set(recorded) - set(now)), sorted(set(now) - set(recorded))
    return '; '.join(([f'{", ".join(gone)} it read {"are" if len(gone) > 1 else "is"} gone'] if gone
                      else []) + ([f'it did not read {", ".join(new)}'] if new else []))
  return ''


def sources(name: str, splits, directory: str) -> dict[str, Any]:
  """{split: `tfds.data_source`} of the prepared TFDS dataset `name` ('<builder>/<config>')."""
  return {split: tfds.data_source(name, split=split, data_dir=directory) for split in splits}


def decoded(split_sources: Mapping[str, Any], fmt: Callable) -> dict[str, Examples]:
  """{split: `decoded_examples`} of each source, formatted by `fmt`."""
  return {split: decoded_examples(src, fmt) for split, src in split_sources.items()}


def as_str(text: str | bytes) -> str:
  return text.decode('utf-8') if isinstance(text, bytes) else text


def existing_files(*patterns: str) -> list[str]:
  """The existing files the paths name, absolute and sorted; a '{split}' path names each split's."""
  files = []
  for pattern in patterns:
    pattern = os.path.abspath(os.path.expanduser(pattern))
    files += builders.split_files(pattern).values() if '{split}' in pattern else [pattern]
  return sorted(f for f in set(files) if os.path.isfile(f))


# ---- config checks several datasets share --------------------------------------------------------

_FILE_TYPES = ((stat.S_ISFIFO, 'a FIFO, whose reader waits for a writer'),
               (stat.S_ISSOCK, 'a socket'), (stat.S_ISCHR, 'a character device'),
               (stat.S_ISBLK, 'a block device'))


def not_a_file(path: str) -> str:
  """'' when `path` is a regular file (or a link to one), else what it is, in words: 'does not
  exist', 'is a directory', 'is not a regular file (a FIFO, ...)': data is read from regular files
  only (reading a FIFO would wait for a writer, where a run hashes its files)."""
  try:
    mode = os.stat(path).st_mode
  except FileNotFoundError:
    return 'is a link to a missing file' if os.path.islink(path) else 'does not exist'
  except OSError as e:
    return f'cannot be read ({e.strerror})'
  if stat.S_ISREG(mode):
    return ''
  if stat.S_ISDIR(mode):
    return 'is a directory'
  kind = next((name for test, name in _FILE_TYPES if test(mode)), 'not a file')
  return f'is not a regular file ({kind})'


def check_positive(d, *fields: str) -> None:
  """Data config fields that must be positive integers."""
  for f in fields:
    check(isinstance(d[f], int) and d[f] > 0,
          f'config.data.{f}={d[f]!r} must be a positive integer')


def check_generated(d) -> None:
  """A generated dataset's sizes and its sequence length range."""
  check_positive(d, 'min_len', 'max_len', 'num_symbols', 'num_train', 'num_validation')
  check(d.min_len <= d.max_len, f'config.data.min_len={d.min_len} exceeds '
        f'config.data.max_len={d.max_len}: make min_len <= max_len')


def check_windows(d) -> None:
  """data.seq_len and data.stride of a dataset of windows or cut sequences."""
  check_positive(d, 'seq_len')
  check(d.stride >= 0, f'config.data.stride={d.stride!r} must be >= 0 (0 means seq_len)')


def check_no_byte_level(d) -> None:
  """data.byte_level is off: it is a choice of data.name='text' only."""
  check(not d.byte_level, f'config.data.byte_level=True applies to data.name=\'text\' only '
        f'({d.name!r} has its own tokens): set it False')


def check_no_tokenizer(d) -> None:
  """data.tokenizer is 'auto' for a dataset with its own tokens."""
  check(d.get('tokenizer', 'auto') == 'auto', f'config.data.tokenizer={d.tokenizer!r} '
        f"applies to data.name='text' and translation data ({d.name!r} has its own "
        "tokens): leave it 'auto'")


def check_split_files(field: str, path: str, what: str) -> None:
  """A '{split}' path names existing train and validation files (test optional), under any of their
  names."""
  found = builders.split_files(path)
  for split, names in builders.SPLIT_NAMES.items():  # a split's file there, but not a regular one
    there = [p for n in names
             if os.path.lexists(p := os.path.expanduser(path.replace('{split}', n)))]
    if split not in found and there and not (split == 'test' and os.path.isdir(there[0])):
      check(False, f'config.{field}={path!r}: the {split} file {there[0]} {not_a_file(there[0])}: '
            f'{what}')
  for split in ('train', 'validation'):
    names = '/'.join(builders.SPLIT_NAMES[split])
    check(split in found, f'config.{field}={path!r}: no {split} file '
          f'({path.replace("{split}", names)}): {what} (train and validation needed, test '
          'optional)')
  for split, file in found.items():
    check(os.path.getsize(file) > 0,
          f'config.{field}={path!r}: the {split} file {file} is empty: {what}')


# ---- the registry's entry ------------------------------------------------------------------------

def _no_files(data_cfg) -> list[str]:
  del data_cfg  # generated or TFDS data
  return []


def _own_tokens(data_cfg) -> str:
  del data_cfg  # the dataset's tokens are its own: data.tokenizer does not apply
  return ''


@dataclasses.dataclass(frozen=True)
class Dataset:
  """What seqmodels.data.registry knows of one config.data.name; dataset modules end with theirs."""

  kind: str  # the task its batches are: an objective of seqmodels.train.steps.OBJECTIVES
  # (data_cfg, data directory): builds it unless built (registry.prepare holds the lock)
  prepare: Callable[[Any, str], None]
  load: Callable[[Any, str], Data]  # (data_cfg, data directory) -> the prepared dataset
  # (config) -> None: ConfigError for the first problem of config.data (and config.decode)
  check: Callable[[Any], None]
  local_files: Callable[[Any], list[str]] = _no_files  # data_cfg -> the local files it is made of
  # data_cfg -> data.tokenizer as the dataset applies it; '' where its tokens are its own
  tokenizer_name: Callable[[Any], str] = _own_tokens
  text: bool = False  # natural text where every token is real (a biLM learns from all of them)
  # one running text per split: windows readable as streams (train.carry_state)
  streams: bool = False
