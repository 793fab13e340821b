"""The report's PNG plots (matplotlib, Agg backend); each returns its path, or None when its inputs
are absent.

Input formats (cost.json, gradient_flow.json, attention_maps.npz, bleu_by_length.json) are specified
in the docstring of seqmodels/report/__init__.py; seqmodels/report/document.py calls these.
"""

from __future__ import annotations

import itertools
import math
import os
import re
from typing import Any

import numpy as np

from seqmodels.report.tables import (ADDING_MEAN_PREDICTOR_MSE, architecture, as_float,
                                     by_setting, get_field, is_regression, is_task_data,
                                     length_axis, power_law, read_json, read_metrics,
                                     scaling_points)


def _pyplot():
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  return plt


def _plain_log_labels(ax) -> None:
  """Plain-number labels (0.5, 2, 20) on a log y axis, denser when it spans few decades; call after
  plotting."""
  from matplotlib import ticker
  lo, hi = ax.get_ylim()
  decades = math.log10(hi / lo) if lo > 0 and hi > lo else 10
  keep = '123456789' if decades < 1.2 else '25' if decades < 3 else ''
  ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f'{v:g}'))
  ax.yaxis.set_minor_formatter(
      ticker.FuncFormatter(lambda v, _: f'{v:g}' if f'{v:.0e}'[0] in keep else ''))


def _ticks_at(ax, values) -> None:
  """x ticks exactly at the swept values (a log x axis otherwise labels 6x10^1 and the like)."""
  from matplotlib import ticker
  values = sorted(set(values))
  ax.set_xticks(values, [str(v) for v in values])
  ax.xaxis.set_minor_locator(ticker.NullLocator())


def _save(fig, path: str) -> str:
  fig.tight_layout()
  fig.savefig(path, dpi=110, bbox_inches='tight')
  _pyplot().close(fig)
  return path


def _save_with_legend(fig, handles, path: str) -> str:
  """Saves `fig` with one legend for all its panels below them (long run names do not cover the
  data)."""
  fig.tight_layout()
  fig.legend(handles=handles, loc='upper center', ncol=min(2, len(handles)), fontsize=8,
             bbox_to_anchor=(0.5, 0.0), frameon=False)
  fig.savefig(path, dpi=110, bbox_inches='tight')
  _pyplot().close(fig)
  return path


def curve_series(runs: list[dict[str, Any]], axis) -> dict[str, list[dict[str, Any]]]:
  """{legend label: runs}: finished runs by setting (their seeds share a colour), then every run
  that did not finish (a crashed or diverged sweep trial) alone, labelled with the step its loss
  diverged at if it did."""
  series = by_setting(runs, axis)
  for r in runs:
    if r['status'] != 'done':
      diverged = re.search(r'loss became (\S+) at step (\d+)', r['error'])
      how = f': loss {diverged[1]} at step {diverged[2]}' if diverged else ''
      series.setdefault(f'{r["name"]} ({r["status"]}{how})', []).append(r)
  return series


def _curves_vs_step(runs: list[dict[str, Any]], path: str, panels: list[tuple[str, str, str, str]],
                    title: str, threshold: str = '', x: str = 'step') -> str | None:
  """`panels` [(split, metric, panel title, y label)] of metrics.jsonl vs step on a log y axis, one
  line per run, a colour per setting; side by side, or with a swept length a row per panel and a
  column per length. x='train_seconds' puts each point at the run's training time when it was logged
  (its train record of that step); a run whose records lack it is left out, and a single point (the
  counted n-gram) is a star.

  A run that did not finish ends in an x at its last logged point. Loss panels stop two decades
  above the highest loss a finished run logged, so a diverged run leaves through the top instead of
  flattening the others; `threshold` (a config field, e.g. 'optim.clip_norm') draws each positive
  value it takes as a dotted line.
  """
  axis = length_axis(runs)
  series = curve_series(runs, axis)
  curves = [(i, r, read_metrics(r['dir'])) for i, members in enumerate(series.values())
            for r in members]
  curves = [c for c in curves
            if any(m.get('split') == s and k in m for m in c[2] for s, k, _, _ in panels)]
  if x != 'step':
    curves = [c for c in curves if any(m.get('split') == 'train' and x in m for m in c[2])]
  if not curves:
    return None
  plt = _pyplot()
  from matplotlib.lines import Line2D
  length_of = lambda r: get_field(r['config'], axis[0]) if axis else None
  lengths = (sorted({length_of(r) for _, r, _ in curves if length_of(r) is not None}) if axis
             else [None])
  if len(lengths) > 1:  # a row per panel, a column per length
    fig, axes = plt.subplots(len(panels), len(lengths),
                             figsize=(4.2 * max(len(lengths), 3), 4 * len(panels)), squeeze=False)
  else:  # the panels side by side
    fig, grid = plt.subplots(1, len(panels), figsize=(max(6.5 * len(panels), 8), 4.8),
                             squeeze=False)
    axes = [[ax] for ax in grid[0]]
  colours = plt.get_cmap('tab10' if len(series) <= 10 else 'tab20')
  names = list(series)
  tops, lows, ends = {}, {}, []
  for i, r, metrics in curves:
    col = lengths.index(length_of(r)) if length_of(r) in lengths else 0
    for row, (split, key, _, _) in enumerate(panels):
      # a resumed run logs again the steps after its checkpoint: the last record of a step wins
      pts = sorted({m['step']: m[key] for m in metrics
                    if m.get('split') == split and key in m}.items())
      pts = [(s, v) for s, v in pts if isinstance(v, (int, float)) and math.isfinite(v) and v > 0]
      if x != 'step':  # the step's place on the x axis, from the train record of that step
        at = {m['step']: m[x] for m in metrics if m.get('split') == 'train' and x in m}
        pts = [(at[s], v) for s, v in pts if s in at]
      if not pts:
        continue
      # one fit (the n-gram), at the time it took
      if len(pts) == 1 and r['status'] == 'done' and x != 'step':
        axes[row][col].plot(*pts[0], color=colours(i % colours.N), marker='*', markersize=12,
                            linestyle='')
      elif len(pts) == 1 and r['status'] == 'done':
        # counted, not trained (the n-gram): a level, not a dot
        axes[row][col].axhline(pts[0][1], color=colours(i % colours.N), linestyle='--',
                               linewidth=1.3, alpha=0.85)
      else:
        axes[row][col].plot(*zip(*pts), color=colours(i % colours.N),
                            marker='o' if split == 'eval' else None, markersize=3, linewidth=1.3,
                            alpha=0.85)
      lows[row, col] = min(lows.get((row, col), math.inf), min(v for _, v in pts))
      if r['status'] == 'done':
        tops[row] = max(tops.get(row, 0.0), max(v for _, v in pts))
      else:
        ends.append((row, col, *pts[-1], colours(i % colours.N)))
  handles = [Line2D([], [], color=colours(i % colours.N), label=n) for i, n in enumerate(names)]
  thresholds = (
      sorted({v for _, r, _ in curves if (v := as_float(get_field(r['config'], threshold))) > 0})
      if threshold else [])
  for col, length in enumerate(lengths):
    for row, (split, key, name, ylabel) in enumerate(panels):
      ax = axes[row][col]
      for v in thresholds:
        ax.axhline(v, color='0.3', linestyle=':', linewidth=1.2)
      where = f' ({axis[0]}={length})' if axis else ''
      ax.set(title=f'{name}{where}', xlabel='training step' if x == 'step' else 'training time (s)',
             ylabel=ylabel, yscale='log')
      if key == 'loss' and row in tops and ax.get_ylim()[1] > 100 * tops[row]:
        ax.set_ylim(min(lows.get((row, col), tops[row]), tops[row]) / 2, 100 * tops[row])
      _plain_log_labels(ax)
      ax.grid(True, which='both', alpha=0.3)
  # a diverged run's end stays in view, at the top edge if above it
  for row, col, step, value, colour in ends:
    ax = axes[row][col]
    ax.plot(step, min(value, ax.get_ylim()[1] / 1.3), marker='x', color=colour, markersize=9,
            markeredgewidth=2, clip_on=False)
  handles += [Line2D([], [], color='0.3', linestyle=':', label=f'{threshold}={v:g}')
              for v in thresholds]
  if any(r['status'] != 'done' for _, r, _ in curves):
    handles.append(Line2D([], [], color='0.3', marker='x', linestyle='',
                          label='last step logged (failed or unfinished)'))
  fig.suptitle(title)
  return _save_with_legend(fig, handles, path)


def learning_curves(runs: list[dict[str, Any]], path: str) -> str | None:
  """Train and eval loss vs step, one line per run, a colour per setting (its seeds share it); with
  a swept length, one column of panels per length."""
  unit = _loss_unit(runs)
  return _curves_vs_step(runs, path,
                         [(s, 'loss', f'{s} loss', f'loss ({unit})') for s in ('train', 'eval')],
                         'Learning curves')


def _loss_unit(runs: list[dict[str, Any]]) -> str:
  done = [r for r in runs if r['status'] == 'done'] or runs
  return ('MSE' if all(is_regression(r) for r in done) else 'nats/token'
          if not any(is_regression(r) for r in done) else 'MSE or nats/token')


def loss_vs_time(runs: list[dict[str, Any]], path: str) -> str | None:
  """Eval loss vs training time (seconds, compilation in, evaluation out; summed over resumed
  sessions): which model gets how far per second on this hardware, a colour per setting."""
  return _curves_vs_step(runs, path, [('eval', 'loss', 'eval loss', f'loss ({_loss_unit(runs)})')],
                         'Eval loss vs training time', x='train_seconds')


def grad_norm(runs: list[dict[str, Any]], path: str) -> str | None:
  """The training gradient's global norm (before clipping) vs step, log scale, optim.clip_norm
  dotted."""
  return _curves_vs_step(runs, path,
                         [('train', 'grad_norm', 'gradient norm', '||grad|| (before clipping)')],
                         'Gradient norm', threshold='optim.clip_norm')


def length_metrics(done: list[dict[str, Any]]) -> list[tuple[str, str]]:
  """[(summary key, label)] of metric_vs_length's panels: those of bits/token, MSE and accuracy
  (sequence accuracy for token tasks) that some finished run has."""
  acc = ('eval.sequence_accuracy' if any(is_task_data(r) and not is_regression(r) for r in done)
         else 'eval.accuracy')
  return [(key, label)
          for key, label in (('eval.bits_per_token', 'eval bits/token'), ('eval.mse', 'eval MSE'),
                             (acc, acc.split('.')[1].replace('_', ' ')))
          if any(math.isfinite(as_float(get_field(r['summary'], key))) for r in done)]


def metric_vs_length(runs: list[dict[str, Any]], path: str) -> str | None:
  """Final eval metrics vs the swept length, one line per setting, ± std over seeds: bits/token, MSE
  (regression runs; log scale, the adding problem's mean predictor dashed) and (sequence) accuracy,
  each where runs have it."""
  axis = length_axis(runs)
  if axis is None:
    return None
  field = axis[0]
  done = [r for r in runs if r['status'] == 'done' and r['config']]
  metrics = length_metrics(done)
  if not metrics:
    return None
  plt = _pyplot()
  fig, axes = plt.subplots(1, len(metrics), figsize=(6.5 * len(metrics), 4.8), squeeze=False)
  for ax, (key, label) in zip(axes[0], metrics):
    for name, members in by_setting(done, axis).items():
      by_len: dict[Any, list] = {}
      for r in members:
        by_len.setdefault(get_field(r['config'], field), []).append(
            as_float(get_field(r['summary'], key)))
      xs = sorted(by_len)
      ax.errorbar(xs, [np.mean(by_len[x]) for x in xs], marker='o', capsize=3, label=name,
                  yerr=[np.std(by_len[x], ddof=1) if len(by_len[x]) > 1 else 0 for x in xs])
    ax.set(title=f'final {label} vs {field}', xlabel=field, ylabel=label, xscale='log')
    if key == 'eval.mse':
      ax.set_yscale('log')
      if all(is_regression(r) for r in done):
        ax.axhline(ADDING_MEAN_PREDICTOR_MSE, color='0.3', linestyle='--', label='always '
                   f'predicting the mean, 1 (MSE = Var = {ADDING_MEAN_PREDICTOR_MSE:.3g})')
      _plain_log_labels(ax)
    _ticks_at(ax, [get_field(r['config'], field) for r in done])
    ax.grid(True, which='both' if key == 'eval.mse' else 'major', alpha=0.3)
  handles = {l: h for ax in axes[0] for h, l in zip(*ax.get_legend_handles_labels())}
  return _save_with_legend(fig, list(handles.values()), path)


def cost_vs_length(cost_files: list[str], path: str) -> str | None:
  """Step time and peak memory vs sequence length from cost.json files, one line per model
  (log-log).

  A model's first case that did not finish (e.g. over_budget, out_of_memory) is named in its legend
  entry; the memory panel says what its bytes are when cost.json's `memory_source` does (device peak
  or XLA's buffer plan).
  """
  lines: dict[str, list] = {}
  setups, sources = [], set()
  for p in cost_files:
    data = read_json(p) or {}
    prefix = f'{os.path.basename(os.path.dirname(p))}: ' if len(cost_files) > 1 else ''
    setups.append(
        ', '.join(str(x) for x in (data.get('device'), data.get('dtype'),
                                   data.get('batch_size') and f'batch {data["batch_size"]}') if x))
    for e in data.get('entries', []):
      lines.setdefault(prefix + str(e.get('label') or e.get('model', '?')), []).append(e)
      sources.update([e['memory_source']] if e.get('memory_source') else [])
  memory = {'compiled': 'memory (XLA buffer plan)', 'device_peak': 'peak device memory'}.get(
      sources.pop() if len(sources) == 1 else '', 'peak memory')
  panels = [(k, t, y) for k, t, y in
            (('step_ms', 'step time', 'ms per step'), ('peak_memory_bytes', memory, 'MiB'))
            if any(as_float(e.get(k)) == as_float(e.get(k)) for es in lines.values() for e in es)]
  if not panels:
    return None
  plt = _pyplot()
  fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
  if len(set(setups)) == 1 and setups[0]:
    fig.suptitle(f'Training step cost vs sequence length ({setups[0]})')
  for ax, (key, title, unit) in zip(axes[0], panels):
    for label, es in lines.items():
      pts = sorted(
          (e['seq_len'], as_float(e.get(key)) / (2**20 if key == 'peak_memory_bytes' else 1))
          for e in es)
      pts = [p for p in pts if math.isfinite(p[1])]
      unfinished = sorted((e['seq_len'], e['status']) for e in es
                          if e.get('status', 'ok') not in ('ok', 'skipped'))
      note = (
          f' ({unfinished[0][1].replace("_", " ")} at T={unfinished[0][0]})' if unfinished else '')
      if pts:
        ax.plot(*zip(*pts), marker='o', label=label + note)
    ax.set(title=f'{title} vs sequence length', xlabel='sequence length (tokens)', ylabel=unit,
           xscale='log', yscale='log')
    _ticks_at(ax, [e['seq_len'] for es in lines.values() for e in es])
    _plain_log_labels(ax)
    ax.grid(True, which='both', alpha=0.3)
    ax.legend(fontsize=8)
  return _save(fig, path)


def gradient_flow_series(files: list[str]) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
  """(group, label, distance from the loss [T], norms [T]) for every series of gradient_flow.json
  `files`: a group (one colour) per model and run; two runs of one model (a GRU with and without
  attention) are told apart in the labels by their run directories."""
  loaded = [(p, data, s) for p in files for data in [read_json(p) or {}]
            for s in data.get('series', []) if len(s.get('norms', []))]
  runs_of_model: dict[str, set] = {}
  for p, _, s in loaded:
    runs_of_model.setdefault(s.get('model', ''), set()).add((p, s.get('run')))
  series = []
  for p, data, s in loaded:
    norms = np.asarray(s['norms'], np.float64)
    pos = data.get('loss_position', s.get('loss_position', len(norms) - 1)) % len(norms)
    name = (s['run'] if s.get('run') and len(runs_of_model[s.get('model', '')]) > 1
            else s.get('model', ''))
    label = s.get('label') or ' '.join(str(x) for x in (name, s.get('site', '')) if x)
    label += ', from the source\'s end' if s.get('time') == 'source' else ''
    label += f' (step {s["step"]})' if s.get('step') is not None else ''
    group = s.get('label') or f'{p}:{s.get("model", "")}:{s.get("run", "")}'
    series.append((group, label, pos - np.arange(len(norms)), norms))
  return series


def gradient_flow(files: list[str], path: str) -> str | None:
  """||dL/dh_t|| vs the distance from the loss position, log y, one line per model and site: one
  colour per model, one line style per site of that model (its layers or blocks, in order), the
  legend beside the axes."""
  series = gradient_flow_series(files)
  if not series:
    return None
  plt = _pyplot()
  groups = list(dict.fromkeys(g for g, *_ in series))
  colours = plt.get_cmap('tab10' if len(groups) <= 10 else 'tab20')
  styles = ['-', '--', ':', '-.']
  fig, (ax, rel) = plt.subplots(1, 2, figsize=(14, 4.8))
  seen: dict[str, int] = {}
  for group, label, distance, norms in series:
    keep = (distance >= 0) & (norms > 0)
    k = seen[group] = seen.get(group, -1) + 1
    style = dict(marker='.', markersize=3, color=colours(groups.index(group) % colours.N),
                 linestyle=styles[k % len(styles)])
    ax.plot(distance[keep], norms[keep], label=label, **style)
    at_loss = norms[distance == 0]
    # a well-fit loss has a small gradient: the right panel removes the scale
    if at_loss.size and at_loss[0] > 0:
      rel.plot(distance[keep], norms[keep] / at_loss[0], **style)
  ax.set(title='Gradient flow through time', xlabel='time-step distance from the loss (T_loss - t)',
         ylabel='||dL/dh_t|| (mean over the batch)', yscale='log')
  rel.set(title='Relative to the loss position',
          xlabel='time-step distance from the loss (T_loss - t)',
          ylabel='||dL/dh_t|| / ||dL/dh_T_loss||', yscale='log')
  for a in (ax, rel):
    a.grid(True, which='both', alpha=0.3)
  rel.legend(*ax.get_legend_handles_labels(), fontsize=8, loc='upper left',
             bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
  return _save(fig, path)


def _attention_panels(z, max_layers: int = 6, max_heads: int = 8, max_examples: int = 8):
  """[(title, weights [Tq, Tk], key tokens, query tokens, key label, query label)], one row of the
  grid each."""
  if 'count' in z.files:  # seq2seq examples (seqmodels/data/translation.py): target x source
    return [[(f'example {i}', z[f'weights_{i}'], z.get(f'src_{i}'), z.get(f'tgt_{i}'), 'source',
              'target')] for i in range(min(int(z['count']), max_examples))]
  layers = sorted((k for k in z.files if re.fullmatch(r'layer\d+', k)),
                  key=lambda k: int(k[5:]))[:max_layers]
  q_tok = (z['query_tokens'] if 'query_tokens' in z.files else z['tokens'] if 'tokens' in z.files
           else None)
  k_tok = z['key_tokens'] if 'key_tokens' in z.files else q_tok
  rows = []
  for name in layers:
    m = np.asarray(z[name], np.float32).reshape((-1,) + z[name].shape[-2:])[:max_heads]
    rows.append([(f'{name} head {h}', m[h], k_tok, q_tok, 'key position', 'query position')
                 for h in range(len(m))])
  return rows


def _tick(token) -> str:
  """A token's tick label, with a newline (a character, or a word model's <eos>) and a lone space
  made visible."""
  text = str(token)
  return '\\n' if text == '\n' else '\u2423' if text == ' ' else text.replace('\n', '\\n')


def attention(npz_path: str, path: str, title: str) -> str | None:
  """Heatmaps of attention weights: a row per layer (a column per head), or one panel per seq2seq
  example."""
  with np.load(npz_path, allow_pickle=False) as z:
    rows = _attention_panels(z)
  if not rows:
    return None
  plt = _pyplot()
  if len(rows[0]) == 1 and len(rows) > 1:  # one panel per example: lay them out in rows of up to 4
    panels = [r[0] for r in rows]
    rows = [panels[i:i + 4] for i in range(0, len(panels), 4)]
  cols = max(len(r) for r in rows)
  fig, axes = plt.subplots(len(rows), cols, figsize=(3.2 * cols + 1, 3.0 * len(rows) + 0.6),
                           squeeze=False)
  for ax_row, row in zip(axes, rows):
    for ax, panel in itertools.zip_longest(ax_row, row):
      if panel is None:
        ax.axis('off')
        continue
      name, w, k_tok, q_tok, k_label, q_label = panel
      im = ax.imshow(np.asarray(w, np.float32), cmap='viridis', vmin=0,
                     vmax=max(float(np.max(w)), 1e-9), aspect='auto')
      ax.set_title(name, fontsize=9)
      ax.set_xlabel(k_label, fontsize=8)
      ax.set_ylabel(q_label, fontsize=8)
      if k_tok is not None and len(k_tok) <= 40:
        ax.set_xticks(range(len(k_tok)), [_tick(t) for t in k_tok], fontsize=6, rotation=90)
      if q_tok is not None and len(q_tok) <= 40:
        ax.set_yticks(range(len(q_tok)), [_tick(t) for t in q_tok], fontsize=6)
      fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
  fig.suptitle(f'Attention weights: {title}')
  return _save(fig, path)


def bleu_by_length(runs: list[dict[str, Any]], path: str) -> str | None:
  """BLEU per source-length bucket (bleu_by_length.json of seq2seq runs), one line per run and
  decoding."""
  lines = []
  for r in runs:
    data = read_json(os.path.join(r['dir'], 'bleu_by_length.json')) or {}
    for decoding, buckets in data.items():
      if isinstance(buckets, list) and buckets:
        pts = [((b['min_len'] + b['max_len']) / 2, b['bleu']) for b in buckets]
        lines.append((f'{r["name"]} ({decoding})', pts))
  if not lines:
    return None
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(7.5, 4.8))
  for label, pts in lines:
    ax.plot(*zip(*pts), marker='o', label=label)
  ax.set(title='BLEU vs source sentence length', xlabel='source length (tokens, bucket middle)',
         ylabel='BLEU')
  ax.grid(True, alpha=0.3)
  return _save_with_legend(fig, ax.get_legend_handles_labels()[0], path)


# --- recall (seqmodels/data/recall.py): Zoology's figure and length generalisation ----------------

def sequence_model(run: dict[str, Any]) -> str:
  """A recall run's line label: the lm backbone's mixer (or pattern; ', learned positions' where it
  learns them), else the model's name."""
  m = run['config'].get('model', {})
  if m.get('name') != 'lm':
    return str(m.get('name') or run['summary'].get('model', '?'))
  mixer = m.get('pattern') or m.get('mixer', '?')
  return mixer + (', learned positions' if m.get('position') == 'learned' else '')


def _recall_runs(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
  return [r for r in runs if r['status'] == 'done' and r['config'] and
          math.isfinite(as_float(get_field(r['summary'], 'eval.recall_accuracy')))]


def _best_over_lr(runs: list[dict[str, Any]], x) -> dict[str, dict[tuple, dict[float, float]]]:
  """{panel title: {(line, x): recall accuracy}}: the panel is the task and its sizes, the value the
  best over optim.lr of the mean over seeds (Zoology's protocol: each mixer at its best lr)."""
  acc: dict[tuple, list[float]] = {}
  for r in runs:
    d = r['config']['data']
    panel = (f'{d["name"]}, seq_len {d["seq_len"]}' +
             (f', {d["kv_pairs"]} kv pairs' if d['name'] == 'mqar' else ''))
    key = (panel, sequence_model(r), x(r), get_field(r['config'], 'optim.lr'))
    acc.setdefault(key, []).append(as_float(get_field(r['summary'], 'eval.recall_accuracy')))
  out: dict[str, dict[tuple, float]] = {}
  for (panel, line, xv, _), values in acc.items():
    cell = out.setdefault(panel, {})
    cell[(line, xv)] = max(cell.get((line, xv), -1.0), float(np.mean(values)))
  return out


def _recall_panels(runs: list[dict[str, Any]], path: str, x, xlabel: str, title: str,
                   min_points: int = 2) -> str | None:
  """Final eval recall accuracy vs x(run), a panel per task setting, a line per mixer."""
  panels = _best_over_lr(_recall_runs(runs), x)
  panels = {p: v for p, v in panels.items() if len({xv for _, xv in v}) >= min_points}
  if not panels:
    return None
  plt = _pyplot()
  fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.5), squeeze=False)
  for ax, (panel, cells) in zip(axes[0], sorted(panels.items())):
    for line in sorted({line for line, _ in cells}):
      xs = sorted(xv for ln, xv in cells if ln == line)
      ax.plot(xs, [cells[(line, xv)] for xv in xs], marker='o', label=line)
    ax.set(title=panel, xlabel=xlabel, ylabel='recall accuracy (best lr)', xscale='log',
           ylim=(-0.02, 1.02))
    ax.grid(True, alpha=0.3)
  fig.suptitle(title)
  handles = {l: h for ax in axes[0] for h, l in zip(*ax.get_legend_handles_labels())}
  return _save_with_legend(fig, list(handles.values()), path)


def metric_vs_width(runs: list[dict[str, Any]], path: str) -> str | None:
  """Recall accuracy vs model.width, a line per mixer at its best learning rate, a panel per task
  setting (Zoology figure 2's top row); None without 2+ widths of a recall task."""
  return _recall_panels(runs, path, lambda r: get_field(r['config'], 'model.width'),
                        'model width', 'Recall accuracy vs width')


def metric_vs_state(runs: list[dict[str, Any]], path: str) -> str | None:
  """Recall accuracy vs the numbers of state each model carries per sequence when decoding at the
  task's length (attention: its KV cache; the registry entry's `decode_state`), log x (Zoology
  figure 2's bottom row)."""
  import ml_collections

  from seqmodels.models import registry

  def state(r):
    entry = registry.MODELS.get(get_field(r['config'], 'model.name'))
    if entry is None or entry.decode_state is None:
      return math.nan
    return entry.decode_state(ml_collections.ConfigDict(r['config']['model']),
                              r['config']['data']['seq_len'])

  runs = [r for r in _recall_runs(runs) if math.isfinite(state(r))]
  return _recall_panels(runs, path, state, 'decoding state (numbers per sequence)',
                        'Recall accuracy vs state size')


def _length_accuracies(run: dict[str, Any]) -> dict[int, float]:
  """{test length: recall accuracy} of a run's data.eval_lens splits (summary eval
  recall_accuracy_len<n>)."""
  return {int(k[len('recall_accuracy_len'):]): as_float(v)
          for k, v in run['summary'].get('eval', {}).items()
          if k.startswith('recall_accuracy_len')}


def metric_vs_eval_length(runs: list[dict[str, Any]], path: str) -> str | None:
  """Recall accuracy vs the test length (data.eval_lens) of models trained at one length, a line per
  model, mean over seeds, the training length dotted (the Mamba paper's induction-heads figure)."""
  done = [r for r in _recall_runs(runs) if _length_accuracies(r)]
  if not done:
    return None
  lines: dict[str, dict[int, list[float]]] = {}
  for r in done:
    for n, a in _length_accuracies(r).items():
      lines.setdefault(sequence_model(r), {}).setdefault(n, []).append(a)
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(7.5, 4.8))
  for line, by_len in sorted(lines.items()):
    xs = sorted(by_len)
    ax.plot(xs, [np.mean(by_len[n]) for n in xs], marker='o', label=line)
  for T in sorted({r['config']['data']['seq_len'] for r in done}):
    ax.axvline(T, color='0.4', linestyle=':')
  ax.set(title='Recall accuracy vs test length (dotted: trained at)', xlabel='test length',
         ylabel='recall accuracy', xscale='log', ylim=(-0.02, 1.02))
  _ticks_at(ax, [n for by_len in lines.values() for n in by_len])
  ax.grid(True, alpha=0.3)
  return _save_with_legend(fig, ax.get_legend_handles_labels()[0], path)
def scaling(runs: list[dict[str, Any]], path: str) -> str | None:
  """Final validation bits vs non-embedding parameters and vs training FLOPs, log-log, a line of
  points per architecture with its power-law fit (tables.scaling_points: architectures with two or
  more sizes)."""
  points = scaling_points(runs)
  if not points:
    return None
  plt = _pyplot()
  fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), squeeze=False)
  for ax, key, label in ((axes[0][0], 'params', 'non-embedding parameters N'),
                         (axes[0][1], 'flops', 'training FLOPs C')):
    for (arch, p), color in zip(sorted(points.items()), itertools.cycle(
        plt.rcParams['axes.prop_cycle'].by_key()['color'])):
      xs, ys = [q[key] for q in p], [q['loss'] for q in p]
      a, alpha = power_law(xs, ys)
      grid = np.geomspace(min(xs), max(xs), 50)
      ax.plot(xs, ys, 'o', color=color, label=f'{arch} (exponent {alpha:.3f})')
      ax.plot(grid, a * grid**-alpha, '-', color=color, alpha=0.6)
    estimated = key == 'flops' and any(q['estimated'] for p in points.values() for q in p)
    if key == 'params' and any(q['all_params'] for p in points.values() for q in p):
      label = 'parameters N (all: runs without params_non_embedding)'
    ax.set(xscale='log', yscale='log', xlabel=label + (' (6·N·tokens estimate)' if estimated
                                                       else ''), ylabel='final validation bits',
           title=f'loss vs {"parameters" if key == "params" else "training FLOPs"}')
    _plain_log_labels(ax)
    ax.grid(True, which='both', alpha=0.3)
    ax.legend(fontsize=7)
  return _save(fig, path)


def loss_by_position(runs: list[dict[str, Any]], path: str) -> str | None:
  """A panel per finished run with a context.json (an architecture, in a comparison): validation
  bits at each position of non-overlapping windows, a line per window length, the training length
  dotted."""
  found = [(r, read_json(os.path.join(r['dir'], 'context.json'))) for r in runs
           if r['status'] == 'done']
  found = [(r, c) for r, c in found if c and c.get('lengths')]
  if not found:
    return None
  plt = _pyplot()
  cols = min(4, len(found))
  rows = -(-len(found) // cols)
  fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.3 * rows), squeeze=False,
                           sharey=True)
  for ax, (r, context) in zip(axes.flat, found):
    for length, record in sorted(context['lengths'].items(), key=lambda kv: int(kv[0])):
      bits = np.asarray(record['by_position']) / math.log(2)
      ax.plot(np.arange(1, len(bits) + 1), bits, lw=0.8, label=f'window {length}')
    ax.axvline(context['train_length'], color='0.3', linestyle=':', lw=1)
    ax.set(xscale='log', title=f'{architecture(r)}\n{r["name"][:48]}', xlabel='position')
    ax.title.set_fontsize(7)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=6)
  for ax in axes.flat[len(found):]:
    ax.set_visible(False)
  for row in axes:
    row[0].set_ylabel('validation bits/token')
  return _save(fig, path)
