"""Comparison report: run or sweep workdirs -> a markdown and a CSV table, and PNG plots.

  python experiments/report.py RUN_OR_SWEEP_DIR [...] [--out DIR]

Writes DIR/report.md (table + plots), DIR/report.csv and the plots whose inputs exist (DIR defaults to the one
path given, else ./report). Table: one row per group of finished runs that differ only in `seed`, numbers as
mean ± sample std over the seeds; crashed sweep trials (failed.json) get a row marked failed.

Inputs, found in every run directory under the paths (recursively):
  summary.json, config.json, metrics.jsonl   written by seqmodels/train/loop.py (metrics.jsonl: one
      {"step", "split": "train"|"eval", "loss", ...} per line); summary.json may hold peak_memory_bytes.
  failed.json        {"error": "<last line>", "detail": "..."}: a sweep trial that crashed (seqmodels/sweep.py).
  cost.json          step time and memory vs sequence length, one record per measured case:
      {"device": "<optional>", "entries": [{"model": "lstm", "seq_len": 256, "batch_size": 32, "step_ms": 8.4,
       "peak_memory_bytes": 1.2e9, "tokens_per_sec": 9.7e5, "label": "<optional; default model>"}, ...]}
      -> cost_vs_length.png (any of step_ms / peak_memory_bytes may be missing or null).
  gradient_flow.json ||dL/dh_t|| for every step t (seqmodels/analysis/gradient_flow.py), the loss read at
      position `loss_position` (default: the last, T-1):
      {"loss_position": <optional int>, "series": [{"model": "rnn", "site": "layer0/h", "step": <optional
       training step>, "label": "<optional>", "norms": [T floats]}, ...]} -> gradient_flow.png, the norm vs
      the distance loss_position - t on a log scale.
  attention_maps.npz one example's attention weights: arrays `layer<l>` of shape [heads, T_query, T_key] (or
      [T_query, T_key]), rows summing to 1; optional `tokens` (or `query_tokens` / `key_tokens`), 1-D string
      arrays for tick labels -> attention_<run>.png, one heatmap per layer and head.
Plots over the runs: learning_curves.png (train and eval loss vs step) and, when the runs differ in data.max_len
or data.seq_len, metric_vs_length.png (final eval metrics vs that length, one line per model).
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import math
import os
import re
from typing import Any

import numpy as np

NAT_TO_BIT = 1 / math.log(2)
# (column, how to read it from a run: a dotted summary key, or a function of the run)
COLUMNS = [
    ('params', 'params'),
    ('final eval bits/token', 'eval.bits_per_token'),  # = loss (nats/token) / ln 2
    ('final eval accuracy', 'eval.accuracy'), ('final eval seq. accuracy', 'eval.sequence_accuracy'),
    ('best eval bits/token', lambda r: _num(_get(r['summary'], 'best_eval_loss')) * NAT_TO_BIT),
    ('best eval seq. accuracy', lambda r: _best(r, 'sequence_accuracy', max)),
    ('tokens/s', 'tokens_per_sec'), ('train time (s)', 'train_seconds'), ('wall time (s)', 'wall_seconds'),
    ('peak memory (MiB)', lambda r: _num(_get(r['summary'], 'peak_memory_bytes')) / 2**20),
]
LENGTH_FIELDS = ('data.max_len', 'data.seq_len')


# --- reading runs -------------------------------------------------------------------------------------------------

def find_runs(paths: list[str]) -> list[str]:
  """Run directories under `paths`: any directory holding a summary.json or failed.json (a run, or a sweep)."""
  runs = []
  for p in paths:
    if any(os.path.exists(os.path.join(p, f)) for f in ('summary.json', 'failed.json')):
      runs.append(p)
    else:
      found = glob.glob(os.path.join(p, '**', 'summary.json'), recursive=True)
      found += glob.glob(os.path.join(p, '**', 'failed.json'), recursive=True)
      runs += sorted({os.path.dirname(f) for f in found})
  return runs


def _read_json(path: str):
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def load_runs(dirs: list[str]) -> list[dict[str, Any]]:
  """{'dir', 'name', 'status' (done | failed | unfinished), 'summary', 'config', 'error'} for each run directory."""
  runs = []
  for d in dirs:
    summary = _read_json(os.path.join(d, 'summary.json'))
    failed = _read_json(os.path.join(d, 'failed.json'))
    status = 'done' if summary else 'failed' if failed else 'unfinished'
    runs.append({'dir': d, 'name': os.path.basename(os.path.normpath(d)), 'status': status, 'summary': summary or {},
                 'config': _read_json(os.path.join(d, 'config.json')) or {},
                 'error': (failed or {}).get('error', '')})
  return runs


def load_summaries(dirs: list[str]) -> list[dict[str, Any]]:
  return load_runs(dirs)


def read_metrics(run_dir: str) -> list[dict[str, Any]]:
  """The records of run_dir/metrics.jsonl (skipping a torn last line)."""
  out = []
  try:
    with open(os.path.join(run_dir, 'metrics.jsonl')) as f:
      for line in f:
        try:
          out.append(json.loads(line))
        except ValueError:
          pass
  except OSError:
    pass
  return out


def _get(tree: Any, dotted: str):
  for k in dotted.split('.'):
    tree = tree.get(k) if isinstance(tree, dict) else None
  return tree


def _num(v) -> float:
  return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan


def _best(run, metric: str, pick) -> float:
  values = [m[metric] for m in read_metrics(run['dir']) if m.get('split') == 'eval' and metric in m]
  return float(pick(values)) if values else math.nan


def _model(run) -> str:
  m = run['summary'].get('model') or _get(run['config'], 'model.name')
  if not m:
    m = re.search(r'model\.name=([^,]+)', run['name'])
    m = m.group(1) if m else '-'
  return m


def _without(name: str, fields: tuple[str, ...]) -> str:
  for f in fields:
    name = re.sub(rf'(^|,){re.escape(f)}=[^,]*', '', name)
  return name.strip(',') or 'base'


def _config_key(run, drop: tuple[str, ...]) -> str:
  """Identity of a run's setting with the fields `drop` left out (config.json, else the run's name)."""
  if not run['config']:
    return _without(run['name'], drop)
  c = json.loads(json.dumps(run['config']))
  for f in drop:
    *parents, leaf = f.split('.')
    node = _get(c, '.'.join(parents)) if parents else c
    if isinstance(node, dict):
      node.pop(leaf, None)
  return json.dumps(c, sort_keys=True)


def group_by_seed(runs: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
  """Finished runs that differ only in `seed`, together, in first-seen order; every other run on its own."""
  groups: dict[str, list] = {}
  for i, r in enumerate(runs):
    key = _config_key(r, ('seed',)) if r['status'] == 'done' else f'#{i}'
    groups.setdefault(key, []).append(r)
  return list(groups.values())


# --- the table ----------------------------------------------------------------------------------------------------

def _value(run, how) -> float:
  return _num(_get(run['summary'], how)) if isinstance(how, str) else how(run)


def table_rows(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
  """One row per seed group: run, model, status, seeds, and {column: (mean, std, n)} over the seeds."""
  rows = []
  for group in group_by_seed(runs):
    first = group[0]
    row = {'run': _without(first['name'], ('seed',)) if len(group) > 1 else first['name'], 'model': _model(first),
           'seeds': len(group), 'dirs': [r['dir'] for r in group],
           'status': first['status'] if first['status'] != 'failed' else f'failed: {first["error"]}'}
    for col, how in COLUMNS:
      xs = np.array([_value(r, how) for r in group], np.float64)
      xs = xs[np.isfinite(xs)]
      row[col] = (float(xs.mean()), float(xs.std(ddof=1)) if len(xs) > 1 else math.nan, len(xs)) if len(xs) else None
    rows.append(row)
  return rows


def _fmt(x: float) -> str:
  if not math.isfinite(x):
    return str(x)
  if abs(x) >= 1000:
    return f'{x:,.0f}'
  return f'{x:.4g}'


def _two_digits(x: float) -> str:
  """x rounded to two significant digits, without an exponent: 707.1 -> '710', 0.01127 -> '0.011'."""
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
  """CSV: run, model, status, seeds, then <column> mean and <column> std for every numeric column."""
  rows = table_rows(runs)
  with open(path, 'w', newline='') as f:
    w = csv.writer(f)
    w.writerow(['run', 'model', 'status', 'seeds'] + [f'{c} {s}' for c, _ in COLUMNS for s in ('mean', 'std')])
    for r in rows:
      nums = []
      for c, _ in COLUMNS:
        nums += ['', ''] if r[c] is None else [repr(r[c][0]), '' if r[c][2] < 2 else repr(r[c][1])]
      w.writerow([r['run'], r['model'], r['status'], r['seeds']] + nums)


# --- plots ----------------------------------------------------------------------------------------------------------

def _pyplot():
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  return plt


def _plain_log_labels(ax, axis: str = 'y') -> None:
  """Log-axis labels as plain numbers (0.5, 2, 20), on the decades and at 2x and 5x, instead of 2x10^0."""
  from matplotlib import ticker
  label = lambda keep: ticker.FuncFormatter(lambda v, _: f'{v:g}' if keep(f'{v:.0e}'[0]) else '')
  target = ax.yaxis if axis == 'y' else ax.xaxis
  target.set_major_formatter(label(lambda d: True))
  target.set_minor_formatter(label(lambda d: d in '25'))


def _ticks_at(ax, values) -> None:
  """x ticks exactly at the swept values (a log x axis otherwise labels 6x10^1 and the like)."""
  values = sorted(set(values))
  ax.set_xticks(values, [str(v) for v in values])
  ax.xaxis.set_minor_locator(__import__('matplotlib').ticker.NullLocator())


def _save(fig, path: str) -> str:
  fig.tight_layout()
  fig.savefig(path, dpi=110, bbox_inches='tight')
  _pyplot().close(fig)
  return path


def plot_learning_curves(runs: list[dict[str, Any]], path: str) -> str | None:
  """Train and eval loss vs step, one line per run (seeds of one setting share a colour and a legend entry)."""
  curves = [(g, r, read_metrics(r['dir'])) for g, group in enumerate(group_by_seed(runs)) for r in group]
  curves = [c for c in curves if any('loss' in m for m in c[2])]
  if not curves:
    return None
  plt = _pyplot()
  from matplotlib.lines import Line2D
  fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
  colours = plt.get_cmap('tab10' if len({g for g, _, _ in curves}) <= 10 else 'tab20')
  legend = {}
  for g, r, metrics in curves:
    colour = colours(g % colours.N)
    legend.setdefault(g, Line2D([], [], color=colour, label=_without(r['name'], ('seed',))))
    for ax, split in zip(axes, ('train', 'eval')):
      pts = sorted((m['step'], m['loss']) for m in metrics if m.get('split') == split and 'loss' in m)
      if pts:
        ax.plot(*zip(*pts), color=colour, marker='o' if split == 'eval' else None, markersize=3, linewidth=1.3,
                alpha=0.85)
  for ax, split in zip(axes, ('train', 'eval')):
    ax.set(title=f'{split} loss', xlabel='training step', ylabel='loss (nats/token)', yscale='log')
    _plain_log_labels(ax)
    ax.grid(True, which='both', alpha=0.3)
  handles = list(legend.values())
  fig.suptitle('Learning curves')
  fig.tight_layout()
  fig.legend(handles=handles, loc='upper center', ncol=min(2, len(handles)), fontsize=8,
             bbox_to_anchor=(0.5, 0.0), frameon=False)
  fig.savefig(path, dpi=110, bbox_inches='tight')
  plt.close(fig)
  return path


def length_field(runs: list[dict[str, Any]]) -> str | None:
  """data.max_len or data.seq_len when the finished runs take two or more values of it."""
  done = [r for r in runs if r['status'] == 'done' and r['config']]
  for f in LENGTH_FIELDS:
    if len({_get(r['config'], f) for r in done}) > 1:
      return f
  return None


def plot_metric_vs_length(runs: list[dict[str, Any]], path: str) -> str | None:
  """Final eval bits/token and (sequence) accuracy vs the swept length, one line per setting, ± std over seeds."""
  field = length_field(runs)
  if field is None:
    return None
  done = [r for r in runs if r['status'] == 'done' and r['config']]
  metrics = [('eval.bits_per_token', 'eval bits/token', 'linear')]
  acc = 'eval.sequence_accuracy' if any(_get(r['summary'], 'eval.sequence_accuracy') is not None for r in done) \
      else 'eval.accuracy'
  metrics.append((acc, acc.split('.')[1].replace('_', ' '), 'linear'))
  series: dict[str, dict[int, list]] = {}
  names = {}
  for r in done:
    key = _config_key(r, ('seed', field))
    names.setdefault(key, _without(r['name'], ('seed', field)))
    series.setdefault(key, {}).setdefault(_get(r['config'], field), []).append(r)
  plt = _pyplot()
  fig, axes = plt.subplots(1, len(metrics), figsize=(6 * len(metrics), 4.5))
  for ax, (key, label, scale) in zip(axes, metrics):
    for s, by_len in series.items():
      xs = sorted(by_len)
      ys = [[_num(_get(r['summary'], key)) for r in by_len[x]] for x in xs]
      ax.errorbar(xs, [np.mean(y) for y in ys], yerr=[np.std(y, ddof=1) if len(y) > 1 else 0 for y in ys],
                  marker='o', capsize=3, label=names[s])
    ax.set(title=f'final {label} vs {field}', xlabel=field, ylabel=label, xscale='log', yscale=scale)
    _ticks_at(ax, [_get(r['config'], field) for r in done])
    ax.grid(True, alpha=0.3)
  axes[-1].legend(fontsize=8)
  return _save(fig, path)


def plot_cost(cost_files: list[str], path: str) -> str | None:
  """Step time and peak memory vs sequence length from cost.json files, one line per model (log-log)."""
  lines: dict[str, list] = {}
  for p in cost_files:
    data = _read_json(p) or {}
    prefix = f'{os.path.basename(os.path.dirname(p))}: ' if len(cost_files) > 1 else ''
    for e in data.get('entries', []):
      lines.setdefault(prefix + str(e.get('label') or e.get('model', '?')), []).append(e)
  panels = [(k, t, y) for k, t, y in (('step_ms', 'step time', 'ms per step'),
                                      ('peak_memory_bytes', 'peak memory', 'MiB'))
            if any(_num(e.get(k)) == _num(e.get(k)) for es in lines.values() for e in es)]
  if not panels:
    return None
  plt = _pyplot()
  fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
  for ax, (key, title, unit) in zip(axes[0], panels):
    for label, es in lines.items():
      pts = sorted((e['seq_len'], _num(e.get(key)) / (2**20 if key == 'peak_memory_bytes' else 1)) for e in es)
      pts = [p for p in pts if math.isfinite(p[1])]
      if pts:
        ax.plot(*zip(*pts), marker='o', label=label)
    ax.set(title=f'{title} vs sequence length', xlabel='sequence length (tokens)', ylabel=unit, xscale='log',
           yscale='log')
    _ticks_at(ax, [e['seq_len'] for es in lines.values() for e in es])
    _plain_log_labels(ax)
    ax.grid(True, which='both', alpha=0.3)
    ax.legend(fontsize=8)
  return _save(fig, path)


def plot_gradient_flow(files: list[str], path: str) -> str | None:
  """||dL/dh_t|| vs the distance from the loss position, log y, one line per model and site."""
  series = []
  for p in files:
    data = _read_json(p) or {}
    for s in data.get('series', []):
      norms = np.asarray(s.get('norms', []), np.float64)
      if norms.size:
        pos = data.get('loss_position', s.get('loss_position', len(norms) - 1))
        pos = pos % len(norms)
        label = s.get('label') or ' '.join(str(x) for x in (s.get('model', ''), s.get('site', '')) if x)
        label += f' (step {s["step"]})' if s.get('step') is not None else ''
        series.append((label, pos - np.arange(len(norms)), norms))
  if not series:
    return None
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(7.5, 4.8))
  for label, distance, norms in series:
    keep = (distance >= 0) & (norms > 0)
    ax.plot(distance[keep], norms[keep], marker='.', label=label)
  ax.set(title='Gradient flow through time', xlabel='time-step distance from the loss (T_loss - t)',
         ylabel='||dL/dh_t|| (mean over the batch)', yscale='log')
  ax.grid(True, which='both', alpha=0.3)
  ax.legend(fontsize=8)
  return _save(fig, path)


def plot_attention(npz_path: str, path: str, title: str, max_layers: int = 6, max_heads: int = 8) -> str | None:
  """Heatmaps of one example's attention weights: a row per layer, a column per head."""
  with np.load(npz_path, allow_pickle=False) as z:
    layers = sorted((k for k in z.files if re.fullmatch(r'layer\d+', k)), key=lambda k: int(k[5:]))[:max_layers]
    maps = [np.asarray(z[k], np.float32).reshape((-1,) + z[k].shape[-2:])[:max_heads] for k in layers]
    q_tok = z['query_tokens'] if 'query_tokens' in z.files else z['tokens'] if 'tokens' in z.files else None
    k_tok = z['key_tokens'] if 'key_tokens' in z.files else q_tok
  if not maps:
    return None
  plt = _pyplot()
  heads = max(m.shape[0] for m in maps)
  fig, axes = plt.subplots(len(maps), heads, figsize=(2.8 * heads + 1, 2.6 * len(maps) + 0.6), squeeze=False)
  for l, (name, m) in enumerate(zip(layers, maps)):
    for h in range(heads):
      ax = axes[l][h]
      if h >= m.shape[0]:
        ax.axis('off')
        continue
      im = ax.imshow(m[h], cmap='viridis', vmin=0, vmax=max(float(m[h].max()), 1e-9), aspect='auto')
      ax.set_title(f'{name} head {h}', fontsize=9)
      ax.set_xlabel('key position', fontsize=8)
      ax.set_ylabel('query position', fontsize=8)
      if k_tok is not None and len(k_tok) <= 40:
        ax.set_xticks(range(len(k_tok)), [str(t) for t in k_tok], fontsize=6, rotation=90)
      if q_tok is not None and len(q_tok) <= 40:
        ax.set_yticks(range(len(q_tok)), [str(t) for t in q_tok], fontsize=6)
      fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
  fig.suptitle(f'Attention weights: {title}')
  return _save(fig, path)


# --- everything -------------------------------------------------------------------------------------------------

def write_report(paths: list[str], out_dir: str) -> dict[str, str]:
  """Writes report.md, report.csv and the plots with inputs under `paths` into out_dir; {kind: file}."""
  os.makedirs(out_dir, exist_ok=True)
  runs = load_runs(find_runs(paths))
  files = {}
  plots = {'learning_curves': plot_learning_curves(runs, os.path.join(out_dir, 'learning_curves.png')),
           'metric_vs_length': plot_metric_vs_length(runs, os.path.join(out_dir, 'metric_vs_length.png'))}
  found = lambda name: sorted({f for p in paths for f in glob.glob(os.path.join(p, '**', name), recursive=True)})
  plots['cost_vs_length'] = plot_cost(found('cost.json'), os.path.join(out_dir, 'cost_vs_length.png'))
  plots['gradient_flow'] = plot_gradient_flow(found('gradient_flow.json'), os.path.join(out_dir, 'gradient_flow.png'))
  for npz in found('attention_maps.npz'):
    name = os.path.basename(os.path.dirname(os.path.abspath(npz)))
    safe = re.sub(r'[^A-Za-z0-9._=+-]', '_', name)
    plots[f'attention {name}'] = plot_attention(npz, os.path.join(out_dir, f'attention_{safe}.png'), name)
  plots = {k: v for k, v in plots.items() if v}
  md = [f'# Report: {", ".join(paths)}\n', markdown_table(runs) if runs else 'No runs found.\n']
  md += [f'\n![{k if k.startswith("attention") else k.replace("_", " ")}]({os.path.basename(v)})\n'
         for k, v in plots.items()]
  files['markdown'] = os.path.join(out_dir, 'report.md')
  with open(files['markdown'], 'w') as f:
    f.write('\n'.join(md))
  if runs:
    files['csv'] = os.path.join(out_dir, 'report.csv')
    write_csv(runs, files['csv'])
  return {**files, **plots}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('paths', nargs='+', help='run or sweep workdirs')
  parser.add_argument('--out', default='', help='directory for report.md, report.csv and the PNGs '
                      '(default: the one path given, else ./report)')
  args = parser.parse_args()
  runs = find_runs(args.paths)
  if not runs:
    raise SystemExit(f'error: no summary.json or failed.json under {", ".join(args.paths)}: pass finished run or '
                     'sweep workdirs')
  print(markdown_table(load_runs(runs)), end='')
  out = args.out or (args.paths[0] if len(args.paths) == 1 else 'report')
  for kind, path in write_report(args.paths, out).items():
    print(f'{kind}: {path}')


if __name__ == '__main__':
  main()
