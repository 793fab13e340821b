"""The report's tables: run directories read, grouped by seed, and written as markdown and CSV.

A run directory holds summary.json, config.json and metrics.jsonl (seqmodels/train/loop.py), or
failed.json (a crashed run); a sweep's directory also holds sweep.json. Table: one row per group of
finished runs that differ only in `seed`, numbers as mean ± sample std over the seeds; crashed runs
get a row marked failed, runs begun but not finished one marked unfinished, with the step they
resume from (their latest checkpoint's) and how far they logged, and a sweep's trials not begun one
marked pending.
"""

from __future__ import annotations

import csv
import glob
import json
import math
import os
import re
from typing import Any

import numpy as np

from seqmodels.data import registry as datasets

NAT_TO_BIT = 1 / math.log(2)
# (column, how to read it from a run: a dotted summary key, or a function of the run)
COLUMNS = [
    ('params', 'params'),
    # the size a comparison matches (seqmodels/models/size.py) and its use of the device
    ('non-embedding params', 'params_non_embedding'), ('train FLOPs/token', 'flops_per_token'),
    ('final eval bits/token', 'eval.bits_per_token'),  # = loss (nats/token) / ln 2
    ('final eval MSE', 'eval.mse'),                    # regression runs (the adding problem)
    ('final eval accuracy', 'eval.accuracy'),
    # recall tasks: the accuracy over the positions that must recall (seqmodels/data/recall.py)
    ('final eval recall accuracy', 'eval.recall_accuracy'),
    ('final eval seq. accuracy',
     lambda r: as_float(get_field(r['summary'], 'eval.sequence_accuracy')) if is_task_data(r)
     else math.nan),
    ('best eval bits/token',
     lambda r: as_float(get_field(r['summary'], 'best_eval_loss')) * NAT_TO_BIT if _per_token(r)
     else math.nan),
    ('best eval MSE', lambda r: as_float(get_field(r['summary'], 'best_eval_loss'))
                      if is_regression(r) else math.nan),
    # a loss of another unit (a classifier's nats per example, BERT's MLM + NSP): as it is
    ('best eval loss', lambda r: math.nan if _per_token(r) or is_regression(r) else
     as_float(get_field(r['summary'], 'best_eval_loss'))),
    # running text (data.name=text): bits per character of the text, comparable across tokenizers
    ('final eval bits/char', 'eval.bits_per_char'),
    ('best eval bits/char', lambda r: _best_bits_per_char(r['summary'])),
    ('final eval perplexity', lambda r: _word_perplexity(r, 'eval')),  # per word: WikiText's figure
    ('best eval seq. accuracy',
     lambda r: _best(r, 'sequence_accuracy', max) if is_task_data(r) else math.nan),
    # objective-specific final eval metrics: a column appears only when some run has it
    # translation (sacrebleu, see runs'
    ('BLEU greedy', 'eval.bleu_greedy'), ('BLEU beam', 'eval.bleu_beam'),
    # translation_eval.json for signatures)
    ('chrF beam', 'eval.chrf_beam'),
    # BERT pre-training
    ('MLM accuracy', 'eval.mlm_accuracy'), ('NSP accuracy', 'eval.nsp_accuracy'),
    # ELMo biLM
    ('fwd bits/token', 'eval.fwd_bits_per_token'), ('bwd bits/token', 'eval.bwd_bits_per_token'),
    # runs with train.test_eval
    ('test bits/token', 'test.bits_per_token'), ('test MSE', 'test.mse'),
    ('test bits/char', 'test.bits_per_char'),
    ('test perplexity', lambda r: _word_perplexity(r, 'test')),
    ('test accuracy', 'test.accuracy'), ('test recall accuracy', 'test.recall_accuracy'),
    ('tokens/s', 'tokens_per_sec'), ('MFU', 'mfu'), ('train time (s)', 'train_seconds'),
    ('wall time (s)', 'wall_seconds'),
    ('peak memory (MiB)', lambda r: as_float(get_field(r['summary'], 'peak_memory_bytes')) / 2**20),
]
LENGTH_FIELDS = ('data.max_len', 'data.seq_len')
# The adding problem's target is the sum of two independent U(0, 1) values (seqmodels/data/tasks.py
# adding_example), at any length: always predicting its mean, 1, scores MSE = Var = 2 * 1/12.
ADDING_MEAN_PREDICTOR_MSE = 1 / 6


# --- reading runs ---------------------------------------------------------------------------------

# a run finished, failed, or begun (unfinished)
RUN_FILES = ('summary.json', 'failed.json', 'config.json')


def find_runs(paths: list[str]) -> list[str]:
  """Run directories under `paths`: any directory holding one of RUN_FILES (a run, or a sweep's
  trials).

  A sweep's trials come in the order of its sweep.json (the sweep file's order), other directories
  sorted; the trials it names that have not begun (no run file yet) are there too, as 'pending'
  runs.
  """
  from seqmodels.sweep import trial_name
  runs = []
  for p in paths:
    if any(os.path.exists(os.path.join(p, f)) for f in RUN_FILES):
      runs.append(p)
      continue
    found = {os.path.normpath(os.path.dirname(f)) for name in RUN_FILES
             for f in glob.glob(os.path.join(p, '**', name), recursive=True)}
    orders = {}  # sweep directory -> its trials' names, in the sweep file's order
    for f in glob.glob(os.path.join(p, '**', 'sweep.json'), recursive=True):
      orders[os.path.normpath(os.path.dirname(f))] = [
          trial_name(t) for t in (read_json(f) or {}).get('trials', [])]
    # not begun: 'pending'
    pending = {os.path.join(d, name) for d, names in orders.items() for name in names}

    def rank(d):
      parent, name = os.path.split(d)
      order = orders.get(parent, [])
      return parent, order.index(name) if name in order else len(order), d

    runs += sorted(found | pending, key=rank)
  seen = {}  # a run named twice (the same path given twice, or inside two paths given) is one run
  for d in runs:
    seen.setdefault(os.path.realpath(d), d)
  return list(seen.values())


def read_json(path: str):
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def load_runs(dirs: list[str]) -> list[dict[str, Any]]:
  """{'dir', 'name', 'status' (done | failed | unfinished (step s of n) | pending), 'summary',
  'config', 'error'} for each run directory; 'pending': a sweep's trial not begun, with its 'model'
  where sweep.json names it."""
  runs = []
  sweeps: dict[str, dict[str, str]] = {}  # a sweep directory's {trial name: model}, read once
  for d in dirs:
    summary = read_json(os.path.join(d, 'summary.json'))
    failed = read_json(os.path.join(d, 'failed.json'))
    begun = any(os.path.exists(os.path.join(d, f)) for f in RUN_FILES)
    status = 'done' if summary else 'failed' if failed else _unfinished(d) if begun else 'pending'
    parent, name = os.path.split(os.path.normpath(d))
    if not begun and parent not in sweeps:
      sweeps[parent] = _sweep_models(parent)
    runs.append({'dir': d, 'name': name, 'status': status,
                 'summary': summary or {}, **({} if begun else {'model': sweeps[parent].get(name)}),
                 'config': read_json(os.path.join(d, 'config.json')) or {},
                 'error': (failed or {}).get('error', '')})
  return runs


def _sweep_models(sweep_dir: str) -> dict[str, str]:
  """{trial name: model} of the sweep.json in `sweep_dir` ({} without one, or one from before it
  named models)."""
  from seqmodels.sweep import trial_name
  sweep = read_json(os.path.join(sweep_dir, 'sweep.json')) or {}
  trials, models = sweep.get('trials', []), sweep.get('models') or []
  return {trial_name(t): m for t, m in zip(trials, models)} if len(models) == len(trials) else {}


def _unfinished(run_dir: str) -> str:
  """'unfinished (step s of n)': a run interrupted, or still running, at the step a rerun resumes
  from, its latest checkpoint's; where its log went further (steps a rerun trains again),
  'unfinished (checkpoint at step s of n; logged to m)'."""
  logged = max((r['step'] for r in read_metrics(run_dir) if isinstance(r.get('step'), int)),
               default=0)
  saved = _saved_steps(run_dir)
  config = read_json(os.path.join(run_dir, 'config.json'))
  train = config.get('train') if isinstance(config, dict) else None
  total = train.get('num_steps') if isinstance(train, dict) else None
  step = saved[0] if saved else 0
  of = f' of {total}' if total else ''
  further = f'; logged to {logged}' if logged > step else ''
  where = 'no checkpoint yet: ' if not saved else 'checkpoint at ' if further else ''
  return f'unfinished ({where}step {step}{of}{further})'


def _saved_steps(run_dir: str) -> list[int]:
  """The steps of the run's checkpoints (<run>/checkpoints/<step>), latest first, as
  seqmodels.train.checkpoint.saved_steps finds them, without importing orbax."""
  directory = os.path.join(run_dir, 'checkpoints')
  try:
    names = os.listdir(directory)
  except OSError:
    return []
  steps = [int(n) for n in names if n.isdigit() and os.path.isdir(os.path.join(directory, n))]
  return sorted(steps, reverse=True)


def read_metrics(run_dir: str) -> list[dict[str, Any]]:
  """The records of run_dir/metrics.jsonl (skipping a torn last line)."""
  out = []
  try:
    with open(os.path.join(run_dir, 'metrics.jsonl')) as f:
      for line in f:
        try:
          record = json.loads(line)
        except ValueError:
          continue
        if isinstance(record, dict):
          out.append({k: NON_FINITE.get(v, v) if isinstance(v, str) else v
                      for k, v in record.items()})
  except OSError:
    pass
  return out


def get_field(tree: Any, dotted: str):
  for k in dotted.split('.'):
    tree = tree.get(k) if isinstance(tree, dict) else None
  return tree


# How strict JSON holds a non-finite number (seqmodels.train.metrics.strict_json); older files hold
# bare NaN.
NON_FINITE = {'NaN': math.nan, 'Infinity': math.inf, '-Infinity': -math.inf}


def as_float(v) -> float:
  if isinstance(v, str):
    return NON_FINITE.get(v, math.nan)
  return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan


def _best_bits_per_char(summary) -> float:
  """The best evaluation's bits per character: its bits/token over the validation split's characters
  per token."""
  per_token, per_char = (as_float(get_field(summary, f'eval.bits_per_{unit}'))
                         for unit in ('token', 'char'))
  if not per_token > 0 or math.isnan(per_char):
    return math.nan
  return as_float(get_field(summary, 'best_eval_loss')) * NAT_TO_BIT * per_char / per_token


def _word_perplexity(run, split: str) -> float:
  """The split's perplexity for a run over word tokens (the figure word-level LMs are compared by),
  else NaN."""
  if run['config'].get('data', {}).get('tokenizer') != 'word':
    return math.nan
  return as_float(get_field(run['summary'], f'{split}.perplexity'))


def _best(run, metric: str, pick) -> float:
  values = [m[metric] for m in read_metrics(run['dir']) if m.get('split') == 'eval' and metric in m]
  return float(pick(values)) if values else math.nan


def _dataset(run) -> datasets.Dataset | None:
  """The registry entry of the run's dataset (None for a name this version does not know)."""
  return datasets.DATASETS.get(run['summary'].get('data') or get_field(run['config'], 'data.name'))


def is_task_data(run) -> bool:
  """Whether the run's examples are whole task instances (a copy / sort / ... sequence), not natural
  text, where 'all tokens right' means nothing."""
  entry = _dataset(run)
  return entry is None or not entry.text


def _per_token(run) -> bool:
  """Whether the run's loss is nats per token (its evaluations report bits_per_token): LMs,
  translations."""
  return not math.isnan(as_float(get_field(run['summary'], 'eval.bits_per_token')))


def is_regression(run) -> bool:
  """Whether the run regresses real targets (loss = MSE, not nats/token): the adding problem."""
  entry = _dataset(run)
  return entry is not None and entry.kind == 'regression'


def _model(run) -> str:
  m = run['summary'].get('model') or get_field(run['config'], 'model.name') or run.get('model')
  if not m:
    m = re.search(r'model\.name=([^,]+)', run['name'])
    m = m.group(1) if m else '-'
  return m


def name_without(name: str, fields: tuple[str, ...]) -> str:
  for f in fields:
    name = re.sub(rf'(^|,){re.escape(f)}=[^,]*', '', name)
  return name.strip(',') or 'base'


def _config_key(run, drop: tuple[str, ...]) -> str:
  """Identity of a run's setting with the fields `drop` left out (config.json, else the run's
  name)."""
  if not run['config']:
    return name_without(run['name'], drop)
  c = json.loads(json.dumps(run['config']))
  for f in drop:
    *parents, leaf = f.split('.')
    node = get_field(c, '.'.join(parents)) if parents else c
    if isinstance(node, dict):
      node.pop(leaf, None)
  return json.dumps(c, sort_keys=True)


def group_by_seed(runs: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
  """Finished runs that differ only in `seed`, together, in first-seen order; every other run on its
  own. Runs of one config and one seed (a repeat, e.g. on other devices) are not samples over seeds:
  a repeat starts a group of its own."""
  groups: dict[tuple[str, int], list] = {}
  for i, r in enumerate(runs):
    key = _config_key(r, ('seed',)) if r['status'] == 'done' else f'#{i}'
    n = 0
    while any(get_field(o['config'], 'seed') == get_field(r['config'], 'seed')
              for o in groups.get((key, n), [])):
      n += 1
    groups.setdefault((key, n), []).append(r)
  return list(groups.values())


# --- the table ------------------------------------------------------------------------------------

def _value(run, how) -> float:
  return as_float(get_field(run['summary'], how)) if isinstance(how, str) else how(run)


def table_rows(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
  """One row per seed group: run, model, status, seeds, and {column: (mean, std, n)} over the
  seeds."""
  rows = []
  for group in group_by_seed(runs):
    first = group[0]
    row = {
        'run': name_without(first['name'], ('seed',)) if len(group) > 1 else first['name'],
        'model': _model(first), 'seeds': len(group), 'dirs': [r['dir'] for r in group],
        'status': first['status'] if first['status'] != 'failed' else f'failed: {first["error"]}'}
    for col, how in COLUMNS:
      xs = np.array([_value(r, how) for r in group], np.float64)
      xs = xs[np.isfinite(xs)]
      row[col] = ((float(xs.mean()), float(xs.std(ddof=1)) if len(xs) > 1 else math.nan, len(xs))
                  if len(xs) else None)
    rows.append(row)
  return rows


def _fmt(x: float) -> str:
  if not math.isfinite(x):
    return str(x)
  if abs(x) >= 1000:
    return f'{x:,.0f}'
  return f'{x:.4g}'


def _two_digits(x: float) -> str:
  """x rounded to two significant digits, without an exponent: 707.1 -> '710', 0.01127 ->
  '0.011'."""
  if not math.isfinite(x) or x == 0:
    return str(x)
  decimals = 1 - math.floor(math.log10(abs(x)))
  return f'{round(x, decimals):,.{max(decimals, 0)}f}'


def _cell(v) -> str:
  if v is None:
    return '-'
  if isinstance(v, tuple):
    mean, std, n = v  # a zero spread (e.g. params over seeds) is not worth printing
    return _fmt(mean) + (f' ± {_two_digits(std)}' if n > 1 and std > 0 else '')
  return str(v).replace('|', '/')


def markdown_table(runs: list[dict[str, Any]]) -> str:
  """Markdown: one row per seed group; columns with no value in any row are left out."""
  rows = table_rows(runs)
  cols = ['run', 'model'] + (['seeds'] if any(r['seeds'] > 1 for r in rows) else [])
  cols += [c for c, _ in COLUMNS if any(r[c] is not None for r in rows)]
  cols += ['status'] if any(r['status'] != 'done' for r in rows) else []
  lines = ['| ' + ' | '.join(cols) + ' |', '|' + '|'.join('---' for _ in cols) + '|']
  lines += ['| ' + ' | '.join(_cell(r[c]) for c in cols) + ' |' for r in rows]
  return '\n'.join(lines) + '\n'


def write_csv(runs: list[dict[str, Any]], path: str) -> None:
  """CSV: run, model, status, seeds, then <column> mean and <column> std for every numeric
  column."""
  rows = table_rows(runs)
  with open(path, 'w', newline='') as f:
    w = csv.writer(f)
    w.writerow(['run', 'model', 'status', 'seeds'] +
               [f'{c} {s}' for c, _ in COLUMNS for s in ('mean', 'std')])
    for r in rows:
      nums = []
      for c, _ in COLUMNS:
        nums += ['', ''] if r[c] is None else [repr(r[c][0]), '' if r[c][2] < 2 else repr(r[c][1])]
      w.writerow([r['run'], r['model'], r['status'], r['seeds']] + nums)


def _flat(tree: dict, prefix: str = '') -> dict[str, Any]:
  out = {}
  for k, v in tree.items():
    out.update(_flat(v, f'{prefix}{k}.') if isinstance(v, dict)
               else {f'{prefix}{k}': json.dumps(v)})
  return out


def length_axis(runs: list[dict[str, Any]]) -> tuple[str, ...] | None:
  """(the swept length field, fields that vary with it) when finished runs take 2+ values of
  data.max_len or data.seq_len; e.g. ('data.max_len', 'data.min_len') for a sweep that zips the two.
  None otherwise, and None where each data.tokenizer has one length: windows of about one text in
  its units (160 characters, 32 words), not a length swept."""
  flat = [_flat(r['config']) for r in runs if r['status'] == 'done' and r['config']]
  tokenizers = {c.get('data.tokenizer') for c in flat}
  for f in LENGTH_FIELDS:
    if len({c.get(f) for c in flat}) > 1:
      if len(tokenizers) > 1 and all(
          len({c.get(f) for c in flat if c.get('data.tokenizer') == t}) == 1 for t in tokenizers):
        return None
      # a tokenizer is a setting, never the length's
      keys = set().union(*flat) - {f, 'seed', 'data.tokenizer'}
      along = [k for k in sorted(keys) if len({c.get(k) for c in flat}) > 1 and
               all(len({c.get(k) for c in flat if c.get(f) == v}) == 1
                   for v in {c.get(f) for c in flat})]
      return (f, *along)
  return None


def by_setting(runs: list[dict[str, Any]],
               axis: tuple[str, ...] | None) -> dict[str, list[dict[str, Any]]]:
  """Finished runs by setting, seeds and the length axis left out: {legend label: runs}."""
  drop = ('seed',) + (axis or ())
  keys: dict[str, str] = {}
  out: dict[str, list] = {}
  for r in runs:
    if r['status'] == 'done':
      label = keys.setdefault(_config_key(r, drop), name_without(r['name'], drop))
      out.setdefault(label, []).append(r)
  return out


def word_vectors_section(files: list[str]) -> str:
  """Markdown of the word_vectors.json `files` (seqmodels/analysis/word_vectors.py): a row per
  vectors source (analogy accuracy, similarity rho, and the questions and pairs they count), the
  accuracy per analogy section, and the nearest neighbours asked for."""
  records = [(f, r) for f in files for r in ([read_json(f)] if isinstance(read_json(f), dict)
                                             else read_json(f) or [])]
  if not records:
    return ''
  name = lambda f, r: (os.path.basename(os.path.dirname(os.path.abspath(f)))
                       if os.path.basename(f) == 'word_vectors.json' else r.get('vectors', f))
  md = ['\n## Word vectors\n', '| vectors | words | dim | analogy accuracy (questions, skipped) '
        '| similarity rho (pairs, skipped) |', '|---|---|---|---|---|']
  sections: dict[str, dict[str, str]] = {}
  for f, r in records:
    a, s = r.get('analogies'), r.get('similarity')
    md.append(f'| {name(f, r)} | {r.get("words")} | {r.get("dimension")} | ' +
              (f'{_fmt(a["accuracy"])} ({a["questions"]}, {a["skipped"]})' if a else '') + ' | ' +
              (f'{_fmt(s["spearman"])} ({s["pairs"]}, {s["skipped"]})' if s else '') + ' |')
    for section, v in (a or {}).get('sections', {}).items():
      sections.setdefault(section, {})[name(f, r)] = f'{_fmt(v["accuracy"])} ({v["questions"]})'
  if sections:
    sources = list(dict.fromkeys(name(f, r) for f, r in records))
    md += ['\nAnalogy accuracy per section (3CosAdd; questions of known words):\n',
           '| section | ' + ' | '.join(sources) + ' |', '|---' * (len(sources) + 1) + '|']
    md += [f'| {s} | ' + ' | '.join(v.get(src, '') for src in sources) + ' |'
           for s, v in sections.items()]
  for f, r in records:
    for word, near in r.get('neighbours', {}).items():
      md.append(f'\n{name(f, r)}, nearest to **{word}**: ' +
                (', '.join(f'{w} ({c:.2f})' for w, c in near) or 'not in the vocabulary'))
  return '\n'.join(md) + '\n'


def rare_words_section(files: list[str]) -> str:
  """Markdown of the rare_words.json `files` (seqmodels/analysis/rare_words.py): a row per run, the
  perplexity over all targets, rare and frequent ones, and after unseen bigram / trigram
  contexts."""
  groups = ('all', 'rare', 'frequent', 'unseen_bigram', 'unseen_trigram')
  rows = []
  for f in files:
    records = read_json(f)
    for r in ([records] if isinstance(records, dict) else records or []):
      name = (os.path.basename(os.path.dirname(os.path.abspath(f)))
              if os.path.basename(f) == 'rare_words.json' else r.get('model', f))
      rows.append(f'| {name} | ' + ' | '.join(
          f'{_fmt(r[g]["perplexity"])} ({r[g]["tokens"]})' for g in groups) + ' |')
  if not rows:
    return ''
  return '\n'.join(['\n## Perplexity by target (rare_words)\n',
                    '| run | ' + ' | '.join(g.replace('_', ' ') for g in groups) + ' |',
                    '|---' * (len(groups) + 1) + '|', *rows]) + '\n'
# --- comparisons: equal tuning and scaling (issue 26) ---------------------------------------------

def _bits(summary: dict, split: str) -> float:
  """A split's bits per character where the data has characters, else bits/token; NaN for
  none."""
  for key in ('bits_per_char', 'bits_per_token'):
    value = as_float(get_field(summary, f'{split}.{key}'))
    if math.isfinite(value):
      return value
  return math.nan


def tuned_rows(sweep_dir: str) -> list[dict[str, Any]]:
  """One row per arm of the tuning sweep in `sweep_dir` (its tuning.json): its best setting chosen
  on the validation split (seqmodels.tuning.choose, from the trials' summaries), then the test
  split's bits at that setting, mean ± sample std over the seeds run there. The test split plays
  no part in the choice."""
  from seqmodels import sweep, tuning
  plan = tuning.Tuning.from_json(read_json(os.path.join(sweep_dir, tuning.TUNING_FILE)))
  summary = lambda name: read_json(os.path.join(sweep_dir, name, 'summary.json'))
  searched = {sweep.trial_name({**arm, **s}): summary(sweep.trial_name({**arm, **s}))
              for arm in plan.arms for s in plan.search}
  chosen = tuning.choose(plan, searched)
  rows = []
  for arm, name in zip(plan.arms, plan.arm_names()):
    row = {'arm': name, 'trials': len(plan.search),
           'finished': sum(1 for s in plan.search
                           if searched[sweep.trial_name({**arm, **s})] is not None),
           'setting': None, 'validation': math.nan, 'test': None, 'evaluation': ''}
    i = chosen[name]
    if i is not None:
      setting = plan.search[i]
      first = searched[sweep.trial_name({**arm, **setting})]
      runs = [first] + [summary(sweep.trial_name({**arm, **setting, plan.seed_field: seed}))
                        for seed in range(1, plan.seeds)]
      tests = np.array([_bits(r, 'test') for r in runs if r], np.float64)
      tests = tests[np.isfinite(tests)]
      evaluation = first.get('evaluation') or {}
      row.update(setting=sweep.trial_name(setting), validation=_bits(first, 'eval'),
                 test=(float(tests.mean()), float(tests.std(ddof=1)) if len(tests) > 1
                       else math.nan, len(tests)) if len(tests) else None,
                 evaluation=' '.join(f'{k}={v}' for k, v in evaluation.items()))
    rows.append(row)
  return rows


def tuned_markdown(sweep_dir: str) -> str:
  """The tuned comparison of `sweep_dir` as markdown, best test first."""
  rows = sorted(tuned_rows(sweep_dir),
                key=lambda r: r['test'][0] if r['test'] else math.inf)
  lines = [f'Equal tuning ({sweep_dir}): each arm ran the same {rows[0]["trials"] if rows else 0} '
           'settings; the setting with the lowest validation loss was chosen and rerun with more '
           'seeds; test is mean ± sample std over those seeds (bits/char where the data has '
           'characters, else bits/token).\n',
           '| arm | trials (finished) | chosen on validation | validation | test (seeds) | '
           'evaluation |', '|---|---|---|---|---|---|']
  for r in rows:
    test = f'{_cell(r["test"])} ({r["test"][2]})' if r['test'] else '-'
    lines.append(f'| {r["arm"]} | {r["trials"]} ({r["finished"]}) | {r["setting"] or "-"} | '
                 f'{_fmt(r["validation"]) if math.isfinite(r["validation"]) else "-"} | {test} | '
                 f'{r["evaluation"] or "-"} |')
  return '\n'.join(lines) + '\n'


def architecture(run) -> str:
  """What a scaling curve is drawn per: the model, and for the lm backbone its mixer pattern."""
  model = run['config'].get('model', {})
  if model.get('name') == 'lm':
    return f'lm:{model.get("pattern") or model.get("mixer", "attention")}'
  return str(model.get('name', run['summary'].get('model', '?')))


def scaling_points(runs: list[dict[str, Any]]) -> dict[str, list[dict[str, float]]]:
  """{architecture: [{'params', 'flops', 'loss', 'estimated', 'all_params'}]} of the finished runs,
  for architectures with two or more sizes: non-embedding parameters (summary
  'params_non_embedding', else all 'params': 'all_params' 1), training FLOPs ('flops_per_token'
  times the tokens trained, else the 6 N D estimate: 'estimated' 1) and final validation bits."""
  points: dict[str, list[dict[str, float]]] = {}
  for r in runs:
    s, tc, dc = r['summary'], r['config'].get('train', {}), r['config'].get('data', {})
    if r['status'] != 'done':
      continue
    all_params = 'params_non_embedding' not in s  # a run from before it was recorded
    params = as_float(s.get('params_non_embedding', s.get('params')))
    tokens = as_float(s.get('step')) * as_float(tc.get('batch_size')) * as_float(
        dc.get('seq_len'))
    per_token = as_float(s.get('flops_per_token'))
    estimated = not math.isfinite(per_token)
    flops = (6 * params if estimated else per_token) * tokens
    loss = _bits(s, 'eval')
    if all(math.isfinite(v) and v > 0 for v in (params, flops, loss)):
      points.setdefault(architecture(r), []).append(
          {'params': params, 'flops': flops, 'loss': loss, 'estimated': float(estimated),
           'all_params': float(all_params)})
  return {a: sorted(p, key=lambda q: q['params']) for a, p in points.items()
          if len({q['params'] for q in p}) >= 2}


def power_law(x, y) -> tuple[float, float]:
  """(a, alpha) of the least-squares fit y = a * x^-alpha in log-log space."""
  slope, intercept = np.polyfit(np.log(np.asarray(x, np.float64)),
                                np.log(np.asarray(y, np.float64)), 1)
  return float(math.exp(intercept)), float(-slope)


def scaling_markdown(runs: list[dict[str, Any]]) -> str:
  """Each architecture's power-law fits of validation bits vs parameters and vs training FLOPs
  ('' when no architecture has two sizes)."""
  points = scaling_points(runs)
  if not points:
    return ''
  lines = ['Scaling: final validation bits = a · N^-alpha (N: non-embedding parameters, else all) '
           'and = b · C^-beta (C: training FLOPs; * marks the 6·N·tokens estimate), fitted per '
           'architecture in log-log space.\n',
           '| architecture | sizes | N range | alpha (params) | beta (FLOPs) |',
           '|---|---|---|---|---|']
  for arch, p in sorted(points.items()):
    alpha = power_law([q['params'] for q in p], [q['loss'] for q in p])[1]
    beta = power_law([q['flops'] for q in p], [q['loss'] for q in p])[1]
    star = '*' if any(q['estimated'] for q in p) else ''
    lines.append(f'| {arch} | {len(p)} | {_fmt(p[0]["params"])} - {_fmt(p[-1]["params"])} | '
                 f'{alpha:.3f} | {beta:.3f}{star} |')
  return '\n'.join(lines) + '\n'
