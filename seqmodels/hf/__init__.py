"""Hugging Face checkpoints in and out: `core` says what a family's converter provides; each family
module ends with its CONVERTERS (architecture -> Converter), collected here."""

from __future__ import annotations

from seqmodels import errors
from seqmodels.hf import bert, core, gpt, llama, mamba, mamba2, recurrentgemma

FAMILIES = (gpt, bert, llama, mamba, mamba2, recurrentgemma)
CONVERTERS: dict[str, core.Converter] = {arch: c for family in FAMILIES
                                         for arch, c in family.CONVERTERS.items()}


def converter(architecture: str) -> core.Converter:
  """The converter of a config.json's architecture (one line naming the supported ones)."""
  if architecture not in CONVERTERS:
    core.fail(f'config.json names architecture {architecture!r}, which seqmodels does not convert: '
              f'it converts {", ".join(CONVERTERS)}')
  return CONVERTERS[architecture]


def of_run(config) -> core.Converter:
  """The converter that exports a seqmodels run of `config` (its model family and task)."""
  family = config.model.name
  matches = [c for c in CONVERTERS.values() if c.family == family]
  if family == 'bert':  # pre-training (mlm data) or a classifier
    want = bert.PRETRAIN if config.data.name == 'mlm' else bert.CLASSIFY
    matches = [c for c in matches if c.architecture == want]
  if not matches:
    families = sorted({c.family for c in CONVERTERS.values()})
    core.fail(f'config.model.name={family!r} has no Hugging Face twin: export converts '
              f'{", ".join(families)}')
  if len(matches) > 1:  # those whose config_to_hf takes this run's config (its mixer, ...)
    refusals = {c.architecture: _refusal(c, config) for c in matches}
    fitting = [c for c in matches if not refusals[c.architecture]]
    if not fitting:
      core.fail(f'none of {", ".join(refusals)} converts this model.name={family} run: ' +
                '; '.join(f'{a}: {why}' for a, why in refusals.items()))
    if len(fitting) > 1:
      core.fail(f'{", ".join(c.architecture for c in fitting)} all convert this '
                f'model.name={family} run: pass --architecture=NAME')
    matches = fitting
  return matches[0]


def _refusal(conv: core.Converter, config) -> str:
  """Why `conv` cannot export a run of `config` ('' where it can)."""
  try:
    conv.config_to_hf(config)
  except errors.ConfigError as e:
    return str(e)
  return ''
