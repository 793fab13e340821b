"""Running text for LMs: local text files (data.name='text'), tiny_shakespeare and lm1b.

`text` and `tiny_shakespeare` are one running text per split, cut into windows of seq_len + 1
tokens at load (any window length and stride from one build) or read as streams; lm1b is separate
sentences, `[BOS] bytes [EOS]`.
"""

import os
from typing import Mapping

import numpy as np

from seqmodels import errors
from seqmodels.data import builders, core, tokenizers
from seqmodels.data.core import BOS, EOS, NUM_SPECIALS, PAD


def tokenizer_name(data_cfg) -> str:
  """data.tokenizer as `text` uses it: 'auto' is characters (bytes with data.byte_level).

  A config.json written before `text` took a tokenizer (it has no data.min_count) holds the
  translation default 'unigram' there; its text was characters.
  """
  name = data_cfg.get('tokenizer', 'auto')
  legacy = name == 'unigram' and 'min_count' not in data_cfg
  return (('byte' if data_cfg.get('byte_level', False) else 'char') if name == 'auto' or legacy
          else name)


def _local_text_config(data_cfg) -> builders.LocalTextConfig:
  tokenizer = tokenizer_name(data_cfg)
  # bytes and a checkpoint's own tokenizer (hf:DIR) re-encode the characters at load
  built = 'char' if tokenizer == 'byte' or tokenizer.startswith(tokenizers.HF_PREFIX) else tokenizer
  return builders.local_text_config(data_cfg.path, built,
                                    vocab_size=data_cfg.get('vocab_size', 8000),
                                    min_count=data_cfg.get('min_count', 1))


def prepare_text(data_cfg, directory: str) -> None:
  builder = builders.LocalText(config=_local_text_config(data_cfg), data_dir=directory,
                               file_format='array_record')
  builders.build_if_needed(builder, f'config.data.name={data_cfg.name}')


def _prepare_tiny_shakespeare(data_cfg, directory: str) -> None:
  builder = builders.TinyShakespeare(data_dir=directory, file_format='array_record')
  builders.build_if_needed(builder, f'config.data.name={data_cfg.name}')


def _prepare_lm1b(data_cfg, directory: str) -> None:
  builders.build_if_needed(builders.Lm1b(data_dir=directory, file_format='array_record'),
                           f'config.data.name={data_cfg.name}')


def _text_windows(ids: Mapping[str, np.ndarray], data_cfg) -> dict[str, core.Examples]:
  """Train windows start every data.stride tokens (1: every offset, as nanoGPT's random crops);
  evaluation windows tile their split without overlap, so each token is scored once."""
  strides = {'train': data_cfg.stride or data_cfg.seq_len}
  return {split: _windows(split_ids, data_cfg.seq_len, strides.get(split, data_cfg.seq_len))
          for split, split_ids in ids.items()}


def _windows(ids_N: np.ndarray, seq_len: int, stride: int) -> core.Examples:
  """Windows of seq_len + 1 tokens starting every `stride` tokens, gathered without copies up
  front."""
  starts = builders.window_starts(len(ids_N), seq_len + 1, stride)
  offsets = np.arange(seq_len + 1)
  window = lambda indices: core.format_window(ids_N[starts[indices][:, None] + offsets])
  return core.Examples(len(starts), window)


def format_sentence(text: str | bytes, seq_len: int) -> core.Batch:
  """`[BOS] utf-8 bytes [EOS]` cut or PAD-padded to seq_len + 1 tokens; padding has weight 0."""
  ids = tokenizers.ByteTokenizer(offset=NUM_SPECIALS).encode(text)
  tokens_L = np.full(seq_len + 1, PAD, np.int32)
  sentence = np.concatenate([[BOS], ids, [EOS]])[:seq_len + 1]
  tokens_L[:len(sentence)] = sentence
  example = core.format_window(tokens_L)
  example['weights'] = (example['targets'] != PAD).astype(np.float32)
  return example


def load_ids(data_cfg, directory: str):
  """(token ids int32 [N] per split, the tokenizer, the build's metadata) of a prepared local text
  (`prepare_text`)."""
  config = _local_text_config(data_cfg)
  splits = ('train', 'validation') if 'text' in config.files else tuple(config.files)
  sources = core.sources(f'{builders.LocalText.name}/{config.name}', splits, directory)
  metadata = sources['train'].dataset_info.metadata
  ids = {split: np.concatenate([src[i]['tokens'] for i in range(len(src))] or
                               [np.zeros(0, np.int32)]) for split, src in sources.items()}
  return ids, builders.text_tokenizer(metadata), metadata


def _load_text(data_cfg, directory: str) -> core.Data:
  config = _local_text_config(data_cfg)
  ids, tokenizer, metadata = load_ids(data_cfg, directory)
  characters = metadata.get('characters', {})
  # the ids of lm1b, mlm and classify data: pre-training fits them
  if tokenizer_name(data_cfg) == 'byte':
    chars, tokenizer = tokenizer, tokenizers.ByteTokenizer(offset=NUM_SPECIALS)
    ids = {split: tokenizer.encode(chars.decode(split_ids)) for split, split_ids in ids.items()}
  elif tokenizer_name(data_cfg).startswith(tokenizers.HF_PREFIX):  # a pre-trained model's own
    chars, tokenizer = tokenizer, tokenizers.HFTokenizer(
        os.path.expanduser(tokenizer_name(data_cfg)[len(tokenizers.HF_PREFIX):]))
    ids = {split: tokenizer.encode(chars.decode(split_ids)) for split, split_ids in ids.items()}
  distinct = np.unique(ids['train'])
  if len(distinct) == 1:  # every target the one token: a model learns 0 bits/token of nothing
    units = {'char': 'character', 'byte': 'byte', 'word': 'word'}
    unit = units.get(tokenizer_name(data_cfg), 'token')
    raise errors.DataError(
        f'config.data.path={data_cfg.path!r}: its text has one distinct {unit} '
        f'({tokenizer.decode(distinct)!r}, {len(ids["train"])} times in the train split): there is '
        'nothing to predict: point it at real text')
  for split, split_ids in ids.items():
    if len(split_ids) < data_cfg.seq_len + 1:
      raise errors.DataError(
          f'the {split} split of config.data.path={data_cfg.path!r} has {len(split_ids)} tokens, '
          f'fewer than one window of config.data.seq_len + 1 = {data_cfg.seq_len + 1}: lower '
          'seq_len or use more text')
  chars_per_token = {split: characters[split] / len(split_ids) for split, split_ids in ids.items()
                     if split in characters}
  meta = {'chars_per_token': chars_per_token}
  if not isinstance(tokenizer, tokenizers.WordTokenizer):  # <unk> makes a word text's bytes unknown
    meta['bytes_per_token'] = {split: _utf8_bytes(tokenizer, split_ids) / len(split_ids)
                               for split, split_ids in ids.items()}
  # <unk> stands for many words: reported with bits/char
  if isinstance(tokenizer, tokenizers.WordTokenizer):
    unk_id = tokenizer.words.index(tokenizers.UNK_WORD)
    meta['unk_fraction'] = {split: float(np.mean(split_ids == unk_id))
                            for split, split_ids in ids.items()}
    meta['words'] = tokenizer.words  # by id: what pre-trained vectors are matched by
  if 'test' not in ids and data_cfg.get('test_from_validation', False):
    ids, meta = _validation_halves(ids, meta, data_cfg.seq_len)
  elif 'text' in config.files:  # why there is no test split, for train.test_eval's error
    meta['no_test'] = ('a single file is split '
                       f'{builders.TRAIN_FRACTION:.0%}/{1 - builders.TRAIN_FRACTION:.0%} into '
                       'train and validation')
  elif 'test' not in ids:
    meta['no_test'] = f'no test file matches {builders.split_file_names(config.path, "test")}'
  return core.Data('lm', tokenizer.vocab_size, data_cfg.seq_len, _text_windows(ids, data_cfg),
                   tokenizer.decode, tokenizer.encode, meta=meta, tokens=ids)


def _utf8_bytes(tokenizer, ids_N: np.ndarray) -> int:
  """The UTF-8 bytes of the text `ids_N` decodes to (byte tokens: one each)."""
  if isinstance(tokenizer, tokenizers.ByteTokenizer):
    return len(ids_N)
  return len(tokenizer.decode(ids_N).encode('utf-8'))


def _validation_halves(ids: dict, meta: dict, seq_len: int) -> tuple[dict, dict]:
  """data.test_from_validation: the validation text's second half becomes the test split, so a
  comparison chooses settings on one half and reports on the other (a text with no test file)."""
  val_N = ids['validation']
  half = len(val_N) // 2
  if half < seq_len + 1:
    raise errors.DataError(
        f'config.data.test_from_validation=True: halves of the {len(val_N)}-token validation split '
        f'are shorter than one window of config.data.seq_len + 1 = {seq_len + 1}: lower seq_len, '
        'use more text, or leave test_from_validation off')
  ids = {**ids, 'validation': val_N[:half], 'test': val_N[half:]}
  # per-token ratios of the whole validation text, for both halves
  meta = {k: {**v, 'test': v['validation']} if isinstance(v, dict) and 'validation' in v else v
          for k, v in meta.items()}
  return ids, meta


def _load_tiny_shakespeare(data_cfg, directory: str) -> core.Data:
  sources = core.sources(data_cfg.name, ('train', 'validation', 'test'), directory)
  # The official dataset holds one example (the whole text) per split.
  texts = {split: ''.join(core.as_str(src[i]['text']) for i in range(len(src)))
           for split, src in sources.items()}
  tokenizer = tokenizers.CharTokenizer.from_text(''.join(texts.values()))
  ids = {split: tokenizer.encode(text) for split, text in texts.items()}
  meta = {'bytes_per_token': {split: len(text.encode('utf-8')) / max(len(ids[split]), 1)
                              for split, text in texts.items()}}
  return core.Data('lm', tokenizer.vocab_size, data_cfg.seq_len, _text_windows(ids, data_cfg),
                   tokenizer.decode, tokenizer.encode, meta=meta, tokens=ids)


def _load_lm1b(data_cfg, directory: str) -> core.Data:
  sources = core.sources(data_cfg.name, ('train', 'test'), directory)
  splits = core.decoded(sources, lambda ex: format_sentence(ex['text'], data_cfg.seq_len))
  splits['validation'] = splits['test']  # lm1b has no validation split.
  byte_tokenizer = tokenizers.ByteTokenizer(offset=NUM_SPECIALS)
  sentence = lambda text: np.concatenate([[BOS], byte_tokenizer.encode(text)])
  return core.Data('lm', byte_tokenizer.vocab_size, data_cfg.seq_len, splits, byte_tokenizer.decode,
                   sentence, meta={'eos_id': EOS})


def _check_text(config) -> None:
  """A local text LM: its window, file(s) and tokenizer (builders.LocalText)."""
  d = config.data
  core.check_windows(d)
  choices = ('auto', 'char', 'byte', 'word', 'bpe', 'unigram')
  tokenizer = d.get('tokenizer', 'auto')
  if tokenizer.startswith(tokenizers.HF_PREFIX):
    directory = os.path.expanduser(tokenizer[len(tokenizers.HF_PREFIX):])
    core.check(os.path.isfile(os.path.join(directory, 'tokenizer.json')),
               f'config.data.tokenizer={tokenizer!r}: {directory} holds no tokenizer.json: name '
               'the directory of a Hugging Face checkpoint that has one (or an imported workdir)')
  else:
    core.check(tokenizer in choices, f'config.data.tokenizer={tokenizer!r} is not a text '
               f'tokenizer: choose one of {", ".join(choices)}, or hf:DIR (a checkpoint\'s '
               'tokenizer.json)')
  core.check(not d.byte_level or tokenizer in ('auto', 'byte'),
             'config.data.byte_level=True makes the tokens bytes, but '
             f'config.data.tokenizer={tokenizer!r}: set one of them, not both')
  if tokenizer in ('unigram', 'bpe'):  # lossless: 4 specials and 256 byte pieces, then the text's
    core.check(d.vocab_size > 260,
               f'config.data.vocab_size={d.vocab_size!r} leaves no pieces of the text beside the 4 '
               'specials and 256 byte pieces of a lossless subword model: use a few hundred or '
               'more')
  core.check(d.get('min_count', 1) >= 1,
             f'config.data.min_count={d.min_count!r} must be >= 1 (1 keeps every training word)')
  core.check(bool(d.path), "config.data.path is empty: set it to a text file, e.g. "
             "--config.data.path=../shared/data/tinyshakespeare.txt")
  if '{split}' in d.path:
    return core.check_split_files('data.path', d.path, 'one text file per split')
  path = os.path.expanduser(d.path)
  what = core.not_a_file(path)
  core.check(not what, f'config.data.path={d.path!r} {what}: point it at a local text file, or at '
             "one file per split with '{split}' ('wiki.{split}.tokens')")
  size = os.path.getsize(path)
  core.check(size >= 10 * (d.seq_len + 1),
             f'config.data.path={d.path!r} has {size} bytes, too few for a 10% validation part of '
             f'one window: use a longer file or a smaller config.data.seq_len={d.seq_len}')


def _check_tfds_text(config) -> None:
  """tiny_shakespeare, lm1b: the window; their tokens are their own."""
  core.check_windows(config.data)
  core.check_no_byte_level(config.data)
  core.check_no_tokenizer(config.data)


DATASETS = {
    'text': core.Dataset('lm', prepare_text, _load_text, _check_text,
                         local_files=lambda data_cfg: core.existing_files(data_cfg.path),
                         tokenizer_name=tokenizer_name, text=True, streams=True),
    'tiny_shakespeare': core.Dataset('lm', _prepare_tiny_shakespeare, _load_tiny_shakespeare,
                                     _check_tfds_text, text=True, streams=True),
    'lm1b': core.Dataset('lm', _prepare_lm1b, _load_lm1b, _check_tfds_text, text=True),
}
