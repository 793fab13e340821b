"""Comparison report: run or sweep workdirs -> a markdown and a CSV table, and PNG plots.

  python -m seqmodels.report RUN_OR_SWEEP_DIR [...] [--out DIR]

Writes DIR/report.md (table + plots), DIR/report.csv and the plots whose inputs exist (DIR defaults
to the one path given, else ./report). Table: one row per group of finished runs that differ only in
`seed`, numbers as mean ± sample std over the seeds; crashed runs (failed.json) get a row marked
failed, runs begun but not finished (config.json only) one marked unfinished, with the step they
resume from (their latest checkpoint's) and how far they logged, and a sweep's trials not begun
(named in its sweep.json) one marked pending.

Inputs, found in every run directory under the paths (recursively):
  summary.json, config.json, metrics.jsonl   written by seqmodels/train/loop.py (metrics.jsonl: one
      {"step", "split": "train"|"eval", "loss", ...} per line); summary.json may hold
      peak_memory_bytes.
  failed.json        {"error": "<last line>", "detail": "..."}: a run or sweep trial that crashed
      (launch.py, seqmodels/sweep.py).
  cost.json          step time and memory vs sequence length, one record per measured case:
      {"device": "<optional>", "entries": [{"model": "lstm", "seq_len": 256, "batch_size": 32,
       "step_ms": 8.4, "peak_memory_bytes": 1.2e9, "tokens_per_sec": 9.7e5, "label":
       "<optional; default model>"}, ...]}
      -> cost_vs_length.png (any of step_ms / peak_memory_bytes may be missing or null).
  gradient_flow.json ||dL/dh_t|| for every step t (seqmodels/analysis/gradient_flow.py), the loss
      read at position `loss_position` (default: the last, T-1):
      {"loss_position": <optional int>, "series": [{"model": "rnn", "run": "<optional run directory:
       names the line where two runs share a model>", "site": "layer0/h", "step": <optional training
       step>, "label": "<optional>", "loss_position": <optional int, this series' own>, "time":
       <optional: "source" (a translation encoder's, from the source's end) or "reversed">, "norms":
       [T floats]}, ...]} -> gradient_flow.png, the norm vs the distance loss_position - t on a log
       scale.
  attention_maps.npz / attention_layers.npz attention weights, rows summing to 1, in either layout
      -> attention_<run>.png / attention_layers_<run>.png heatmaps:
      one example's attention per layer (attention_layers.npz, from
      seqmodels/analysis/attention_maps.py): `layer<l>` float [heads, T_query, T_key] (or [T_query,
      T_key]), optional `tokens` (or `query_tokens` / `key_tokens`) 1-D str arrays for tick labels;
      a panel per layer and head;
      seq2seq examples (attention_maps.npz, from a translation run's final evaluation,
      seqmodels/data/translation.py): `count`, `weights_<i>` [T_tgt, T_src], `src_<i>`, `tgt_<i>`.
  bleu_by_length.json {"<decoding>": [{"min_len", "max_len", "sentences", "bleu"}, ...]} (seq2seq
      final eval) -> bleu_by_length.png.
  samples.json       text an LM wrote (seqmodels/analysis/samples.py): {"model", "step", "settings":
      {...}, "samples": [{"source", "prompt", "continuation", "reference" (or null)}, ...]} -> a
      'Samples' section of report.md: each prompt, then every run's continuation of it, then the
      text's own.
  word_vectors.json  intrinsic evaluations of word vectors (seqmodels/analysis/word_vectors.py), a
      record or a list of them: {"vectors", "words", "dimension", "analogies": {"accuracy",
      "questions", "skipped", "sections": {name: {"accuracy", "questions", "skipped"}}},
      "similarity": {"spearman", "pairs", "skipped"}, "neighbours": {word: [[word, cos], ...]}}
      -> a 'Word vectors' section of report.md.
  rare_words.json    an LM's perplexity by group of targets (seqmodels/analysis/rare_words.py):
      {"model", "all" | "rare" | "frequent" | "unseen_bigram" | "unseen_trigram": {"perplexity",
       "tokens"}, ...}
      -> a 'Perplexity by target' section of report.md.
Plots over the runs: learning_curves.png (train and eval loss vs step; a column per length when the
runs differ in data.max_len or data.seq_len; a failed run up to its last logged step, marked x),
loss_vs_time.png (eval loss vs the training seconds metrics.jsonl's train records carry),
grad_norm.png (the training gradient's global norm before clipping vs step, log scale,
optim.clip_norm dotted) and metric_vs_length.png (final eval bits/token, MSE for regression runs
with the mean predictor's MSE dashed, and accuracy vs that length, a line per model); for recall
tasks (seqmodels/data/recall.py) metric_vs_width.png and metric_vs_state.png (final eval recall
accuracy vs model.width and vs the numbers of state each model decodes with, each mixer at its best
optim.lr, a panel per task setting: Zoology's figure 2) and metric_vs_eval_length.png (recall
accuracy at each data.eval_lens length).
tables.py reads the runs and makes the table; plots.py draws the plots, importing matplotlib only
where it draws (a table needs no matplotlib); document.py writes the files; __main__.py is the CLI.
"""

from seqmodels.report.document import write_report
from seqmodels.report.tables import find_runs, load_runs, markdown_table, table_rows, write_csv

__all__ = ['find_runs', 'load_runs', 'markdown_table', 'table_rows', 'write_csv', 'write_report']
