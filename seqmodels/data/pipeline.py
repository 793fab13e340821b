"""Input pipeline: TFDS array_record datasets read with `tfds.data_source`, as numpy batches.

Each batch is gathered in one vectorized read of the rows it needs; a grain MapDataset over step
numbers computes the next batches on background threads.

Training batches follow an exactness contract: the global batch at step s holds rows
[s*B, (s+1)*B) of one seeded stream (every epoch a fresh permutation), and process p of P receives
rows [p*b, (p+1)*b) of it, where B = P*b. So results do not depend on the process count, and
`start_step=k` resumes exactly where step k of an unbroken run would be.

Running text can also be read as B contiguous streams (`stream_batches`), for recurrent LMs that carry their
state from one window to the next (truncated backpropagation through time, as Zaremba et al. 2014 and PyTorch's
word_language_model train): row r of every batch is the next window of stream r, under the same contract.
"""

import dataclasses
import fcntl
import os
import threading
from typing import Any, Callable, Iterator, Mapping, Sequence

import grain
import numpy as np
import tensorflow_datasets as tfds

from seqmodels import errors
from seqmodels.data import builders
from seqmodels.data import tasks
from seqmodels.data import tokenizers
from seqmodels.data import translation

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
_SPECIAL_NAMES = {BOS: '<bos>', SEP: '<sep>', EOS: '<eos>'}

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
  # text -> token ids, where the task has a text form (character/byte LMs; lm1b: a sentence begun with BOS)
  encoder: Callable[[str], np.ndarray] | None = dataclasses.field(default=None, repr=False)
  # Facts about the task a model may need, e.g. {'num_classes': 2} for 'classify'.
  meta: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  # (train batch, global stream rows [b], seed) -> batch: per-row randomness of training batches (BERT's
  # masking), drawn from the row's place in the stream, so it stays exact under resume and any process count.
  augment: Callable[[Batch, np.ndarray, int], Batch] | None = dataclasses.field(default=None, repr=False)
  # Running text: each split's token ids int32 [N] in order, which `stream_batches` reads; empty for other data.
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
    examples = self._split(split)
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

  def stream_batches(self, *, batch_size: int, split: str = 'train', start_step: int = 0, process_index: int = 0,
                     process_count: int = 1, max_batches: int | None = None) -> Iterator[Batch]:
    """Running text as B = batch_size * process_count contiguous streams, one per row of the global batch:
    stream r is tokens [r*L, (r+1)*L) of the split, L = N // B (the last N - B*L tokens are left out, as PyTorch's
    batchify does), and the batch of step s holds the next window of seq_len + 1 tokens of every stream, the
    windows of a stream overlapping by one token, so each token but a stream's first is a target once.

    Training ('train') is endless: an epoch is the (L - 1) // seq_len whole windows of every stream, in order, and
    `reset` [b] is 1 at each epoch's first window, where a carried state starts again from zero. Other splits are
    one pass, (L - 1) / seq_len windows rounded up, the last one padded with weight 0, to be read with a state
    carried from the zero state through all of them. Process p receives streams [p*b, (p+1)*b).
    """
    if split not in self.tokens:
      raise ValueError(f'the {split!r} split is not running text, which streams need; this dataset has '
                       f'{sorted(self.tokens) or "none"}')
    ids_N, T, streams = self.tokens[split], self.seq_len, batch_size * process_count
    length = len(ids_N) // streams
    train = split == 'train'
    windows = (length - 1) // T if train else -(-(length - 1) // T)
    if windows < 1:
      need = f'one window of config.data.seq_len + 1 = {T + 1} tokens' if train else 'two tokens'
      field = 'config.train.batch_size' if train else 'config.train.eval_batch_size'
      raise errors.DataError(
          f'streams of the {split} split: its {len(ids_N)} tokens in {streams} streams ({field}) '
          f'are {length} tokens each, fewer than {need}: lower {field}{"" if train else " (0: batch_size)"}'
          f'{" or config.data.seq_len" if train else ""}, or use more text')
    starts_b = (process_index * batch_size + np.arange(batch_size)) * length
    offsets_L = np.arange(T + 1)

    def batch_at(step: int) -> Batch:
      k = step % windows
      positions_L = k * T + offsets_L
      batch = format_window(ids_N[starts_b[:, None] + np.minimum(positions_L, length - 1)])
      batch['weights'] *= (positions_L[1:] < length).astype(np.float32)  # eval's last window: past the stream
      if train:
        batch['reset'] = np.full(batch_size, float(k == 0), np.float32)
      return batch

    steps = grain.MapDataset.range(start_step, _ENDLESS) if train else grain.MapDataset.range(
        min(windows, max_batches or windows))
    return _prefetched(steps.map(batch_at))

  def steps_per_epoch(self, batch_size: int, streams: bool = False) -> float:
    """Training steps of `batch_size` global rows that one epoch takes: the train split's examples over the batch
    (`train_batches`), or with `streams` each stream's whole windows (`stream_batches`)."""
    if streams:
      return float((len(self.tokens['train']) // batch_size - 1) // self.seq_len)
    return self._split('train').size / batch_size

  def decode(self, tokens) -> str:
    """Renders a token sequence (or adding-problem values) as text."""
    return self.decoder(tokens)

  def encode(self, text: str) -> np.ndarray:
    """Token ids int32 [n] of `text`; ValueError for a task without a text form or text outside the vocabulary."""
    if self.encoder is None:
      raise ValueError('this dataset has no text form to encode: its tokens come from its own examples')
    return np.asarray(self.encoder(text), np.int32)

  def _split(self, split: str) -> Examples:
    if split not in self.splits:
      raise ValueError(f'No split {split!r} in this dataset; it has {sorted(self.splits)}.')
    return self.splits[split]


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
  """Adds `bits_per_char` to a split's LM metrics where the data is running text: bits/token over the split's
  characters per token (its text's characters over its tokens), which compares models of any tokenization."""
  chars_per_token = data.meta.get('chars_per_token', {}).get(split)
  if not chars_per_token or 'bits_per_token' not in metrics:
    return metrics
  unk = data.meta.get('unk_fraction', {}).get(split)
  return {**metrics, 'bits_per_char': metrics['bits_per_token'] / chars_per_token,
          # word tokens: the share of the split's tokens that are <unk>, whose bits stand for many words' (so a word
          # model's bits/char is a lower bound where it is large)
          **({'unk_fraction': unk} if unk is not None else {})}


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


def format_seq_example(inputs_S: np.ndarray, targets_S: np.ndarray, max_len: int) -> Batch:
  """`[BOS] inputs [SEP] targets [EOS]` padded to 2*max_len + 3, shifted into next-token pairs.

  Weights are 1 exactly where the next token is a target symbol or EOS.
  """
  n, m = len(inputs_S), len(targets_S)
  seq_L = np.full(2 * max_len + 3, PAD, np.int32)
  seq_L[0] = BOS
  seq_L[1:1 + n] = inputs_S + NUM_SPECIALS
  seq_L[1 + n] = SEP
  seq_L[2 + n:2 + n + m] = targets_S + NUM_SPECIALS
  seq_L[2 + n + m] = EOS
  weights_T = np.zeros(2 * max_len + 2, np.float32)
  weights_T[n + 1:n + m + 2] = 1.0  # Predicting seq[n + 2 : n + m + 3]: the targets and EOS.
  return {'inputs': seq_L[:-1], 'targets': seq_L[1:], 'weights': weights_T}


def format_adding_example(values_S: np.ndarray, markers_S: np.ndarray, target: np.ndarray,
                          max_len: int) -> Batch:
  """Pads one adding-problem example to max_len; `mask` marks the real time steps."""
  n = len(values_S)
  values_T, markers_T, mask_T = (np.zeros(max_len, np.float32) for _ in range(3))
  values_T[:n], markers_T[:n], mask_T[:n] = values_S, markers_S, 1.0
  return {'values': values_T, 'markers': markers_T, 'target': np.asarray(target, np.float32),
          'mask': mask_T}


def format_window(tokens_xL: np.ndarray) -> Batch:
  """Windows of T + 1 tokens (any leading axes) as T next-token pairs, all weighted."""
  tokens_xL = np.asarray(tokens_xL, np.int32)
  inputs_xT = tokens_xL[..., :-1]
  return {'inputs': inputs_xT, 'targets': tokens_xL[..., 1:],
          'weights': np.ones(inputs_xT.shape, np.float32)}


def format_sentence(text: str | bytes, seq_len: int) -> Batch:
  """`[BOS] utf-8 bytes [EOS]` cut or PAD-padded to seq_len + 1 tokens; padding has weight 0."""
  ids = tokenizers.ByteTokenizer(offset=NUM_SPECIALS).encode(text)
  tokens_L = np.full(seq_len + 1, PAD, np.int32)
  sentence = np.concatenate([[BOS], ids, [EOS]])[:seq_len + 1]
  tokens_L[:len(sentence)] = sentence
  example = format_window(tokens_L)
  example['weights'] = (example['targets'] != PAD).astype(np.float32)
  return example


def render_symbols(tokens) -> str:
  """Synthetic-task tokens as space-separated symbols and <bos>/<sep>/<eos>, PAD dropped."""
  tokens = np.asarray(tokens).reshape(-1)
  return ' '.join(_SPECIAL_NAMES.get(t, str(t - NUM_SPECIALS)) for t in tokens.tolist()
                  if t != PAD)


def render_values(values) -> str:
  return ' '.join(f'{v:.3f}' for v in np.asarray(values, np.float32).reshape(-1).tolist())


def data_dir(data_cfg) -> str:
  """Directory where TFDS datasets are built and read ('' means DEFAULT_DATA_DIR)."""
  return os.path.abspath(os.path.expanduser(data_cfg.data_dir or DEFAULT_DATA_DIR))


PATH_FIELDS = ('path', 'src_path', 'tgt_path', 'data_dir')  # data config fields that name local files or folders


def with_absolute_paths(data_cfg: dict) -> dict:
  """A data config (a dict, as config.json holds it) whose non-empty PATH_FIELDS are absolute: a run's record reads
  from any directory (the analysis commands), not only the one it was launched from."""
  return {k: os.path.abspath(os.path.expanduser(v)) if k in PATH_FIELDS and isinstance(v, str) and v else v
          for k, v in data_cfg.items()}


def local_files(data_cfg) -> list[str]:
  """The local files the dataset of `data_cfg` is made from, absolute, each split's; [] for generated and TFDS
  data. Files that do not exist are left out (the loaders name them)."""
  if data_cfg.name == 'text' or (data_cfg.name in bert_data.DATASETS and data_cfg.get('source', '') in
                                 ('', *bert_data.CORRUPTIONS)):
    patterns = [data_cfg.path]
  elif data_cfg.name == translation.FILES:
    patterns = [data_cfg.src_path, data_cfg.tgt_path]
  else:
    return []
  files = []
  for pattern in patterns:
    pattern = os.path.abspath(os.path.expanduser(pattern))
    files += builders.split_files(pattern).values() if '{split}' in pattern else [pattern]
  return sorted(f for f in set(files) if os.path.isfile(f))


def file_digests(data_cfg) -> dict[str, str]:
  """{file: sha256 of its bytes} of the dataset's `local_files`: what a run was trained on."""
  return {file: builders.file_sha256(file) for file in local_files(data_cfg)}


def changed_files(recorded: Mapping[str, str], now: Mapping[str, str]) -> str:
  """'' when the files read now are those recorded (same paths, same bytes), else what differs, in words."""
  changed = [f for f in sorted(recorded) if f in now and now[f] != recorded[f]]
  if changed:
    more = f' (and {len(changed) - 1} more)' if len(changed) > 1 else ''
    return f'{changed[0]}{more} changed since the run began'
  if set(recorded) != set(now):
    gone, new = sorted(set(recorded) - set(now)), sorted(set(now) - set(recorded))
    return '; '.join(([f'{", ".join(gone)} it read {"are" if len(gone) > 1 else "is"} gone'] if gone else []) +
                     ([f'it did not read {", ".join(new)}'] if new else []))
  return ''


def _synthetic_config(data_cfg) -> tasks.SyntheticConfig:
  return tasks.synthetic_config(
      data_cfg.name, min_len=data_cfg.min_len, max_len=data_cfg.max_len,
      num_symbols=data_cfg.num_symbols, seed=data_cfg.seed, num_train=data_cfg.num_train,
      num_validation=data_cfg.num_validation, num_test=data_cfg.num_test)


def tokenizer_name(data_cfg) -> str:
  """data.tokenizer as the dataset uses it ('' for datasets with their own tokens): 'auto' is characters for
  `text` (bytes with data.byte_level) and a unigram sentencepiece model for translation.

  A config.json written before `text` took a tokenizer (it has no data.min_count) holds the translation default
  'unigram' there; its text was characters.
  """
  name = data_cfg.get('tokenizer', 'auto')
  if data_cfg.get('name') == 'text':
    legacy = name == 'unigram' and 'min_count' not in data_cfg
    return ('byte' if data_cfg.get('byte_level', False) else 'char') if name == 'auto' or legacy else name
  if data_cfg.get('name') in translation.NAMES:
    return 'unigram' if name == 'auto' else name
  return ''


def _local_text_config(data_cfg) -> builders.LocalTextConfig:
  tokenizer = tokenizer_name(data_cfg)
  return builders.local_text_config(data_cfg.path, 'char' if tokenizer == 'byte' else tokenizer,
                                    vocab_size=data_cfg.get('vocab_size', 8000),
                                    min_count=data_cfg.get('min_count', 1))


def _builder(data_cfg, directory: str) -> tfds.core.DatasetBuilder:
  kwargs = {'data_dir': directory, 'file_format': 'array_record'}
  if data_cfg.name in tasks.TASKS:
    return tasks.synthetic_builder_cls(data_cfg.name)(config=_synthetic_config(data_cfg),
                                                         **kwargs)
  if data_cfg.name == 'text':
    return builders.LocalText(config=_local_text_config(data_cfg), **kwargs)
  if data_cfg.name == 'tiny_shakespeare':
    return builders.TinyShakespeare(**kwargs)
  if data_cfg.name == 'lm1b':
    return builders.Lm1b(**kwargs)
  raise ValueError(f'Unknown data.name {data_cfg.name!r}.')


def prepare(data_cfg) -> None:
  """Builds the dataset of `data_cfg` unless already built; safe to call from many processes."""
  directory = data_dir(data_cfg)
  os.makedirs(directory, exist_ok=True)
  with open(os.path.join(directory, '.seqmodels_prepare.lock'), 'w') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)  # Released when the file closes.
    if data_cfg.name in bert_data.DATASETS:
      return bert_data.prepare(data_cfg, directory)
    if data_cfg.name in translation.NAMES:
      return translation.prepare(data_cfg, directory)
    builders.build_if_needed(_builder(data_cfg, directory), f'config.data.name={data_cfg.name}')


def _sources(name: str, splits, directory: str) -> dict[str, Any]:
  return {split: tfds.data_source(name, split=split, data_dir=directory) for split in splits}


def _decoded(sources: Mapping[str, Any], fmt: Callable) -> dict[str, Examples]:
  return {split: decoded_examples(src, fmt) for split, src in sources.items()}


def _as_str(text: str | bytes) -> str:
  return text.decode('utf-8') if isinstance(text, bytes) else text


def _text_windows(ids: Mapping[str, np.ndarray], data_cfg) -> dict[str, Examples]:
  """Train windows start every data.stride tokens (1: every offset, as nanoGPT's random crops);
  evaluation windows tile their split without overlap, so each token is scored once."""
  strides = {'train': data_cfg.stride or data_cfg.seq_len}
  return {split: _windows(split_ids, data_cfg.seq_len, strides.get(split, data_cfg.seq_len))
          for split, split_ids in ids.items()}


def _windows(ids_N: np.ndarray, seq_len: int, stride: int) -> Examples:
  """Windows of seq_len + 1 tokens starting every `stride` tokens, gathered without copies up front."""
  starts = builders.window_starts(len(ids_N), seq_len + 1, stride)
  offsets = np.arange(seq_len + 1)
  return Examples(len(starts),
                  lambda indices: format_window(ids_N[starts[indices][:, None] + offsets]))


def load(data_cfg) -> Data:
  """Opens the prepared dataset of `data_cfg` (see `prepare`)."""
  directory, name = data_dir(data_cfg), data_cfg.name
  if name in bert_data.DATASETS:
    return bert_data.load(data_cfg, directory)
  if name in translation.NAMES:
    return translation.load(data_cfg, directory)
  if name in tasks.TASKS:
    config = _synthetic_config(data_cfg)
    builder_name = f'{tasks.synthetic_builder_cls(name).name}/{config.name}'
    splits = [split for split, n in config.split_sizes.items() if n > 0]
    sources = _sources(builder_name, splits, directory)
    if name == 'adding':
      fn = lambda ex: format_adding_example(ex['values'], ex['markers'], ex['target'],
                                            data_cfg.max_len)
      return Data('regression', 0, data_cfg.max_len, _decoded(sources, fn), render_values)
    fn = lambda ex: format_seq_example(ex['inputs'], ex['targets'], data_cfg.max_len)
    return Data('lm', data_cfg.num_symbols + NUM_SPECIALS, 2 * data_cfg.max_len + 2,
                _decoded(sources, fn), render_symbols, meta={'eos_id': EOS})
  if name == 'text':
    config = _local_text_config(data_cfg)
    splits = ('train', 'validation') if 'text' in config.files else tuple(config.files)
    sources = _sources(f'{builders.LocalText.name}/{config.name}', splits, directory)
    metadata = sources['train'].dataset_info.metadata
    tokenizer = builders.text_tokenizer(metadata)
    ids = {split: np.concatenate([src[i]['tokens'] for i in range(len(src))] or [np.zeros(0, np.int32)])
           for split, src in sources.items()}
    characters = metadata.get('characters', {})
    if tokenizer_name(data_cfg) == 'byte':  # the ids of lm1b, mlm and classify data: pre-training fits them
      chars, tokenizer = tokenizer, tokenizers.ByteTokenizer(offset=NUM_SPECIALS)
      ids = {split: tokenizer.encode(chars.decode(split_ids)) for split, split_ids in ids.items()}
    for split, split_ids in ids.items():
      if len(split_ids) < data_cfg.seq_len + 1:
        raise errors.DataError(
            f'the {split} split of config.data.path={data_cfg.path!r} has {len(split_ids)} tokens, fewer than one '
            f'window of config.data.seq_len + 1 = {data_cfg.seq_len + 1}: lower seq_len or use more text')
    chars_per_token = {split: characters[split] / len(split_ids) for split, split_ids in ids.items()
                       if split in characters}
    meta = {'chars_per_token': chars_per_token}
    if isinstance(tokenizer, tokenizers.WordTokenizer):  # <unk> stands for many words: reported with bits/char
      unk_id = tokenizer.words.index(tokenizers.UNK_WORD)
      meta['unk_fraction'] = {split: float(np.mean(split_ids == unk_id)) for split, split_ids in ids.items()}
    if 'text' in config.files:  # why there is no test split, for train.test_eval's error
      meta['no_test'] = (f'a single file is split {builders.TRAIN_FRACTION:.0%}/{1 - builders.TRAIN_FRACTION:.0%} '
                         'into train and validation')
    elif 'test' not in ids:
      meta['no_test'] = f'no test file matches {builders.split_file_names(config.path, "test")}'
    return Data('lm', tokenizer.vocab_size, data_cfg.seq_len, _text_windows(ids, data_cfg),
                tokenizer.decode, tokenizer.encode, meta=meta, tokens=ids)
  if name == 'tiny_shakespeare':
    sources = _sources(name, ('train', 'validation', 'test'), directory)
    # The official dataset holds one example (the whole text) per split.
    texts = {split: ''.join(_as_str(src[i]['text']) for i in range(len(src)))
             for split, src in sources.items()}
    tokenizer = tokenizers.CharTokenizer.from_text(''.join(texts.values()))
    ids = {split: tokenizer.encode(text) for split, text in texts.items()}
    return Data('lm', tokenizer.vocab_size, data_cfg.seq_len, _text_windows(ids, data_cfg),
                tokenizer.decode, tokenizer.encode, tokens=ids)
  if name == 'lm1b':
    sources = _sources(name, ('train', 'test'), directory)
    splits = _decoded(sources, lambda ex: format_sentence(ex['text'], data_cfg.seq_len))
    splits['validation'] = splits['test']  # lm1b has no validation split.
    byte_tokenizer = tokenizers.ByteTokenizer(offset=NUM_SPECIALS)
    sentence = lambda text: np.concatenate([[BOS], byte_tokenizer.encode(text)])
    return Data('lm', byte_tokenizer.vocab_size, data_cfg.seq_len, splits, byte_tokenizer.decode, sentence,
                meta={'eos_id': EOS})
  raise ValueError(f'Unknown data.name {name!r}.')


from seqmodels.data import bert as bert_data  # noqa: E402  (it builds on Data and Examples above)
