"""What a model family declares about itself: its registry entry, and the config helpers entries
share.

Each model module ends with `ENTRIES = {name: Entry(...)}`; `seqmodels/models/registry.py` collects
them. The training loop, validation, the analyses and the report ask an entry, never a model's name.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn

from seqmodels.errors import check
from seqmodels.layers.mlp import ACTIVATIONS
from seqmodels.layers.recurrent import GATES, default_recurrence


def _no_checks(config) -> None:
  del config


def _no_flops(m, data) -> float:
  del m, data
  return 0.0


def _multiple_of_4(m) -> int:
  del m
  return 4
def _any_length(m) -> str:
  del m
  return ''


def _no_cell(m) -> str:
  del m
  return ''


def _no_table(m) -> bool:
  del m
  return False


@dataclasses.dataclass(frozen=True)
class Entry:
  """A model family's registry entry (one per `config.model.name`)."""
  # (config.model, data, compute dtype) -> flax module; `data` gives vocab_size, seq_len, kind and
  # meta.
  build: Callable[..., nn.Module]
  # The task kinds (seqmodels.train.steps.OBJECTIVES) the module's outputs serve.
  kinds: tuple[str, ...]
  # The objective it trains with when not its data's kind ('bilm': ELMo on lm data).
  objective: str = ''
  # 'counting': fitted in one pass by seqmodels/train/count.py, no module and no gradient steps.
  trained_by: str = 'gradient'
  # Its own config checks, after the generic ones: config -> None, raising errors.ConfigError.
  check: Callable[[Any], None] = _no_checks
  # Whether it trains on natural text only, where every token is real (a biLM predicts each one).
  needs_text: bool = False
  # Whether it carries a state from window to window of running text (train.carry_state).
  carries_state: bool = False
  # config.model.tie_embeddings: 'option' (a field of it), 'always' (tied by design) or 'never'.
  tie_embeddings: str = 'never'
  # config.model -> the cell of its RecurrentLayers (rnn | lstm | gru), or '' where it has none.
  recurrent_cell: Callable[[Any], str] = _no_cell
  # LMs: (model, params, prompt_BxP, rng, *, max_new, temperature, top_k, top_p, eos_id, window)
  # -> tokens_BxN, the prompt continued by sampling (analysis.samples); None for other models.
  generate: Callable[..., Any] | None = None
  # seq2seq: (model, params, src_BxS) -> (decoding.StepFn, cache), for greedy and beam decoding.
  decode_step: Callable[..., Any] | None = None
  # config.model -> whether it reads positions from a learned table of data.seq_len rows, so cannot
  # embed a longer sequence (a test length past the training one is refused).
  learned_positions: Callable[[Any], bool] = _no_table
  # LMs: (config.model, length) -> the numbers of state it carries per sequence when decoding at
  # `length` tokens (attention's KV cache, a recurrence's state: Zoology's x axis); None: unknown.
  decode_state: Callable[[Any, int], int] | None = None
  # Evaluations it adds after training, by name in seqmodels.evals.AFTER_TRAINING ('translation').
  after_training: tuple[str, ...] = ()
  # (config.model, data) -> its forward FLOPs per token beyond 2 per weight of its non-embedding
  # parameters: attention's T-dependent term, a scan's work, a tied output layer's 2 V D
  # (seqmodels/models/size.py).
  flops: Callable[[Any, Any], float] = _no_flops
  # config.model -> the step of the widths model.params / model.flops_per_token choose from (one
  # that its heads split).
  width_multiple: Callable[[Any], int] = _multiple_of_4
  # The parameter paths of its word embedding tables (nn.Embed, [V, E]), which
  # model.pretrained_vectors initialises; () where it has none that pre-trained vectors fit.
  embedding: tuple[str, ...] = ()
  # config.model -> '' where it reads windows longer than it trained on (train.eval_lengths), else
  # why not, in words ('it learns one position embedding per position up to data.seq_len').
  longer_windows: Callable[[Any], str] = _any_length


def parallel_scan(m) -> bool | None:
  """config.model.min_scan (mingru/minlstm training path) as the layers take it: True, False or None
  (auto)."""
  return {'auto': None, 'parallel': True, 'sequential': False}[m.get('min_scan', 'auto')]


def recurrence(m) -> str:
  """config.model.recurrence (how rnn/lstm/gru layers run) as the layers take it; 'auto': the
  platform's."""
  r = m.get('recurrence', 'auto')
  return default_recurrence() if r == 'auto' else r


def cell_of(name: str) -> Callable[[Any], str]:
  """`recurrent_cell` of a family built on one cell: `name` when it runs through RecurrentLayers."""
  return lambda m: name if name in GATES else ''


def heads_multiple(m) -> int:
  """The width step of a model whose heads split its width: the heads."""
  return m.heads


def check_positive(section, *fields: str, where: str = 'model') -> None:
  for f in fields:
    v = section[f]
    check(isinstance(v, int) and v > 0, f'config.{where}.{f}={v!r} must be a positive integer')


def check_heads(m) -> None:
  """config.model.heads divides config.model.width (multi-head attention splits the width)."""
  check_positive(m, 'heads')
  divisors = [h for h in range(1, m.width + 1) if m.width % h == 0][:8]
  check(m.width % m.heads == 0, f'config.model.heads={m.heads} does not divide config.model.width='
        f'{m.width}: choose heads from {divisors} or change width')


def check_pretrained_fields(config) -> None:
  """gpt, bert: the fields a pre-trained checkpoint sets (seqmodels.hf): activation, LayerNorm
  epsilon, a position table at least as long as the windows."""
  m = config.model
  act = m.get('activation', 'gelu')
  check(act in ACTIVATIONS, f'config.model.activation={act!r} is not an activation: choose one of '
        f'{", ".join(ACTIVATIONS)}')
  check(m.get('norm_eps', 1e-6) > 0, f'config.model.norm_eps={m.get("norm_eps")!r} must be > 0')
  positions = m.get('positions', 0)
  check(positions == 0 or positions >= config.data.seq_len,
        f'config.model.positions={positions} is shorter than config.data.seq_len='
        f'{config.data.seq_len}: lower seq_len, or set positions to 0 (seq_len positions)')
