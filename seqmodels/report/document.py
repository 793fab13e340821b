"""The report's files: report.md (the table, the plots, the samples) and report.csv, in one place.

Input formats are specified in the docstring of seqmodels/report/__init__.py.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import re
from typing import Any

from seqmodels import tuning
from seqmodels.report import plots as plot  # draws with matplotlib, imported only when it draws
from seqmodels.report import tables
from seqmodels.report.tables import (find_runs, load_runs, markdown_table, rare_words_section,
                                     read_json, word_vectors_section, write_csv)


# --- samples --------------------------------------------------------------------------------------

def _fenced(text: str) -> str:
  """`text` verbatim in a markdown code block, fenced by more backticks than any run of them
  inside."""
  fence = '`' * max(3, 1 + max((len(r) for r in re.findall('`+', text)), default=0))
  return f'{fence}text\n{text}\n{fence}'


def samples_section(files: list[str]) -> str:
  """Markdown of the samples.json `files`: per prompt (grouped by its source and text), each run's
  continuation under the run's name and settings, then the text's own continuation where there is
  one."""
  by_prompt: dict[tuple[str, str], list[tuple[str, dict, int, dict]]] = {}
  for path in files:
    record = read_json(path)
    if not record:
      continue
    name = os.path.basename(os.path.dirname(os.path.abspath(path)))
    for i, smp in enumerate(record.get('samples', [])):
      by_prompt.setdefault((smp['source'], smp['prompt']), []).append((name, record, i, smp))
  if not by_prompt:
    return ''
  md = ['\n## Samples\n']
  for (source, prompt), entries in by_prompt.items():
    md += [f'### Prompt ({source})\n', _fenced(prompt), '']
    for name, record, i, smp in entries:
      st = record.get('settings', {})
      md += [f'**{name}** ({record.get("model")}, step {record.get("step")}; temperature '
             f'{st.get("temperature")}, top_k {st.get("top_k")}, top_p {st.get("top_p")}, seed '
             f'{st.get("seed")}; sample {i}):\n', _fenced(smp['continuation']), '']
    reference = next(
        (smp['reference'] for _, _, _, smp in entries if smp.get('reference') is not None), None)
    if reference is not None:
      md += ['the text itself:\n', _fenced(reference), '']
  return '\n'.join(md)



# --- everything -----------------------------------------------------------------------------------

NO_PLOTS = "plots skipped: matplotlib is not installed (pip install -e '.[plots]' draws them)"


def write_report(paths: list[str], out_dir: str) -> dict[str, str]:
  """Writes report.md, report.csv and the plots with inputs under `paths` into out_dir; {kind:
  file}. Without matplotlib it writes the tables and says so in report.md (NO_PLOTS)."""
  os.makedirs(out_dir, exist_ok=True)
  runs = load_runs(find_runs(paths))
  files = {}
  out = lambda name: os.path.join(out_dir, name)
  found = lambda name: sorted({f for p in paths
                               for f in glob.glob(os.path.join(p, '**', name), recursive=True)})
  can_plot = importlib.util.find_spec('matplotlib') is not None
  plots = _plots(runs, out, found) if can_plot else {}
  plots = {k: v for k, v in plots.items() if v}
  md = [f'# Report: {", ".join(paths)}\n', markdown_table(runs) if runs else 'No runs found.\n']
  # an equal-tuning sweep's comparison, and the power-law fits where an architecture has sizes
  md += [tables.tuned_markdown(os.path.dirname(f)) for f in found(tuning.TUNING_FILE)]
  md.append(tables.scaling_markdown(runs))
  if not can_plot:
    md.append(f'\n({NO_PLOTS}.)\n')
  md += [f'\n![{k if k.startswith("attention") else k.replace("_", " ")}]({os.path.basename(v)})\n'
         for k, v in plots.items()]
  md.append(samples_section(found('samples.json')))
  md.append(word_vectors_section(found('word_vectors.json')))
  md.append(rare_words_section(found('rare_words.json')))
  files['markdown'] = os.path.join(out_dir, 'report.md')
  with open(files['markdown'], 'w') as f:
    f.write('\n'.join(md))
  if runs:
    files['csv'] = os.path.join(out_dir, 'report.csv')
    write_csv(runs, files['csv'])
  return {**files, **plots}


def _plots(runs: list[dict[str, Any]], out, found) -> dict[str, str | None]:
  """Every plot whose inputs exist: {kind: its PNG, or None}."""
  plots = {'learning_curves': plot.learning_curves(runs, out('learning_curves.png')),
           'loss_vs_time': plot.loss_vs_time(runs, out('loss_vs_time.png')),
           'grad_norm': plot.grad_norm(runs, out('grad_norm.png')),
           'metric_vs_length': plot.metric_vs_length(runs, out('metric_vs_length.png')),
           'cost_vs_length': plot.cost_vs_length(found('cost.json'), out('cost_vs_length.png')),
           'bleu_by_length': plot.bleu_by_length(runs, out('bleu_by_length.png')),
           # recall tasks: Zoology's figure, length generalisation
           'metric_vs_width': plot.metric_vs_width(runs, out('metric_vs_width.png')),
           'metric_vs_state': plot.metric_vs_state(runs, out('metric_vs_state.png')),
           'metric_vs_eval_length': plot.metric_vs_eval_length(runs,
                                                               out('metric_vs_eval_length.png')),
           'gradient_flow': plot.gradient_flow(found('gradient_flow.json'),
                                               out('gradient_flow.png')),
           'scaling': plot.scaling(runs, out('scaling.png')),
           'loss_by_position': plot.loss_by_position(runs, out('loss_by_position.png'))}
  for kind in ('maps', 'layers'):
    for npz in found(f'attention_{kind}.npz'):
      name = os.path.basename(os.path.dirname(os.path.abspath(npz)))
      safe = re.sub(r'[^A-Za-z0-9._=+-]', '_', name)
      prefix = 'attention' if kind == 'maps' else 'attention_layers'
      plots[f'{prefix.replace("_", " ")} {name}'] = plot.attention(
          npz, out(f'{prefix}_{safe}.png'), name)
  return plots
