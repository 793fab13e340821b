"""What one Hugging Face architecture's converter provides, so that import, export and the tests
treat every family alike.

A checkpoint directory is what `save_pretrained` writes: `config.json` (its `architectures[0]`
names the converter) and `*.safetensors`. A converter maps both halves: the config to the
seqmodels config overrides that build the same network, and the tensors to that network's
parameters, and back.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Any, Callable, NoReturn

import numpy as np

from seqmodels import errors

HFConfig = dict[str, Any]             # config.json, parsed
Tensors = dict[str, np.ndarray]       # a state dict: HF parameter name -> array
Overrides = dict[str, Any]            # dotted seqmodels config fields -> values


@dataclasses.dataclass(frozen=True)
class Converter:
  """One Hugging Face architecture (config.json's `architectures[0]`, e.g. 'GPT2LMHeadModel')
  and the seqmodels model (`family`, a model.name) that represents it.

  config_from_hf(hf_config) -> Overrides: the seqmodels config fields that build the same network
    (model.*, and the vocabulary size the model needs); raises errors.ConfigError with one line for
    a field seqmodels cannot represent (name the field, its value, and what seqmodels supports).
  config_to_hf(config) -> HFConfig: a seqmodels run's config -> the config.json `transformers`
    loads (with 'architectures' and 'model_type').
  params_from_hf(tensors, config) -> params: the flax parameter tree (nested dicts of arrays) of
    the model `config` builds, from the checkpoint's tensors.
  params_to_hf(params, config) -> Tensors: the state dict `save_pretrained` would write for it.
  """
  architecture: str
  model_type: str
  family: str
  config_from_hf: Callable[[HFConfig], Overrides]
  config_to_hf: Callable[[Any], HFConfig]
  params_from_hf: Callable[[Tensors, Any], Any]
  params_to_hf: Callable[[Any, Any], Tensors]


# ---- what every converter shares: reading and writing a checkpoint directory, and taking tensors
# by name with one-line errors for the missing, the mis-shaped and the unexpected ones.

WEIGHTS = 'model.safetensors'
INDEX = 'model.safetensors.index.json'
# the fields of Overrides every converter sets beside model.*: the vocabulary the weights were made
# for (config.model.vocab_size); export fills it from the run's data where a run trained from
# scratch has 0 there, and `model.classes` (the classes of a classification head) likewise.
VOCAB = 'model.vocab_size'


def fail(message: str) -> NoReturn:
  raise errors.ConfigError(message)


def _some(items: list[str], count: int = 3) -> str:
  return ', '.join(items[:count]) + (f' and {len(items) - count} more' if len(items) > count
                                     else '')


def read_config(directory: str) -> HFConfig:
  """config.json of a checkpoint directory (one line where there is none)."""
  path = os.path.join(directory, 'config.json')
  if not os.path.isfile(path):
    fail(f'{directory} holds no config.json: point at a directory save_pretrained wrote (or a hub '
         'name, online)')
  with open(path) as f:
    return json.load(f)


def read_tensors(directory: str) -> Tensors:
  """Every tensor of the directory's safetensors (one file, or the shards an index lists), as
  float32 numpy arrays where they are floating point (bfloat16 too, which numpy lacks: read through
  jax); transformers' old LayerNorm names (gamma, beta) read as weight, bias."""
  import jax.numpy as jnp
  from safetensors.flax import load_file
  index = os.path.join(directory, INDEX)
  if os.path.isfile(index):
    with open(index) as f:
      files = sorted(set(json.load(f)['weight_map'].values()))
  else:
    files = sorted(f for f in os.listdir(directory) if f.endswith('.safetensors'))
  if not files:
    found = sorted(f for f in os.listdir(directory) if f.endswith(('.bin', '.h5', '.msgpack')))
    fail(f'{directory} holds no *.safetensors' + (f' (only {_some(found)})' if found else '') +
         ': save it with save_pretrained(dir, safe_serialization=True)')
  tensors = {}
  for name in files:
    for key, value in load_file(os.path.join(directory, name)).items():
      key = re.sub(r'\.gamma$', '.weight', re.sub(r'\.beta$', '.bias', key))
      floating = jnp.issubdtype(value.dtype, jnp.floating)
      tensors[key] = np.asarray(value, np.float32 if floating else None)
  return tensors


def write_checkpoint(directory: str, hf_config: HFConfig, tensors: Tensors) -> None:
  """config.json and model.safetensors as save_pretrained writes them (float32), so
  `AutoModel*.from_pretrained(directory)` loads them."""
  from safetensors.numpy import save_file
  os.makedirs(directory, exist_ok=True)
  with open(os.path.join(directory, 'config.json'), 'w') as f:
    json.dump({**hf_config, 'dtype': 'float32'}, f, indent=2, sort_keys=True)
  save_file({k: np.ascontiguousarray(v, np.float32) for k, v in tensors.items()},
            os.path.join(directory, WEIGHTS), metadata={'format': 'pt'})


class Taker:
  """Takes a checkpoint's tensors by name and expected shape (None: any size on that axis) and,
  at `done`, raises one line for those missing, mis-shaped or left over.

  A name may be found without its first component (a base model saved alone: 'wte.weight' for
  'transformer.wte.weight'). Left over is fine for tensors that are not floating point (buffers:
  causal masks, position ids) and exact copies of a taken one (a tied head saved twice)."""

  def __init__(self, tensors: Tensors, architecture: str):
    self.tensors, self.architecture = tensors, architecture
    self.taken: set[str] = set()
    self.missing: list[str] = []
    self.misshaped: list[str] = []

  def __call__(self, name: str, shape: tuple[int | None, ...]) -> np.ndarray:
    key = name if name in self.tensors else name.partition('.')[2]
    if key not in self.tensors:
      self.missing.append(f'{name} {_shape(shape)}')
      return np.zeros([s or 1 for s in shape], np.float32)
    value = self.tensors[key]
    self.taken.add(key)
    if len(value.shape) != len(shape) or any(s not in (None, v) for s, v in zip(shape,
                                                                                 value.shape)):
      self.misshaped.append(f'{key} is {_shape(value.shape)}, not {_shape(shape)}')
      return np.zeros([s or v for s, v in zip(shape, value.shape)] if len(value.shape) ==
                      len(shape) else [s or 1 for s in shape], np.float32)
    return value

  def layer_norm(self, name: str, D: int) -> dict[str, np.ndarray]:
    """A LayerNorm's {'scale', 'bias'} from `name`.weight and `name`.bias, each [D]."""
    return {'scale': self(f'{name}.weight', (D,)), 'bias': self(f'{name}.bias', (D,))}

  def done(self) -> None:
    where = f'the {self.architecture} checkpoint'
    if self.missing:
      fail(f'{where} lacks {len(self.missing)} tensors the config.json calls for: '
           f'{_some(self.missing)}')
    if self.misshaped:
      fail(f'{where} has tensors of other shapes than its config.json gives: '
           f'{_some(self.misshaped)}')
    taken = [self.tensors[k] for k in self.taken]
    extra = [k for k in sorted(set(self.tensors) - self.taken)
             if self.tensors[k].dtype.kind == 'f' and
             not any(t.shape == self.tensors[k].shape and np.array_equal(t, self.tensors[k])
                     for t in taken)]
    if extra:
      fail(f'{where} has {len(extra)} tensors seqmodels does not know: '
           f'{_some([f"{k} {_shape(self.tensors[k].shape)}" for k in extra])}: is config.json '
           'from this checkpoint?')


def _shape(shape) -> str:
  return '[' + ', '.join('*' if s is None else str(s) for s in shape) + ']'


def unsupported(architecture: str, field: str, value: Any, supported: str) -> NoReturn:
  """The one line for a config.json field seqmodels cannot represent."""
  fail(f'{architecture}: config.json has {field}={value!r}, which seqmodels cannot represent '
       f'(it supports {supported})')
