"""Cost vs sequence length: training step time, memory and compile time per architecture.

For each model of config.cost.models and each T of config.cost.seq_lens: the model from the registry
(sized by config.model), the optimizer, TrainState and Objective a run would use, and the one train
step (seqmodels.train.steps.make_train_step), jitted with the state donated on one device and fed
one [B, T] batch of random tokens. After compilation (compile_seconds) and cost.warmup_steps untimed
steps, cost.timed_steps steps are timed one by one to block_until_ready; step_ms is their median,
tokens_per_sec = B * T / step_ms.

Memory, per case:
  compiled_memory_bytes  XLA's buffer plan of the compiled step: arguments + outputs + temporaries -
                         aliased (donated) bytes; on every platform.
  device_peak_bytes      the allocator's peak, memory_stats()['peak_bytes_in_use'] (GPU/TPU), only
                         when the case runs in its own process (cost.isolate): the peak never resets
                         within a process.
  peak_memory_bytes      what the report plots: device_peak_bytes when measured, else
                         compiled_memory_bytes; `memory_source` ('device_peak' | 'compiled') says
                         which.
A case whose steps (warm-up and timed; compilation is timed apart) would pass cost.case_budget_s
seconds, or that runs out of memory, is recorded with null figures, a status ('over_budget' |
'out_of_memory' | 'error') and a reason; the longer T of that model are recorded as 'skipped', not
run. The budget is checked between steps (after warm-up, against the projected time of the timed
steps). With cost.isolate each case is a fresh process (XLA_PYTHON_CLIENT_MEM_FRACTION defaults to
0.95 there), also killed at the budget + STARTUP_ALLOWANCE_S.

  python -m seqmodels.analysis.cost --config=experiments/configs/cost_vs_length.py:small \
      --out=runs/cost_vs_length_small [--config.cost.models=lstm,gpt \
          --config.cost.seq_lens=128,1024]
writes OUT/cost.json (rewritten after every case) in the format seqmodels.report documents, which
plots it as cost_vs_length.png.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import statistics
import subprocess
import sys
import time
from typing import Any

import jax
import numpy as np

from seqmodels import errors
from seqmodels import sweep, validation
from seqmodels.models import registry
from seqmodels.train import host_memory, optim, steps
from seqmodels.train import state as state_lib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# an isolated case's start (imports, devices, init, compilation) is outside its budget
STARTUP_ALLOWANCE_S = 300.0

@dataclasses.dataclass(frozen=True)
class RandomTokens:
  """What registry.build reads from a dataset (as seqmodels.data.core.Data has it), for random
  tokens."""
  vocab_size: int
  seq_len: int
  kind: str = 'lm'
  meta: dict = dataclasses.field(default_factory=dict)

  def batch(self, batch_size: int, seed: int = 0) -> dict[str, np.ndarray]:
    """An LM batch {inputs, targets [B, T] int32, weights [B, T] float32} of uniform random
    tokens."""
    tokens_BxT1 = np.random.default_rng(seed).integers(0, self.vocab_size,
                                                       (batch_size, self.seq_len + 1), np.int32)
    return {'inputs': tokens_BxT1[:, :-1], 'targets': tokens_BxT1[:, 1:],
            'weights': np.ones((batch_size, self.seq_len), np.float32)}


def lm_models() -> list[str]:
  """Registry names of the language models trained by gradient steps (the ones a cost case can
  run)."""
  return [n for n, e in registry.MODELS.items() if 'lm' in e.kinds and e.trained_by == 'gradient']


def _names(text: Any, field: str, example: str) -> list[str]:
  items = (text.split(',') if isinstance(text, str) else list(text)
           if isinstance(text, (list, tuple)) else None)
  items = [str(i).strip() for i in items or []]
  if not items or not all(items):
    raise errors.ConfigError(
        f'config.cost.{field}={text!r} is not a comma-separated list: write e.g. {example}')
  return items


def parse_cases(config) -> tuple[list[str], list[int]]:
  """(models, lengths) of config.cost, checked; ConfigError (one line naming the field and the fix)
  otherwise."""
  c = config.cost
  models = _names(c.models, 'models', "'lstm,gpt'")
  able = lm_models()
  for m in models:
    if m not in able:
      raise errors.ConfigError(f'config.cost.models names {m!r}, not a language model trained by '
                               f'gradient steps: choose from {",".join(able)}')
  lens = _names(c.seq_lens, 'seq_lens', "'128,256,512'")
  if not all(t.isdigit() and int(t) > 0 for t in lens):
    raise errors.ConfigError(f'config.cost.seq_lens={c.seq_lens!r} is not a list of '
                             'positive integers: write '
                             "e.g. '128,256,512'")
  for field in ('vocab_size', 'timed_steps'):
    if not (isinstance(c[field], int) and c[field] > 0):
      raise errors.ConfigError(f'config.cost.{field}={c[field]!r} must be a positive integer')
  if not (isinstance(c.warmup_steps, int) and c.warmup_steps >= 0):
    raise errors.ConfigError(f'config.cost.warmup_steps={c.warmup_steps!r} must be an integer >= 0')
  if not c.case_budget_s > 0:
    raise errors.ConfigError(
        f'config.cost.case_budget_s={c.case_budget_s!r} must be > 0 (seconds per case)')
  for m in models:  # sizes, heads, dtype, batch: the checks every run gets
    validation.validate(sweep.apply(config, {'model.name': m}))
  # each case once; lengths in order
  return list(dict.fromkeys(models)), sorted({int(t) for t in lens})


def compiled_bytes(compiled) -> int | None:
  """Arguments + outputs + temporaries - aliased (donated) bytes of a compiled executable; None if
  unknown."""
  try:
    m = compiled.memory_analysis()
    return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes -
               m.alias_size_in_bytes)
  except (AttributeError, TypeError, NotImplementedError, jax.errors.JaxRuntimeError):
    return None


def _null(model: str, T: int, B: int, status: str, reason: str, **known) -> dict[str, Any]:
  return {'model': model, 'seq_len': T, 'batch_size': B, 'step_ms': None, 'tokens_per_sec': None,
          'peak_memory_bytes': None, 'status': status, 'reason': reason, **known}


def measure(config, model_name: str, T: int, device_peak: bool = False) -> dict[str, Any]:
  """One case, in this process: a cost.json entry (status 'ok', or 'over_budget' with null figures).

  Out-of-memory errors propagate. `device_peak`: read the allocator's peak (meaningful in a fresh
  process only).
  """
  c, B = config.cost, config.train.batch_size
  # As the training loop does on CPU: without it, a step's temporaries over 32 MB are faulted in
  # afresh every step, which grows with T and would be timed as the model's cost.
  kept = host_memory.keep_freed_memory()
  cfg = sweep.apply(config, {'model.name': model_name})
  data = RandomTokens(c.vocab_size, T)
  dtype = registry.compute_dtype(cfg.train.dtype)
  model = registry.build(cfg.model, data, dtype)
  tx, schedule = optim.make_optimizer(cfg.optim, cfg.train.num_steps)
  device = jax.devices()[0]
  batch = jax.device_put(data.batch(B, cfg.seed), device)
  objective = steps.objective_for(model_name, data.kind)  # as the loop picks it
  # the config sizes parameters, not T
  example = objective.inputs({k: v[:1, :1] for k, v in batch.items()})
  state = jax.jit(lambda rng: state_lib.create(model, tx, rng, example))(
      jax.random.PRNGKey(cfg.seed))
  train_step = jax.jit(steps.make_train_step(model, tx, schedule, objective), donate_argnums=0)
  t = time.perf_counter()
  compiled = train_step.lower(state, batch).compile()
  known = {'compile_seconds': time.perf_counter() - t,
           'compiled_memory_bytes': compiled_bytes(compiled),
           'params': int(sum(np.prod(p.shape) for p in jax.tree.leaves(state.params))),
           'device_kind': device.device_kind, 'platform': device.platform, 'dtype': dtype.name,
           'keep_freed_memory': kept, 'cpu_steps_inline': host_memory.cpu_steps_inline()}
  # the budget counts steps: compile time varies with load, not with T alone
  start = time.perf_counter()

  def step(state):
    t = time.perf_counter()
    state, metrics = compiled(state, batch)
    jax.block_until_ready((state, metrics))
    return state, (time.perf_counter() - t) * 1e3

  ms = []
  for _ in range(c.warmup_steps):
    state, last = step(state)
  ms_guess = last if c.warmup_steps else 0.0
  spent = time.perf_counter() - start
  if spent + ms_guess * c.timed_steps / 1e3 > c.case_budget_s:
    return _null(
        model_name, T, B, 'over_budget', f'~{ms_guess:.0f} ms a step: {c.warmup_steps} warm-up + '
        f'{c.timed_steps} timed steps would pass the {c.case_budget_s:g} s budget', **known)
  for i in range(c.timed_steps):
    state, t_ms = step(state)
    ms.append(t_ms)
    if time.perf_counter() - start > c.case_budget_s and i + 1 < c.timed_steps:
      return _null(model_name, T, B, 'over_budget',
                   f'the {c.case_budget_s:g} s budget ran out after {i + 1} of '
                   f'{c.timed_steps} timed steps (median {statistics.median(ms):.0f} ms)', **known)
  stats = device.memory_stats() if device_peak else None
  peak = (stats or {}).get('peak_bytes_in_use')
  step_ms = statistics.median(ms)
  return {'model': model_name, 'seq_len': T, 'batch_size': B, 'step_ms': step_ms,
          'step_ms_min': min(ms), 'step_ms_max': max(ms), 'tokens_per_sec': B * T / (step_ms / 1e3),
          'peak_memory_bytes': peak if peak else known['compiled_memory_bytes'],
          'memory_source': 'device_peak' if peak else 'compiled', 'device_peak_bytes': peak,
          **known, 'status': 'ok'}


def run_case(config, model_name: str, T: int) -> dict[str, Any]:
  """One case in this process; out of memory -> a null entry with status 'out_of_memory'."""
  try:
    return measure(config, model_name, T)
  except Exception as e:  # one case must not end the run
    line = f'{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ""}'
    kind = 'out_of_memory' if errors.is_out_of_memory(str(e)) else 'error'
    return _null(model_name, T, config.train.batch_size, kind, line)


def _case_main() -> None:
  """The process of an isolated case: {config, model, seq_len} JSON on stdin -> its entry as one
  JSON line."""
  import ml_collections
  host_memory.run_cpu_steps_inline()  # as launch.py does, before JAX's first computation
  job = json.load(sys.stdin)
  entry = measure(ml_collections.ConfigDict(job['config']), job['model'], job['seq_len'],
                  device_peak=True)
  print(json.dumps(entry), flush=True)


def run_case_isolated(config, model_name: str, T: int) -> dict[str, Any]:
  """One case in a fresh process: a clean device peak; a crash or a hang costs this case only."""
  env = dict(os.environ,
             PYTHONPATH=os.pathsep.join(p for p in (ROOT, os.environ.get('PYTHONPATH')) if p))
  env.setdefault('XLA_PYTHON_CLIENT_MEM_FRACTION', '0.95')
  job = json.dumps({'config': config.to_dict(), 'model': model_name, 'seq_len': T})
  limit = config.cost.case_budget_s + STARTUP_ALLOWANCE_S
  B = config.train.batch_size
  try:
    p = subprocess.run(
        [sys.executable, '-c', 'from seqmodels.analysis import cost; cost._case_main()'], input=job,
        capture_output=True, text=True, env=env, timeout=limit)
  except subprocess.TimeoutExpired:
    return _null(model_name, T, B, 'over_budget', f'killed after {limit:g} s (the '
                 f'{config.cost.case_budget_s:g} s budget + {STARTUP_ALLOWANCE_S:g} s to start)')
  if p.returncode == 0 and p.stdout.strip():
    return json.loads(p.stdout.strip().splitlines()[-1])
  lines = [l for l in p.stderr.strip().splitlines() if l.strip()]
  # SIGKILL: the kernel's out-of-memory killer, most likely
  if errors.is_out_of_memory(p.stderr) or p.returncode == -9:
    reason = next((l for l in lines if errors.is_out_of_memory(l)),
                  f'killed by signal {-p.returncode} (out of host memory?)')
    return _null(model_name, T, B, 'out_of_memory', reason[-300:])
  return _null(model_name, T, B, 'error',
               f'exit code {p.returncode}: {lines[-1] if lines else "no output"}'[-300:])


def run(config, out_dir: str = '', command: str = '', log=print) -> dict[str, Any]:
  """Every (model, T) case of config.cost -> the cost.json record, written to out_dir/cost.json
  after each case."""
  from seqmodels.train.workdir import code_version  # it imports the data pipeline
  models, lens = parse_cases(config)
  isolate = bool(config.cost.get('isolate', False))
  # isolated: the first case tells
  record = {'device': None if isolate else jax.devices()[0].device_kind,
            'platform': None if isolate else jax.devices()[0].platform,
            'jax_version': jax.__version__, 'commit': code_version(),
            'batch_size': config.train.batch_size,
            # the one computed in
            'dtype': None if isolate else registry.compute_dtype(config.train.dtype).name,
            'command': command, 'config': config.to_dict(), 'entries': []}
  path = os.path.join(out_dir, 'cost.json') if out_dir else ''
  if path:
    os.makedirs(out_dir, exist_ok=True)
  for m in models:
    stopped = ''
    for T in lens:
      if stopped:
        entry = _null(m, T, config.train.batch_size, 'skipped', f'not run: {stopped}')
      else:
        entry = (run_case_isolated if isolate else run_case)(config, m, T)
        if entry['status'] != 'ok':
          stopped = f'T={T} was {entry["status"]}'
      record['device'] = record['device'] or entry.get('device_kind')
      record['platform'] = record['platform'] or entry.get('platform')
      record['dtype'] = record['dtype'] or entry.get('dtype')
      record['entries'].append(entry)
      if path:
        with open(path + '.tmp', 'w') as f:
          json.dump(record, f, indent=1)
        os.replace(path + '.tmp', path)
      log(_line(entry))
  return record


def _line(e: dict[str, Any]) -> str:
  if e['status'] != 'ok':
    return f'{e["model"]:>8} T={e["seq_len"]:<6} {e["status"]}: {e["reason"]}'
  return (f'{e["model"]:>8} T={e["seq_len"]:<6} {e["step_ms"]:10.2f} ms/step '
          f'{e["tokens_per_sec"]:12,.0f} tokens/s {e["peak_memory_bytes"] / 2**20:10.1f} MiB '
          f'({e["memory_source"]})  compile {e["compile_seconds"]:.1f} s')


def main(argv: list[str] | None = None) -> int:
  """The command line; returns the exit code (2: bad input, 1: a case failed other than by time or
  memory)."""
  from absl import flags
  from ml_collections import config_flags
  host_memory.run_cpu_steps_inline()  # as launch.py does, before JAX's first computation
  argv = list(sys.argv if argv is None else argv)
  fail = lambda message: print(f'error: {message}', file=sys.stderr) or 2
  # the last one wins
  given = ([a.split('=', 1)[1] for a in argv[1:] if a.startswith('--config=')] or [''])[-1]
  path = given.split(':')[0]
  if not path or not os.path.isfile(path):
    return fail(
        f'--config={given} does not exist: pass '
        '--config=experiments/configs/cost_vs_length.py[:small]' if given
        else '--config is missing: pass --config=experiments/configs/cost_vs_length.py[:small]')
  fv = flags.FlagValues()
  try:  # config_flags applies --config.* overrides from argv here, at definition
    config_flags.DEFINE_config_file('config', None, 'experiments/configs/cost_vs_length.py[:small]',
                                    flag_values=fv, lock_config=True, sys_argv=argv)
    flags.DEFINE_string('out', '', 'directory for cost.json', flag_values=fv)
    rest = fv(argv)
    config = fv.config
    if len(rest) > 1:
      return fail(f'unexpected arguments {rest[1:]}: flags take the form --name=value')
    if 'cost' not in config:
      return fail(
          f'--config={given} has no cost section: use experiments/configs/cost_vs_length.py')
    parse_cases(config)
    if not fv.out:
      return fail(
          '--out is missing: name a directory for cost.json, e.g. --out=runs/cost_vs_length')
  except flags.Error as e:
    return fail(str(e).splitlines()[0])
  except (AttributeError, KeyError) as e:  # --config.x.y names no field
    bad = next((a.split('=')[0] for a in argv[1:] if a.startswith('--config.')), '--config.*')
    hint = re.search(r'Did you mean "[^"]+"', str(e))
    return fail(f'{bad} names no config field{f" ({hint.group(0)}?)" if hint else ""}: see '
                f'the fields in {path}')
  except (errors.ConfigError, OSError, SyntaxError) as e:
    return fail(str(e).splitlines()[0])
  from seqmodels import cli
  cli.check_writable(fv.out, '--out', directory=True)  # before any measuring
  command = ' '.join(['python -m seqmodels.analysis.cost'] + argv[1:])
  with cli.writing(fv.out):
    record = run(config, fv.out, command)
  print(f'written to {os.path.join(fv.out, "cost.json")}')
  failed = [e for e in record['entries'] if e['status'] == 'error']
  if failed:
    print(f'error: {len(failed)} case(s) failed: {"; ".join(e["reason"] for e in failed)}'[:500],
          file=sys.stderr)
  return 1 if failed else 0


if __name__ == '__main__':
  sys.exit(main())
