"""Translation data: parallel text as TF-free TFDS array_record datasets, subword tokenizers,
BLEU/chrF.

Datasets (config.data.name):
  toy_translation             generated here (no download): a word-substitution cipher with local
                              reordering (`toy_translate`): source words from `num_symbols`
                              pseudo-words; each becomes its target word, and "adjective noun"
                              becomes "noun adjective", as English -> French.
  parallel_text               local files, one sentence per line: data.src_path / data.tgt_path with
                              '{split}' (train, validation, test; test is optional), e.g.
                              'corpus/{split}.de'.
  wmt14_translate/de-en, ted_hrlr_translate/pt_to_en   the online TFDS sets (source -> target in
                                                       name order).
Tokenizers (data.tokenizer): 'unigram' (also 'auto') or 'bpe' sentencepiece models trained on the
training split (shared or separate vocabularies, data.shared_vocab), saved under
<data_dir>/translation_tokenizers/; or 'char' / 'byte'.
Ids: PAD 0, BOS 1, EOS 2, UNK 3, then the vocabulary.

Batches (kind 'seq2seq'): src int32 [b, S], src_len int32 [b], tgt_in int32 [b, T] (BOS + target),
tgt_out int32 [b, T] (target + EOS), weights float32 [b, T]; S = T = data.seq_len (longer sentences
are cut).

attention_maps.npz (written by seqmodels.models.seq2seq.final_eval, read by seqmodels.report):
  count int; for i < count: weights_{i} float32 [T_i, S_i] (target x source, rows sum to 1),
  src_{i} str [S_i] and tgt_{i} str [T_i] (the tokens as strings; tgt ends with '</s>').
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import re
from typing import Any, Sequence

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from seqmodels import errors
from seqmodels.data import builders, core, tasks, tokenizers

PAD, BOS, EOS, UNK = 0, 1, 2, 3
NUM_SPECIALS = 4
TOY = 'toy_translation'
FILES = 'parallel_text'
ONLINE = {'wmt14_translate/de-en': ('de', 'en'), 'ted_hrlr_translate/pt_to_en': ('pt', 'en')}
NAMES = (TOY, FILES) + tuple(ONLINE)
TOKENIZERS = ('unigram', 'bpe', 'char', 'byte')
_CODE_PATH = epath.Path(__file__)
_SRC_CONSONANTS, _SRC_VOWELS = 'bdgklmnprst', 'aeiou'
_TGT_CONSONANTS, _TGT_VOWELS = 'fhjvwxz', 'aeiouy'
MAX_TOY_WORDS = (len(_TGT_CONSONANTS) * len(_TGT_VOWELS)) ** 2  # 1764


# ---- the toy task --------------------------------------------------------------------------------

def _word(i: int, consonants: str, vowels: str) -> str:
  """The i-th two-syllable pseudo-word (consonant + vowel syllables); unique for i <
  MAX_TOY_WORDS."""
  syllables = [c + v for c in consonants for v in vowels]
  n = len(syllables)
  # a bijection of i < n^2 onto syllable pairs
  return syllables[i % n] + syllables[(i // n + 7 * i) % n]


@functools.lru_cache(maxsize=8)
def toy_lexicon(num_words: int, seed: int) -> tuple[list[str], list[str]]:
  """Source words, and the target word of each (a seeded permutation of the target pseudo-words)."""
  src = [_word(i, _SRC_CONSONANTS, _SRC_VOWELS) for i in range(num_words)]
  tgt = [_word(i, _TGT_CONSONANTS, _TGT_VOWELS) for i in range(num_words)]
  perm = np.random.default_rng([seed, 7]).permutation(num_words)
  return src, [tgt[j] for j in perm]


def is_adjective(word_id: int, num_words: int) -> bool:
  return word_id < num_words // 4  # the first quarter of the lexicon


def toy_translate(src_ids: Sequence[int], num_words: int) -> list[int]:
  """The definition: word ids in target order; every adjective followed by a non-adjective swaps
  with it."""
  out, i = [], 0
  while i < len(src_ids):
    if (i + 1 < len(src_ids) and is_adjective(src_ids[i], num_words)
        and not is_adjective(src_ids[i + 1], num_words)):
      out += [src_ids[i + 1], src_ids[i]]
      i += 2
    else:
      out.append(src_ids[i])
      i += 1
  return out


def toy_example(*, seed: int, split: str, index: int, min_len: int, max_len: int,
                num_words: int) -> dict[str, str]:
  """Example `index` of `split`: {'src': sentence, 'tgt': its translation}, from its own random
  stream."""
  rng = tasks.example_rng(seed, split, index)
  ids = rng.integers(0, num_words, size=int(rng.integers(min_len, max_len + 1))).tolist()
  src_words, tgt_words = toy_lexicon(num_words, seed)
  return {'src': ' '.join(src_words[i] for i in ids),
          'tgt': ' '.join(tgt_words[i] for i in toy_translate(ids, num_words))}


# ---- TFDS builder --------------------------------------------------------------------------------

@dataclasses.dataclass(eq=False, kw_only=True)
class ParallelConfig(tfds.core.BuilderConfig):
  """A parallel corpus: the toy task (its parameters) or local files (their paths and content
  digest)."""
  params: dict


def _file_digest(src_path: str, tgt_path: str) -> tuple[str, dict[str, tuple[str, str]]]:
  files, h = {}, hashlib.sha256()
  src_files, tgt_files = builders.split_files(src_path), builders.split_files(tgt_path)
  for split in tasks.SPLITS:
    if split in src_files and split in tgt_files:
      files[split] = pair = (src_files[split], tgt_files[split])
      for p in pair:
        h.update(p.encode() + b'\0' + builders.file_sha256(p).encode() + b'\0')
  return h.hexdigest(), files


def parallel_config(data_cfg) -> ParallelConfig:
  """The builder config of data_cfg (toy_translation or parallel_text), named by all its
  parameters."""
  if data_cfg.name == TOY:
    params = {'task': TOY, 'min_len': data_cfg.min_len, 'max_len': data_cfg.max_len,
              'num_words': data_cfg.num_symbols, 'seed': data_cfg.seed,
              'sizes': {'train': data_cfg.num_train, 'validation': data_cfg.num_validation,
                        'test': data_cfg.num_test}}
    name = (f'toy_w{data_cfg.num_symbols}_len{data_cfg.min_len}-{data_cfg.max_len}_n'
            f'{data_cfg.num_train}-'
            f'{data_cfg.num_validation}-{data_cfg.num_test}_seed{data_cfg.seed}')
    return ParallelConfig(name=name, params=params)
  src_path, tgt_path = (os.path.abspath(os.path.expanduser(p))
                        for p in (data_cfg.src_path, data_cfg.tgt_path))
  digest, files = _file_digest(src_path, tgt_path)
  stem = re.sub(r'\W', '_', os.path.basename(src_path.format(split='')))[:30]
  return ParallelConfig(name=f'files_{stem}_{digest[:16]}', params={'task': FILES, 'files': files,
                                                                     'digest': digest})


class ParallelText(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Sentence pairs {'src', 'tgt'} (text) per split, in file / index order; empty pairs are
  skipped."""

  # 1.1.0: lines split at '\n' only (1.0.0 also split at U+2028, \x0c, ... inside a line,
  # misaligning the pairs); 1.2.0: a UTF-8 byte order mark is no longer part of a file's first
  # sentence.
  VERSION = tfds.core.Version('1.2.0')
  code_path = _CODE_PATH

  def _info(self) -> tfds.core.DatasetInfo:
    features = tfds.features.FeaturesDict({'src': tfds.features.Text(),
                                           'tgt': tfds.features.Text()})
    return tfds.core.DatasetInfo(builder=self, description=json.dumps(self.builder_config.params),
                                 features=features, disable_shuffling=True)

  def _split_generators(self, dl_manager):
    del dl_manager  # local
    p = self.builder_config.params
    if p['task'] == TOY:
      return {split: self._generate_examples(split=split, n=n) for split, n in p['sizes'].items()
              if n > 0}
    return {split: self._generate_examples(paths=pair) for split, pair in p['files'].items()}

  def _generate_examples(self, split: str = '', n: int = 0, paths: tuple[str, str] | None = None):
    if paths is not None:
      yield from self._files(*paths)
      return
    p = self.builder_config.params
    for index in range(n):
      yield index, toy_example(seed=p['seed'], split=split, index=index, min_len=p['min_len'],
                               max_len=p['max_len'], num_words=p['num_words'])

  def _files(self, src_path: str, tgt_path: str):
    src, tgt = builders.read_lines(src_path), builders.read_lines(tgt_path)
    if len(src) != len(tgt):
      raise errors.DataError(f'{src_path} has {len(src)} lines but {tgt_path} has {len(tgt)}: the '
                             'files must align, one sentence pair per line')
    pairs = [(index, s.strip(), t.strip()) for index, (s, t) in enumerate(zip(src, tgt))
             if s.strip() and t.strip()]
    if not pairs:
      raise errors.DataError(f'{src_path} and {tgt_path} hold no sentence pair (no line non-empty '
                             'on both sides): fill them, one sentence per line')
    for index, s, t in pairs:
      yield index, {'src': s, 'tgt': t}


# ---- tokenizers ----------------------------------------------------------------------------------

SubwordTokenizer = tokenizers.SubwordTokenizer


class CharLevel:
  """Characters of the training text (id = NUM_SPECIALS + rank) or UTF-8 bytes (id = NUM_SPECIALS +
  byte)."""

  def __init__(self, chars: str | None):
    self.chars = chars  # None: bytes
    self.vocab_size = NUM_SPECIALS + (256 if chars is None else len(chars))
    self._index = {ch: i + NUM_SPECIALS for i, ch in enumerate(chars or '')}

  def encode(self, text: str | list[str]) -> list[int] | list[list[int]]:
    if isinstance(text, list):
      return [self.encode(t) for t in text]
    if self.chars is None:
      return [b + NUM_SPECIALS for b in text.encode('utf-8')]
    return [self._index.get(ch, UNK) for ch in text]

  def decode(self, ids: Sequence[int]) -> str:
    ids = [i - NUM_SPECIALS for i in ids if NUM_SPECIALS <= i < self.vocab_size]
    if self.chars is None:
      return bytes(ids).decode('utf-8', errors='replace')
    return ''.join(self.chars[i] for i in ids)

  def pieces(self, ids: Sequence[int]) -> list[str]:
    return [self.decode([i]) if i >= NUM_SPECIALS else _SPECIAL_PIECES[i] for i in ids]


# as sentencepiece names them
_SPECIAL_PIECES = {PAD: '<pad>', BOS: '<s>', EOS: '</s>', UNK: '<unk>'}


_SIDES = {'src': 'source', 'tgt': 'target', 'shared': 'source and target'}


def tokenizer_name(data_cfg) -> str:
  """data.tokenizer as translation uses it: 'auto' is a unigram sentencepiece model."""
  name = data_cfg.get('tokenizer', 'auto')
  return 'unigram' if name == 'auto' else name


def _corpus(data_cfg) -> str:
  """The corpus of data_cfg, as a message names it."""
  if data_cfg.name == FILES:
    return f'config.data.src_path={data_cfg.src_path} and config.data.tgt_path={data_cfg.tgt_path}'
  return f'config.data.name={data_cfg.name}'


def tokenizers_for(data_cfg, train_pairs: Sequence[tuple[str, str]], directory: str,
                   create: bool) -> tuple[Any, Any]:
  """(source, target) tokenizers of data_cfg, trained on the training pairs (and saved) when
  `create`."""
  tok = tokenizer_name(data_cfg)  # 'auto' is 'unigram'
  if tok == 'byte':
    return CharLevel(None), CharLevel(None)
  os.makedirs(directory, exist_ok=True)
  sides = ['shared'] if data_cfg.shared_vocab else ['src', 'tgt']
  paths = {
      side: os.path.join(directory, f'{tok}{data_cfg.vocab_size if tok != "char" else ""}_{side}')
      for side in sides}
  texts = lambda side: ([s for s, _ in train_pairs] if side == 'src'
                        else [t for _, t in train_pairs] if side == 'tgt'
                        else [x for pair in train_pairs for x in pair])
  out = {}
  for side, prefix in paths.items():
    if tok == 'char':
      if create and not os.path.exists(prefix + '.json'):
        with open(prefix + '.json', 'w', encoding='utf-8') as f:
          json.dump({'chars': ''.join(sorted(set(''.join(texts(side)))))}, f, ensure_ascii=False)
      with open(prefix + '.json', encoding='utf-8') as f:
        out[side] = CharLevel(json.load(f)['chars'])
    else:
      if create and not os.path.exists(prefix + '.model'):
        try:
          model = tokenizers.train_sentencepiece(texts(side), data_cfg.vocab_size, tok)
        except ValueError as e:
          # a vocabulary too small for the characters: the message says how large
          raise errors.DataError(f'config.data.vocab_size={data_cfg.vocab_size} for the '
                                 f'{_SIDES[side]} text of {_corpus(data_cfg)}: {e}') from e
        with open(prefix + '.model.tmp', 'wb') as f:
          f.write(model)
        # whole or absent: a kill leaves no half model
        os.replace(prefix + '.model.tmp', prefix + '.model')
      out[side] = SubwordTokenizer(prefix + '.model')
  return (out['shared'], out['shared']) if data_cfg.shared_vocab else (out['src'], out['tgt'])


# ---- prepare / load ------------------------------------------------------------------------------

def _source_name(data_cfg) -> tuple[str, str, str]:
  """(tfds name to read, source feature, target feature)."""
  if data_cfg.name in ONLINE:
    return (data_cfg.name, *ONLINE[data_cfg.name])
  return f'{ParallelText.name}/{parallel_config(data_cfg).name}', 'src', 'tgt'


def _text(x) -> str:
  return x.decode('utf-8') if isinstance(x, bytes) else str(x)


def _read_all(source, chunk: int = 8192) -> list:
  """Every record of a data source, read in chunks (one record at a time where __getitems__ is
  missing)."""
  try:
    return [ex for i in range(0, len(source), chunk)
            for ex in source.__getitems__(list(range(i, min(i + chunk, len(source)))))]
  except TypeError:  # tfds.testing.mock_data sources
    return [source[i] for i in range(len(source))]


def _pairs(data_cfg, directory: str) -> dict[str, list[tuple[str, str]]]:
  name, s, t = _source_name(data_cfg)
  out = {}
  for split in tasks.SPLITS:
    try:
      source = tfds.data_source(name, split=split, data_dir=directory)
    except (ValueError, KeyError):  # a split this corpus does not have (e.g. no local test files)
      continue
    out[split] = [(_text(ex[s]), _text(ex[t])) for ex in _read_all(source)]
  return out


def _tokenizer_dir(data_cfg, directory: str) -> str:
  """Where the tokenizers of data_cfg's corpus are saved: per ParallelText version too, so a rebuilt
  dataset never reuses the tokenizers learned from its old examples."""
  name = _source_name(data_cfg)[0].replace('/', '_')
  return os.path.join(directory, 'translation_tokenizers',
                      name if data_cfg.name in ONLINE else f'{name}_{ParallelText.VERSION}')


def prepare(data_cfg, directory: str) -> None:
  """Builds the dataset (and downloads online ones), then trains and saves the tokenizers (caller
  holds a lock)."""
  if data_cfg.name in ONLINE:
    import tensorflow_datasets.translate.ted_hrlr  # registers the builders
    import tensorflow_datasets.translate.wmt14  # noqa: F401
    builder = tfds.builder(data_cfg.name, data_dir=directory, file_format='array_record')
  else:
    builder = ParallelText(config=parallel_config(data_cfg), data_dir=directory,
                           file_format='array_record')
  builders.build_if_needed(builder, f'config.data.name={data_cfg.name}')
  pairs = _pairs(data_cfg, directory)
  tokenizers_for(data_cfg, pairs['train'], _tokenizer_dir(data_cfg, directory), create=True)


def encode_pairs(pairs: Sequence[tuple[str, str]], src_tok, tgt_tok, seq_len: int, split: str,
                 corpus: str) -> dict[str, np.ndarray]:
  """Token arrays of sentence pairs in the batch layout above (cut to seq_len tokens, EOS kept
  last); how many sentences of `split` of `corpus` (`_corpus`) were cut is a warning."""
  n, L = len(pairs), seq_len
  arrays = {'src': np.zeros((n, L), np.int32), 'src_len': np.zeros((n,), np.int32),
            'tgt_in': np.zeros((n, L), np.int32), 'tgt_out': np.zeros((n, L), np.int32),
            'weights': np.zeros((n, L), np.float32)}
  # whole lists: sentencepiece encodes them in parallel
  srcs = src_tok.encode([s for s, _ in pairs])
  tgts = tgt_tok.encode([t for _, t in pairs])
  for i, (src, tgt) in enumerate(zip(srcs, tgts)):
    src, tgt = src[:L], tgt[:L - 1]
    arrays['src'][i, :len(src)] = src
    arrays['src_len'][i] = len(src)
    arrays['tgt_in'][i, :len(tgt) + 1] = [BOS] + tgt
    arrays['tgt_out'][i, :len(tgt) + 1] = tgt + [EOS]
    arrays['weights'][i, :len(tgt) + 1] = 1.0
  cut_src, cut_tgt = sum(len(x) > L for x in srcs), sum(len(x) > L - 1 for x in tgts)
  if cut_src or cut_tgt:
    builders.warn_once(
        'the %s split of %s: %d of its %d source sentences (%.1f%%) are longer than '
        'config.data.seq_len=%d tokens and %d targets (%.1f%%) longer than %d (seq_len less their '
        'EOS): they are cut; raise config.data.seq_len to keep them whole', split, corpus, cut_src,
        n, 100 * cut_src / n, L, cut_tgt, 100 * cut_tgt / n, L - 1)
  return arrays


def load(data_cfg, directory: str) -> core.Data:
  """The prepared dataset as core.Data(kind='seq2seq'); meta holds texts and tokenizers for BLEU."""
  pairs = _pairs(data_cfg, directory)
  src_tok, tgt_tok = tokenizers_for(data_cfg, pairs['train'], _tokenizer_dir(data_cfg, directory),
                                    create=False)
  splits = {}
  for split, split_pairs in pairs.items():
    arrays = encode_pairs(split_pairs, src_tok, tgt_tok, data_cfg.seq_len, split, _corpus(data_cfg))
    splits[split] = core.Examples(len(split_pairs),
                                  lambda idx, a=arrays: {k: v[idx] for k, v in a.items()})
  if 'validation' not in splits and 'test' in splits:
    splits['validation'] = splits['test']
    pairs['validation'] = pairs['test']
  decode = lambda ids: tgt_tok.decode(cut_at_eos(ids))
  meta = {'src_vocab_size': src_tok.vocab_size, 'tgt_vocab_size': tgt_tok.vocab_size, 'bos_id': BOS,
          'eos_id': EOS, 'pairs': pairs, 'src_tokenizer': src_tok, 'tgt_tokenizer': tgt_tok}
  if 'test' not in splits and data_cfg.name in (TOY, FILES):  # why, for train.test_eval's error
    meta['no_test'] = ('config.data.num_test=0' if data_cfg.name == TOY
                       else 'no pair of test files matches '
                            f'{builders.split_file_names(data_cfg.src_path, "test")} and '
                            f'{builders.split_file_names(data_cfg.tgt_path, "test")}')
  return core.Data('seq2seq', tgt_tok.vocab_size, data_cfg.seq_len, splits, decode, meta=meta)


def cut_at_eos(ids) -> list[int]:
  """Token ids up to (without) the first EOS; PAD dropped."""
  ids = [int(i) for i in np.asarray(ids).reshape(-1)]
  ids = ids[:ids.index(EOS)] if EOS in ids else ids
  return [i for i in ids if i != PAD]


# ---- checks --------------------------------------------------------------------------------------

def check(config) -> None:
  """The corpus, its tokenizer and the decoding settings of the final evaluation (config.decode)."""
  d, dc = config.data, config.decode
  core.check_windows(d)
  core.check_no_byte_level(d)
  core.check(d.seq_len >= 2,
             f'config.data.seq_len={d.seq_len!r} must be >= 2 (target tokens + EOS)')
  choices = ('auto', *TOKENIZERS)
  core.check(d.tokenizer in choices, f'config.data.tokenizer={d.tokenizer!r} is not a tokenizer: '
             f'choose one of {", ".join(choices)}')
  if d.tokenizer in ('unigram', 'bpe'):
    core.check(d.vocab_size >= 16, f'config.data.vocab_size={d.vocab_size!r} is too small for '
               'sentencepiece: use >= 16')
  if d.name == TOY:
    core.check_generated(d)
    core.check(d.num_symbols <= MAX_TOY_WORDS, f'config.data.num_symbols={d.num_symbols} exceeds '
               f'the {MAX_TOY_WORDS} toy_translation words: use fewer')
  if d.name == FILES:
    for field in ('src_path', 'tgt_path'):
      path = d[field]
      core.check('{split}' in path, f"config.data.{field}={path!r} needs '{{split}}' where "
                 "train/validation/test go, e.g. 'corpus/{split}.de'")
      core.check_split_files(f'data.{field}', path, 'one sentence per line per split')
  core.check(dc.beam_size >= 1, f'config.decode.beam_size={dc.beam_size!r} must be >= 1')
  core.check(dc.length_penalty >= 0,
             f'config.decode.length_penalty={dc.length_penalty!r} must be >= 0 (GNMT: 0.6)')
  core.check(dc.split in ('validation', 'test'),
             f"config.decode.split={dc.split!r}: choose 'validation' or 'test'")
  for field in ('num_examples', 'batch_size', 'max_len', 'attention_maps'):
    core.check(dc[field] >= 0, f'config.decode.{field}={dc[field]!r} must be >= 0')
  _check_bleu_tokenize(dc.get('bleu_tokenize', '13a'))


def _check_bleu_tokenize(name: str) -> None:
  """config.decode.bleu_tokenize is a sacrebleu BLEU tokenizer that runs here (ja-mecab and ko-mecab
  need extras)."""
  import sacrebleu
  from sacrebleu.tokenizers.tokenizer_spm import SPM_MODELS
  names = list(sacrebleu.metrics.BLEU.TOKENIZERS)
  core.check(name in names,
             f'config.decode.bleu_tokenize={name!r} is not a sacrebleu tokenizer: choose one of '
             f'{", ".join(names)} (zh, ja-mecab or char for targets written without spaces)')
  # made at the final evaluation, which downloads its sentencepiece model once
  if name in SPM_MODELS:
    return
  try:
    sacrebleu.metrics.BLEU(tokenize=name)
  except Exception as e:
    # a missing extra: sacrebleu says which to install
    core.check(False, f'config.decode.bleu_tokenize={name!r} cannot run here: '
               f'{" ".join(str(e).split())}')


# ---- metrics -------------------------------------------------------------------------------------

def corpus_scores(hypotheses: Sequence[str], references: Sequence[str], bleu_tokenize: str = '13a'
                  ) -> dict[str, Any]:
  """sacrebleu corpus BLEU, tokenized by its tokenizer `bleu_tokenize` (config.decode.bleu_tokenize:
  'zh', 'ja-mecab', ... for targets written without spaces), and chrF; with their signatures, which
  name the tokenizer."""
  import sacrebleu
  bleu, chrf = sacrebleu.metrics.BLEU(tokenize=bleu_tokenize), sacrebleu.metrics.CHRF()
  refs = [list(references)]
  return {'bleu': bleu.corpus_score(list(hypotheses), refs).score,
          'chrf': chrf.corpus_score(list(hypotheses), refs).score,
          'bleu_signature': str(bleu.get_signature()), 'chrf_signature': str(chrf.get_signature())}


def bleu_by_length(source_lengths: Sequence[int], hypotheses: Sequence[str],
                   references: Sequence[str], bleu_tokenize: str = '13a',
                   width: int = 5) -> list[dict[str, Any]]:
  """Corpus BLEU per source-length bucket [lo, lo + width) in tokens (Bahdanau et al. 2015, figure
  2)."""
  import sacrebleu
  bleu = sacrebleu.metrics.BLEU(tokenize=bleu_tokenize)
  buckets: dict[int, list[int]] = {}
  for i, n in enumerate(source_lengths):
    buckets.setdefault(int(n) // width * width, []).append(i)
  return [{'min_len': lo, 'max_len': lo + width - 1, 'sentences': len(buckets[lo]),
           'bleu': bleu.corpus_score([hypotheses[i] for i in buckets[lo]],
                                     [[references[i] for i in buckets[lo]]]).score}
          for lo in sorted(buckets)]


def save_attention_maps(workdir: str,
                        maps: Sequence[tuple[np.ndarray, list[str], list[str]]]) -> str:
  """Writes attention_maps.npz (format in the module docstring), and PNG heatmaps if matplotlib
  imports."""
  arrays: dict[str, Any] = {'count': np.asarray(len(maps))}
  for i, (w, src, tgt) in enumerate(maps):
    arrays[f'weights_{i}'] = np.asarray(w, np.float32)
    arrays[f'src_{i}'] = np.asarray(src, dtype=str)
    arrays[f'tgt_{i}'] = np.asarray(tgt, dtype=str)
  path = os.path.join(workdir, 'attention_maps.npz')
  np.savez(path, **arrays)
  try:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
  except ImportError:
    return path
  for i, (w, src, tgt) in enumerate(maps):
    fig, ax = plt.subplots(figsize=(1 + 0.35 * len(src), 1 + 0.35 * len(tgt)))
    ax.imshow(w, cmap='gray_r', vmin=0, vmax=1, aspect='auto')
    ax.set_xticks(range(len(src)), src, rotation=90, fontsize=7)
    ax.set_yticks(range(len(tgt)), tgt, fontsize=7)
    ax.set_xlabel('source')
    ax.set_ylabel('target')
    fig.tight_layout()
    fig.savefig(os.path.join(workdir, f'attention_{i}.png'), dpi=100)
    plt.close(fig)
  return path


def _local_files(data_cfg) -> list[str]:
  """parallel_text's files; the toy task is generated and the online corpora are TFDS's."""
  return core.existing_files(data_cfg.src_path, data_cfg.tgt_path) if data_cfg.name == FILES else []


DATASETS = {name: core.Dataset('seq2seq', prepare, load, check, _local_files, tokenizer_name)
            for name in NAMES}
