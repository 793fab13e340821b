"""Samples from trained language models: the text each architecture writes, from the same prompts.

Every LM of the lineage continues a prompt through the one sampler of seqmodels.decoding
(temperature, top-k, top-p; temperature 0 is greedy), each in its own way of carrying the past:
  * `ngram`: the last n-1 tokens (the counts are fitted again from the run's training split:
    counting is fast and deterministic, so this is the run's model);
  * `rnn`, `lstm`, `gru`, `mingru`, `minlstm`: the recurrent state, over the whole text so far;
  * `gpt`: the KV cache while the text fits the context, then the last `seq_len` tokens, recomputed;
  * `elmo`: its forward LM, recomputed on the last `seq_len` tokens.

From the command line, for finished runs (config.json and the latest checkpoint; for the n-gram,
summary.json):
  python -m seqmodels.analysis.samples --workdir=RUN [--workdir=RUN2 ...] [--prompt=TEXT] \
      [--new_tokens=200]
      [--num_samples=3] [--prompt_tokens=N] [--temperature=0.8] [--top_k=0] [--top_p=1.0] [--seed=0]
prints the samples and writes RUN/samples.json, which `python -m seqmodels.report RUN` shows.
Without `--prompt`, sample i continues the first `--prompt_tokens` tokens of validation example i
and is shown beside the example's own continuation (`reference`; of running text, its next
`--new_tokens` tokens, read on past the window): the same prompts for every run on the same data,
for any task, text or synthetic. By default the prompt is the part of the example a task gives (the
copy task's `<bos>` input `<sep>`: the sample is the model's copy), and 32 tokens of text data (of a
shorter example, all but its last token). A `--prompt_tokens` that leaves no reference is an error.
With `--prompt`, every sample continues that text (character and byte LMs, lm1b).

samples.json: {"model", "step", "checkpoint" (latest | best; null for the n-gram), "data",
"settings": {"new_tokens", "num_samples", "prompt", "prompt_tokens", "temperature", "top_k",
"top_p", "seed", "checkpoint"}, "commit", "command", "samples": [{"source", "prompt",
"continuation", "reference" (or null), "tokens": the continuation's ids}, ...]}.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import sys
from typing import Any

import numpy as np


DEFAULT_PROMPT_TOKENS = 32


@dataclasses.dataclass(frozen=True)
class Settings:
  new_tokens: int = 200
  num_samples: int = 3
  prompt: str | None = None  # None: validation examples' first `prompt_tokens` tokens
  # None: a task's given part (the copy task's input and <sep>), else 32 tokens
  prompt_tokens: int | None = None
  temperature: float = 0.8
  top_k: int = 0
  top_p: float = 1.0
  seed: int = 0
  # or 'best': the best evaluation's parameters (runs trained with train.keep_best)
  checkpoint: str = 'latest'


def prompts(data, s: Settings) -> list[tuple[str, np.ndarray, np.ndarray | None]]:
  """(source, prompt ids [P], the text's own next ids or None) for each of the s.num_samples
  samples."""
  if s.prompt is not None:
    if data.encoder is None:
      raise ValueError('--prompt: this task has no text form: leave --prompt out to continue its '
                       'validation examples')
    try:
      ids = data.encode(s.prompt)
    except ValueError as e:
      raise ValueError(
          f'--prompt: {e}: write it in the characters of the run\'s training text') from None
    if ids.size == 0:
      raise ValueError(
          '--prompt is empty: give some text, or leave it out to continue validation examples')
    return [('--prompt', ids, None)] * s.num_samples
  running = data.tokens.get('validation')
  # running text: where each validation window begins (pipeline's evaluation windows)
  if running is not None:
    from seqmodels.data import builders
    starts = builders.window_starts(len(running), data.seq_len + 1, data.seq_len)
    return [_running_text_prompt(running, starts, i, s) for i in range(s.num_samples)]
  batch = next(iter(data.eval_batches(batch_size=s.num_samples, max_batches=1)))
  out = []
  for i, (inputs_T, targets_T, weights_T) in enumerate(
      zip(batch['inputs'], batch['targets'], batch['weights'])):
    text_T = np.concatenate([inputs_T[:1], targets_T])  # the example's whole token sequence
    # Its length is up to its last weighted target (token id 0 is a character of a text, PAD in
    # other tasks).
    weighted = np.flatnonzero(weights_T)
    n = int(weighted[-1]) + 2 if weighted.size else 0
    if n == 0:  # eval_batches' padding rows, past the split
      raise ValueError(f'--num_samples={s.num_samples} is more than the {i} validation '
                       f'examples: pick at most {i}')
    given = int(weighted[0]) + 1  # the tokens before the first one the model is scored on
    if s.prompt_tokens is not None and s.prompt_tokens >= n:
      raise ValueError(f'--prompt_tokens={s.prompt_tokens}: validation example {i} has {n} tokens, '
                       f'so a prompt of at most {n - 1} leaves some of it to compare a sample '
                       'with: pick a smaller one, or give --prompt')
    # short examples
    p = s.prompt_tokens or min(given if given > 1 else DEFAULT_PROMPT_TOKENS, max(n - 1, 1))
    out.append((f'validation example {i}', text_T[:p], text_T[p:n]))
  return out


def _running_text_prompt(ids_N: np.ndarray, starts: np.ndarray, i: int,
                         s: Settings) -> tuple[str, np.ndarray, np.ndarray]:
  """Sample i's (source, prompt, reference) from a split of running text whose validation windows
  begin at `starts`: its first `prompt_tokens` tokens from the start of window i, and the text's own
  next `new_tokens` tokens, read on past the window (a GPT or ELMo slides its window over a longer
  prompt, a recurrent LM carries its state)."""
  p = s.prompt_tokens or DEFAULT_PROMPT_TOKENS
  if i >= len(starts):
    raise ValueError(f'--num_samples={s.num_samples} is more than the {len(starts)} validation '
                     f'examples: pick at most {len(starts)}')
  start = int(starts[i])
  if start + p >= len(ids_N):
    raise ValueError(f'--prompt_tokens={p}: validation example {i} starts {len(ids_N) - start} '
                     'tokens before the end of the split, so a prompt of at most '
                     f'{len(ids_N) - start - 1} leaves some text to compare a sample with: pick a '
                     'smaller one, or give --prompt')
  return (f'validation example {i}', ids_N[start:start + p],
          ids_N[start + p:start + p + s.new_tokens])


def continuation_fn(model_name: str, model, window: int, s: Settings, eos_id: int | None):
  """(params, prompt_BxP, key) -> tokens_BxN for an LM (the n-gram's params: None); ValueError for a
  model that is not one."""
  import jax
  from seqmodels.models import registry
  generate = registry.MODELS[model_name].generate
  if generate is None:
    raise ValueError(f'config.model.name={model_name} is not a language model')
  return jax.jit(lambda params, prompt, key: generate(
      model, params, prompt, key, max_new=s.new_tokens, temperature=s.temperature, top_k=s.top_k,
      top_p=s.top_p, eos_id=eos_id, window=window))


def _cut(tokens_N: np.ndarray, eos_id: int | None) -> np.ndarray:
  """The continuation up to and with its first EOS."""
  tokens_N = np.asarray(tokens_N)
  if eos_id is not None and (tokens_N == eos_id).any():
    return tokens_N[:int(np.argmax(tokens_N == eos_id)) + 1]
  return tokens_N


def run_samples(workdir: str, s: Settings) -> dict[str, Any]:
  """The samples.json record of the run in `workdir` (module docstring)."""
  import jax
  import jax.numpy as jnp
  from seqmodels.analysis import runs
  from seqmodels.models import ngram, registry
  from seqmodels.train import count
  from seqmodels.train.workdir import code_version

  run = runs.load(workdir)
  data, name = run.data, run.config.model.name
  if run.kind not in ('lm', 'bilm'):
    hint = (' (translations are decoded, greedy and beam, in the run\'s final evaluation: '
            'translation_eval.json)' if run.kind == 'seq2seq' else '')
    raise ValueError(f'config.model.name={name} on config.data.name={run.config.data.name} is a '
                     f'{run.kind} model, not a language model: samples come from LMs{hint}')
  eos_id = data.meta.get('eos_id')
  rows = prompts(data, s)
  key = jax.random.key(s.seed)
  if registry.MODELS[name].trained_by == 'counting':
    m = run.config.model
    model = ngram.fit(count.training_tokens(data, run.config.data), m.order, data.vocab_size,
                      discount=m.discount or None)
    params, step = None, 1
  else:
    model = run.model
    params, step = runs.latest_params(run, [jnp.zeros((1, 2), jnp.int32)], s.checkpoint)
  fn = continuation_fn(name, model, data.seq_len, s, eos_id)
  sample = lambda prompt_BxP, k: np.asarray(fn(params, jnp.asarray(prompt_BxP, jnp.int32), k))
  # Prompts of one length are one batch (all of them, unless validation examples differ in length).
  continuations: list[np.ndarray | None] = [None] * len(rows)
  lengths = sorted({len(p) for _, p, _ in rows})
  for g, P in enumerate(lengths):
    members = [i for i, (_, p, _) in enumerate(rows) if len(p) == P]
    out_BxN = sample(np.stack([rows[i][1] for i in members]), jax.random.fold_in(key, g))
    for i, tokens_N in zip(members, out_BxN):
      continuations[i] = _cut(tokens_N, eos_id)
  samples = [{'source': source, 'prompt': data.decode(prompt), 'continuation': data.decode(c),
              'reference': None if ref is None else data.decode(ref[:s.new_tokens]),
              'tokens': c.tolist()} for (source, prompt, ref), c in zip(rows, continuations)]
  return {'model': name, 'step': int(step), 'checkpoint': None if params is None else s.checkpoint,
          'data': run.config.data.name, 'settings': dataclasses.asdict(s), 'commit': code_version(),
          'command': '', 'samples': samples}


def render(workdir: str, record: dict[str, Any]) -> str:
  """The samples as plain text, each prompt, continuation and reference under its own label."""
  st = record['settings']
  fitted = (f' ({record["checkpoint"]} checkpoint)' if record.get('checkpoint')
            else ' (counted again)')
  lines = [f'=== {workdir}: {record["model"]} at step {record["step"]}{fitted}; temperature '
           f'{st["temperature"]}, top_k {st["top_k"]}, top_p {st["top_p"]}, seed {st["seed"]}, '
           f'{st["new_tokens"]} new tokens']
  for i, smp in enumerate(record['samples']):
    lines += [f'--- sample {i} ({smp["source"]})', '[prompt]', smp['prompt'], '[continuation]',
              smp['continuation']]
    if smp['reference'] is not None:
      lines += ['[reference]', smp['reference']]
  return '\n'.join(lines)


def parse_settings(argv: list[str] | None) -> tuple[list[str], Settings]:
  """(workdirs, Settings) from the command line; a value that cannot work is one line (exit code
  2)."""
  from seqmodels import cli
  from seqmodels.analysis import runs
  d = Settings()
  parser = cli.ArgumentParser(
      description='samples of finished language-model runs -> RUN/samples.json')
  parser.add_argument('--workdir', action='append', required=True,
                      help='a finished run (repeat for several)')
  parser.add_argument('--prompt', default=None,
                      help='text every sample continues (default: validation examples)')
  parser.add_argument('--new_tokens', type=int, default=d.new_tokens,
                      help='tokens generated per sample')
  parser.add_argument('--num_samples', type=int, default=d.num_samples, help='samples per run')
  parser.add_argument('--prompt_tokens', type=int, default=None,
                      help='without --prompt: how many of a validation example\'s tokens are the '
                      'prompt (default: the part a task gives, e.g. the copy task\'s input and '
                      f'<sep>; else {DEFAULT_PROMPT_TOKENS})')
  parser.add_argument('--temperature', type=float, default=d.temperature, help='0: greedy')
  parser.add_argument('--top_k', type=int, default=d.top_k,
                      help='keep the k most likely tokens (0: all)')
  parser.add_argument('--top_p', type=float, default=d.top_p,
                      help='nucleus: the smallest set with this mass')
  parser.add_argument('--seed', type=int, default=d.seed)
  runs.add_checkpoint_flag(parser)
  a = parser.parse_args(argv)
  checks = [(a.new_tokens >= 1, f'--new_tokens={a.new_tokens}: generate at least 1 token'),
            (a.num_samples >= 1, f'--num_samples={a.num_samples}: ask for at least 1 sample'),
            (a.prompt_tokens is None or a.prompt_tokens >= 1,
             f'--prompt_tokens={a.prompt_tokens}: give at least 1 token of prompt'),
            (a.temperature >= 0, f'--temperature={a.temperature}: use 0 (greedy) or more'),
            (a.top_k >= 0, f'--top_k={a.top_k}: use 0 (all tokens) or more'),
            (0 < a.top_p <= 1, f'--top_p={a.top_p}: choose it in (0, 1]')]
  for ok, message in checks:
    if not ok:
      cli.fail(message)
  return a.workdir, Settings(a.new_tokens, a.num_samples, a.prompt, a.prompt_tokens, a.temperature,
                             a.top_k, a.top_p, a.seed, a.checkpoint)


def main(argv: list[str] | None = None) -> None:
  workdirs, settings = parse_settings(argv)
  from seqmodels import cli
  from seqmodels.analysis import runs
  from seqmodels.errors import CheckpointError
  from seqmodels.train.workdir import write_json
  runs.check_workdirs(workdirs, counted=True)
  for workdir in workdirs:  # before any computing
    cli.check_writable(os.path.join(workdir, 'samples.json'), '--workdir')
  command = shlex.join(
      ['python', '-m', 'seqmodels.analysis.samples'] + list(sys.argv[1:] if argv is None else argv))
  for workdir in workdirs:
    try:
      record = run_samples(workdir, settings)
    except (CheckpointError, ValueError) as e:
      cli.fail(f'--workdir={workdir}: {e}')
    record['command'] = command
    path = os.path.join(workdir, 'samples.json')
    with cli.writing(path):
      write_json(path, record)
    print(render(workdir, record))
    print(f'-> {path}')


if __name__ == '__main__':
  main()
