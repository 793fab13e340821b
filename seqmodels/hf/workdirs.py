"""A Hugging Face checkpoint as a seqmodels run, and a run as a checkpoint.

`import_checkpoint` writes a workdir as a finished run at step 0 would leave it (config.json, a
checkpoint of the parameters, summary.json, and the checkpoint's tokenizer.json), so that
`train.init_from=WORKDIR` fine-tunes it and the analyses read it like any run. `export_run` writes a
run's latest parameters as `save_pretrained` would. `score` evaluates an LM run in seqmodels and,
exported, in transformers on the same validation windows: the check that both compute one function.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Any

import numpy as np

from seqmodels import errors
from seqmodels.hf import converter, core, of_run

TOKENIZER = 'tokenizer.json'
HF_CONFIG = 'hf_config.json'  # the imported checkpoint's own config.json, kept beside the run's


def resolve(source: str) -> str:
  """A local checkpoint directory, or a hub name that transformers' hub client fetches (online)."""
  if os.path.isdir(os.path.expanduser(source)):
    return os.path.expanduser(source)
  if os.path.exists(source) or source.startswith(('.', '/', '~')) or source.count('/') > 1:
    core.fail(f'{source} is not a checkpoint directory: name one that save_pretrained wrote, or a '
              'hub name (gpt2, bert-base-uncased)')
  try:
    from huggingface_hub import snapshot_download
  except ImportError:
    core.fail(f'{source} is not a local directory, and fetching it from the hub needs the [hf] '
              "extra: pip install -e '.[hf]'")
  try:
    return snapshot_download(source, allow_patterns=['*.json', '*.safetensors', '*.txt'])
  except Exception as e:  # offline, a name that is not there: the hub client raises many types
    core.fail(f'{source} is not a local directory and could not be fetched from the hub '
              f'({type(e).__name__}: {str(e).splitlines()[0][:160]})')


def _set(config, field: str, value: Any) -> None:
  section, _, name = field.rpartition('.')
  node = config
  for part in section.split('.'):
    node = node[part]
  node[name] = value


def import_checkpoint(source: str, workdir: str, text: str = '', seq_len: int = 0) -> Any:
  """Writes the checkpoint at `source` as a run in `workdir`; returns its config. `text`: the local
  text file its config names for LMs (data.path), tokenized by the checkpoint's own tokenizer."""
  import ml_collections
  from experiments.configs.base import get_base_config
  from seqmodels.train import checkpoint, workdir as records
  directory = resolve(source)
  hf_config = core.read_config(directory)
  architectures = hf_config.get('architectures') or []
  if not architectures:
    core.fail(f'{directory}/config.json names no architectures: save the model with '
              'save_pretrained, which records its class')
  conv = converter(architectures[0])
  config = get_base_config()
  for field, value in conv.config_from_hf(hf_config).items():
    _set(config, field, value)
  vocab = config.model.vocab_size
  tokenizer = os.path.join(directory, TOKENIZER)
  if os.path.isfile(tokenizer):
    from seqmodels.data.tokenizers import HFTokenizer
    size = HFTokenizer(directory).vocab_size
    errors.check(size == vocab, f'{tokenizer} has {size} tokens and the model a vocabulary of '
                 f'{vocab} (config.json vocab_size): seqmodels needs the two to agree: use the '
                 "model's own tokenizer")
  if config.model.name == 'bert':
    config.data.name = 'mlm' if 'classes' not in config.model else 'classify'
  else:
    config.data.name, config.data.tokenizer = 'text', f'hf:{os.path.abspath(workdir)}'
  config.data.path = os.path.abspath(os.path.expanduser(text)) if text else ''
  positions = config.model.get('positions', 0)
  config.data.seq_len = seq_len or (min(positions, 128) if positions else config.data.seq_len)
  params = conv.params_from_hf(core.read_tensors(directory), config)
  os.makedirs(workdir, exist_ok=True)
  if os.path.isfile(tokenizer):
    shutil.copyfile(tokenizer, os.path.join(workdir, TOKENIZER))
  records.write_json(os.path.join(workdir, HF_CONFIG), hf_config)
  records.write_config(workdir, ml_collections.ConfigDict(config), {})
  checkpoint.save_params(workdir, 0, params)
  records.write_summary(workdir, records.summary(
      config, 'done', step=0, imported_from=source, architecture=conv.architecture))
  return config


def export_run(workdir: str, out: str, architecture: str = '') -> core.HFConfig:
  """Writes the latest parameters of the run in `workdir` to `out` as save_pretrained would (with
  the tokenizer.json it came with, if any); returns the config.json written."""
  import ml_collections
  from seqmodels.train import checkpoint
  with open(os.path.join(workdir, 'config.json')) as f:
    config = ml_collections.ConfigDict(json.load(f))
  conv = converter(architecture) if architecture else of_run(config)
  errors.check(conv.family == config.model.name,
               f'--architecture={architecture} converts model.name={conv.family}, and the run in '
               f'{workdir} is model.name={config.model.name}')
  _, state = checkpoint.restore_saved(workdir)
  params = _numpy(state['params'])
  if not config.model.get('vocab_size', 0) or ('classes' not in config.model and
                                               config.data.name == 'classify'):
    from seqmodels.data import registry as datasets
    datasets.prepare(config.data)
    data = datasets.load(config.data)
    config.model.vocab_size = data.vocab_size
    config.model.classes = data.meta.get('num_classes', 2)
  hf_config = conv.config_to_hf(config)
  core.write_checkpoint(out, hf_config, conv.params_to_hf(params, config))
  tokenizer = config.data.get('tokenizer', '')
  if tokenizer.startswith('hf:') and os.path.isfile(os.path.join(tokenizer[3:], TOKENIZER)):
    shutil.copyfile(os.path.join(tokenizer[3:], TOKENIZER), os.path.join(out, TOKENIZER))
  return hf_config


def _numpy(tree):
  import jax
  return jax.tree.map(lambda x: np.asarray(x, np.float32), tree)


def score(workdir: str, max_windows: int = 64) -> dict[str, float]:
  """Mean loss per token (nats) of the LM run in `workdir` on its first `max_windows` validation
  windows, computed by seqmodels and, exported, by transformers (torch): {'seqmodels',
  'transformers', 'windows', 'tokens'}."""
  import jax
  import jax.numpy as jnp
  import torch
  from transformers import AutoModelForCausalLM
  from seqmodels.analysis import runs
  from seqmodels.train import checkpoint
  run = runs.load(workdir)
  errors.check(run.kind == 'lm', f'{workdir} holds a {run.kind} run: score compares language '
               'models')
  _, state = checkpoint.restore_saved(workdir)
  params = state['params']
  batch = next(run.data.eval_batches(batch_size=max_windows, max_batches=1))
  inputs, targets = np.asarray(batch['inputs']), np.asarray(batch['targets'])
  weights = np.asarray(batch.get('weights', np.ones(targets.shape)), np.float32)
  rows = int(min(max_windows, len(inputs)))
  inputs, targets, weights = inputs[:rows], targets[:rows], weights[:rows]

  def nll(logits_BxTxV) -> float:
    logp = jax.nn.log_softmax(jnp.asarray(logits_BxTxV, jnp.float32), -1)
    picked = jnp.take_along_axis(logp, jnp.asarray(targets)[..., None], -1)[..., 0]
    return float(-(picked * weights).sum() / weights.sum())

  ours = nll(jax.jit(lambda p, x: run.model.apply({'params': p}, x))(params, jnp.asarray(inputs)))
  with tempfile.TemporaryDirectory() as out:
    export_run(workdir, out)
    reference = AutoModelForCausalLM.from_pretrained(out).eval()
    with torch.no_grad():
      theirs = nll(reference(torch.as_tensor(inputs, dtype=torch.long)).logits.numpy())
  return {'seqmodels': ours, 'transformers': theirs, 'windows': rows,
          'tokens': int(weights.sum())}
