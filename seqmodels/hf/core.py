"""What one Hugging Face architecture's converter provides, so that import, export and the tests
treat every family alike.

A checkpoint directory is what `save_pretrained` writes: `config.json` (its `architectures[0]`
names the converter) and `*.safetensors`. A converter maps both halves: the config to the
seqmodels config overrides that build the same network, and the tensors to that network's
parameters, and back.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

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
