"""Interpolated Kneser-Ney n-gram LM (Kneser & Ney 1995; modified KN of Chen & Goodman 1998) over
token ids.

The statistical baseline that shows the sparsity problem: the longer the context, the more contexts
at test time were never seen in training (`unseen_context_fraction`), and the model falls back to
shorter ones.

  p_k(w | h) = max(c_k(hw) - D(c_k(hw)), 0) / c_k(h.) + gamma(h) p_{k-1}(w | h'),
  gamma(h) = sum_w D(c_k(hw)) / c_k(h.)
with h' = h without its first token, p_0 = 1 / V, and p_k(w | h) = p_{k-1}(w | h') when c_k(h.) = 0
(unseen h). c_n are raw counts at the highest order n; lower orders use continuation counts c_k(hw)
= |{v : c(vhw) > 0}|. D(c) is modified KN's D1, D2, D3+ for c = 1, 2, >= 3 (estimated per order from
counts-of-counts) when `discount=None`, or one fixed D for every count and order (standard
interpolated KN) when `discount` is a float; each D(c) is capped at c, which keeps every
distribution normalised.

Data layout: the training stream is one 1-D token array (no sentence boundaries). At evaluation, the
context of targets[b, t] is inputs[b, :t+1]; only its last n-1 tokens are used and contexts never
cross rows, so the first positions of a row use the (continuation-count) distribution of the order
their shorter context allows. N-grams are stored as a trie in sorted numpy arrays: the id of a
k-gram is its index among the sorted keys (id of its (k-1)-gram prefix) * V + last token, so lookups
are vectorised `searchsorted` calls.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from seqmodels import decoding
from seqmodels.models import entry

Batch = dict[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class OrderTable:
  """The k-grams of one order k, sorted by key = (id of the (k-1)-gram context) * V + word."""
  keys: np.ndarray       # int64 [M]
  kept: np.ndarray       # float64 [M]: count - discount (raw counts at the top order, continuation
                         # below)
  total: np.ndarray      # float64 [P]: sum of counts per context id (P = number of (k-1)-grams; 1
                         # for k = 1)
  gamma: np.ndarray      # float64 [P]: sum of discounts per context / total (0 where total is 0)
  discounts: tuple[float, float, float]  # D1, D2, D3+ used at this order


def _find(keys: np.ndarray, query: np.ndarray, valid: np.ndarray) -> np.ndarray:
  """Index of each query in sorted `keys`, -1 where absent or not valid."""
  pos = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
  return np.where(valid & (keys[pos] == query), pos, -1)


def _modified_discounts(counts: np.ndarray, fallback: float = 0.75) -> tuple[float, float, float]:
  """Chen & Goodman's D1, D2, D3+ from counts-of-counts n1..n4; `fallback` where they are
  undefined."""
  n = [np.sum(counts == r) for r in (1, 2, 3, 4)]
  if min(n) == 0:
    return (min(fallback, 1.0), fallback, fallback)
  y = n[0] / (n[0] + 2 * n[1])
  d = [r - (r + 1) * y * n[r] / n[r - 1] for r in (1, 2, 3)]
  return tuple(float(v) if 0 < v <= r else min(fallback, r) for r, v in zip((1, 2, 3), d))


@dataclasses.dataclass(frozen=True)
class NGramLM:
  """A fitted n-gram LM; `tables[k - 1]` holds order k."""
  order: int
  vocab_size: int
  tables: tuple[OrderTable, ...]

  def _context_ids(self, inputs_BxT: np.ndarray) -> list[np.ndarray]:
    """gid[m][b, s]: id of the m-gram inputs[b, s:s+m] among training m-grams, -1 if unseen or past
    the row."""
    Bn, T = inputs_BxT.shape
    V = self.vocab_size
    gid = [np.zeros((Bn, T), np.int64)]  # the empty context, id 0
    for m in range(1, self.order):
      prev = gid[m - 1]
      ids = np.full((Bn, T), -1, np.int64)
      n = T - m + 1
      if n > 0:
        parent = prev[:, :n]
        ids[:, :n] = _find(self.tables[m - 1].keys, parent * V + inputs_BxT[:, m - 1:], parent >= 0)
      gid.append(ids)
    return gid

  def _query_contexts(self, inputs_BxT: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each order k: (context id [B, T] or -1, available [B, T]) of the context that predicts
    targets[b, t]."""
    gid = self._context_ids(inputs_BxT)
    T = inputs_BxT.shape[1]
    out = []
    for k in range(1, self.order + 1):
      s = np.arange(T) - (k - 2)  # the (k-1)-token context of position t starts at t - k + 2
      avail = np.broadcast_to(s >= 0, inputs_BxT.shape)
      ctx = np.where(avail, gid[k - 1][:, np.clip(s, 0, T - 1)], -1)
      out.append((ctx, avail))
    return out

  def prob(self, batch: Batch) -> np.ndarray:
    """p(targets[b, t] | inputs[b, :t+1]) as float64 [B, T]."""
    inputs, targets = self._check(batch)
    p = np.full(inputs.shape, 1.0 / self.vocab_size)
    for k, (ctx, avail) in enumerate(self._query_contexts(inputs), start=1):
      tab = self.tables[k - 1]
      c = np.maximum(ctx, 0)
      seen = (ctx >= 0) & (tab.total[c] > 0)
      j = _find(tab.keys, c * self.vocab_size + targets, seen)
      top = np.where(j >= 0, tab.kept[np.maximum(j, 0)], 0.0) / np.where(seen, tab.total[c], 1.0)
      p = np.where(avail & seen, top + tab.gamma[c] * p, p)
    return p

  def nll(self, batch: Batch) -> np.ndarray:
    """Per-token negative log-likelihood in nats, float64 [B, T] (padding included: weight it
    yourself)."""
    return -np.log(self.prob(batch))

  def distribution(self, batch: Batch) -> np.ndarray:
    """The full next-token distribution p(. | inputs[b, :t+1]), float64 [B, T, V] (for small
    B*T*V)."""
    inputs, _ = self._check(batch)
    Bn, T = inputs.shape
    V = self.vocab_size
    P_QxV = np.full((Bn * T, V), 1.0 / V)
    for k, (ctx, avail) in enumerate(self._query_contexts(inputs), start=1):
      tab = self.tables[k - 1]
      c = np.maximum(ctx, 0).ravel()
      use = (avail & (ctx >= 0)).ravel() & (tab.total[c] > 0)
      q = np.nonzero(use)[0]
      P_QxV[q] *= tab.gamma[c[q], None]
      # a context's continuations are contiguous in the sorted keys
      lo = np.searchsorted(tab.keys, c[q] * V)
      hi = np.searchsorted(tab.keys, (c[q] + 1) * V)
      rows = np.repeat(q, hi - lo)
      idx = np.repeat(lo - np.cumsum(hi - lo) + (hi - lo), hi - lo) + np.arange(rows.size)
      P_QxV[rows, tab.keys[idx] % V] += tab.kept[idx] / tab.total[c[rows]]
    return P_QxV.reshape(Bn, T, V)

  def argmax(self, batch: Batch) -> np.ndarray:
    """The most probable next token at every position, int64 [B, T]:
    `distribution(batch).argmax(-1)`, ties to the smallest id, without the dense [B, T, V] array (a
    word vocabulary makes it gigabytes).

    Only the continuations of a position's seen contexts (orders >= 2) get more than the unigram
    term, and every other word's probability grows with its unigram weight; so the candidates are
    those continuations and the first word by unigram weight that is not one of them. Each
    candidate's probability is computed with the same operations in the same order as
    `distribution`, so the argmax is the same to the last bit.
    """
    inputs, _ = self._check(batch)
    Bn, T = inputs.shape
    V, Q = self.vocab_size, Bn * T
    contexts = [(np.maximum(ctx, 0).ravel(), (avail & (ctx >= 0)).ravel()) for ctx, avail in
                self._query_contexts(inputs)]
    used = [use & (tab.total[c] > 0) for (c, use), tab in zip(contexts, self.tables)]
    q_parts, w_parts = [], []
    # the continuations of each used context, contiguous in the sorted keys
    for k in range(2, self.order + 1):
      tab, (c, _) = self.tables[k - 1], contexts[k - 1]
      q = np.flatnonzero(used[k - 1])
      lo, hi = np.searchsorted(tab.keys, c[q] * V), np.searchsorted(tab.keys, (c[q] + 1) * V)
      n = hi - lo
      q_parts.append(np.repeat(q, n))
      w_parts.append(tab.keys[np.repeat(lo - np.cumsum(n) + n, n) + np.arange(n.sum())] % V)
    pairs = np.sort(
        np.concatenate([q * V + w for q, w in zip(q_parts, w_parts)] + [np.zeros(0, np.int64)]))
    pairs = pairs[np.concatenate([[True], pairs[1:] != pairs[:-1]])] if pairs.size else pairs
    q_cand, w_cand = np.divmod(pairs, V)  # a word continues contexts of several orders: once each
    # The best other word of each position: the first, by unigram weight, that is not a candidate
    # there.
    unigram = self.tables[0]
    weight_V = np.zeros(V)
    weight_V[unigram.keys % V] = unigram.kept
    by_weight = np.lexsort((np.arange(V), -weight_V))  # ties: the smallest id first, as argmax
    rank_V = np.empty(V, np.int64)
    rank_V[by_weight] = np.arange(V)
    ranked = np.sort(q_cand * V + rank_V[w_cand])
    q_sorted, r_sorted = np.divmod(ranked, V)
    starts = np.searchsorted(q_sorted, np.arange(Q))
    # per position: the smallest rank missing from its candidates (sorted, so the first i with
    # rank_i != i)
    within = np.arange(q_sorted.size) - starts[q_sorted]
    gaps = np.flatnonzero(r_sorted != within)
    gap_q, first = np.unique(q_sorted[gaps], return_index=True)
    # no gap: every rank below the count is a candidate
    first_gap = np.bincount(q_sorted, minlength=Q)
    first_gap[gap_q] = within[gaps[first]]
    extra = np.flatnonzero(first_gap < V)
    q_all = np.concatenate([q_cand, extra])
    w_all = np.concatenate([w_cand, by_weight[first_gap[extra]]])
    p = np.full(q_all.size, 1.0 / V)
    for k, ((c, _), tab) in enumerate(zip(contexts, self.tables), start=1):
      ctx, on = c[q_all], used[k - 1][q_all]
      j = _find(tab.keys, ctx * V + w_all, on)
      p = np.where(on, p * tab.gamma[ctx] +
                       np.where(j >= 0, tab.kept[np.maximum(j, 0)] / tab.total[ctx], 0.0),
                   p)
    best = np.lexsort((w_all, -p, q_all))
    first = best[np.searchsorted(q_all[best], np.arange(Q))]
    return w_all[first].reshape(Bn, T)

  def eval_sums(self, batch: Batch) -> dict[str, float]:
    """Sums over weighted tokens with the keys of the neural eval step (train/steps.py
    make_lm_eval_step)."""
    inputs, targets = self._check(batch)
    w = np.asarray(batch['weights'], np.float64)
    right = self.argmax(batch) == targets
    has_tokens = w.sum(-1) > 0
    return {'nll': float((self.nll(batch) * w).sum()), 'tokens': float(w.sum()),
            'correct': float((right * w).sum()), 'sequences': float(has_tokens.sum()),
            'sequences_correct': float((np.all(right | (w == 0), -1) & has_tokens).sum())}

  def unseen_context_fraction(self, batch: Batch) -> dict[int, float]:
    """{k: weighted fraction of evaluated positions whose (k-1)-token context never occurs in
    training}.

    For orders k = 2..n, over positions that have at least k-1 tokens of context in their row.
    """
    inputs, _ = self._check(batch)
    w = np.asarray(batch['weights'], np.float64)
    out = {}
    for k, (ctx, avail) in enumerate(self._query_contexts(inputs), start=1):
      if k >= 2:
        n = (w * avail).sum()
        out[k] = float((w * avail * (ctx < 0)).sum() / n) if n > 0 else float('nan')
    return out

  def _check(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
    inputs = np.asarray(batch['inputs'], np.int64)
    targets = np.asarray(batch['targets'], np.int64)
    for name, v in (('inputs', inputs), ('targets', targets)):
      if v.size and (v.min() < 0 or v.max() >= self.vocab_size):
        raise ValueError(f'batch[{name!r}] has ids outside [0, vocab_size={self.vocab_size}); '
                         'fit the n-gram with the vocabulary size of the tokenizer.')
    return inputs, targets


def fit(tokens_1d: np.ndarray, order: int, vocab_size: int,
        discount: float | None = None) -> NGramLM:
  """Counts all 1..n-grams of the stream and builds the interpolated Kneser-Ney tables.

  discount=None: modified KN (D1, D2, D3+ per order, Chen & Goodman 1998); a float: that one D
  everywhere.
  """
  tokens = np.asarray(tokens_1d, np.int64).ravel()
  if order < 1 or tokens.size < order:
    raise ValueError(f'order={order} needs order >= 1 and at least that many training tokens '
                     f'(got {tokens.size}).')
  if tokens.min() < 0 or tokens.max() >= vocab_size:
    raise ValueError(f'training tokens must lie in [0, vocab_size={vocab_size}).')
  N, V = tokens.size, vocab_size
  # per order k: id of the k-gram at each position, sorted keys, first positions
  ids, uniq, first = [], [], []
  prev = np.zeros(N, np.int64)
  for k in range(1, order + 1):
    key = prev[:N - k + 1] * V + tokens[k - 1:]
    u, idx, inv = np.unique(key, return_index=True, return_inverse=True)
    ids.append(inv.ravel())
    uniq.append(u)
    first.append(idx)
    prev = ids[-1]
  tables = []
  for k in range(1, order + 1):
    if k == order:
      counts = np.bincount(ids[k - 1], minlength=len(uniq[k - 1])).astype(np.float64)
    else:
      # continuation count: distinct left extensions; the (k+1)-gram at i has its suffix k-gram at i
      # + 1
      counts = np.bincount(ids[k - 1][first[k] + 1], minlength=len(uniq[k - 1])).astype(np.float64)
    if discount is None:
      d = _modified_discounts(counts)
      sub = np.select([counts == 1, counts == 2, counts >= 3], list(d), 0.0)
    else:
      d = (float(discount),) * 3
      sub = np.full_like(counts, float(discount))
    sub = np.minimum(sub, counts)
    parents = uniq[k - 1] // V
    P = 1 if k == 1 else len(uniq[k - 2])
    total = np.bincount(parents, weights=counts, minlength=P)
    gamma = np.bincount(parents, weights=sub, minlength=P) / np.maximum(total, 1e-300)
    tables.append(OrderTable(uniq[k - 1], counts - sub, total, gamma, d))
  return NGramLM(order, vocab_size, tuple(tables))


def step_function(model: NGramLM, prompt_BxP: np.ndarray, new_tokens: int):
  """For seqmodels.decoding: (step_fn, cache, first_tokens_B) continuing `prompt_BxP` with the
  n-gram, whose distribution given the last n-1 tokens is computed on the host (numpy) through a
  callback. The cache is the text so far, [B, P + new_tokens], and how much of it is filled (rank
  0)."""
  B, P = prompt_BxP.shape
  context = max(model.order - 1, 1)

  def log_probs(text_BxL, n):  # the distribution after text[:, :n], given its last n-1 tokens
    inputs = np.asarray(text_BxL[:, max(0, int(n) - context):int(n)], np.int64)
    return np.log(model.distribution({'inputs': inputs,
                                      'targets': np.zeros_like(inputs)})[:, -1]).astype(np.float32)

  def step_fn(last_B, cache, t):
    text_BxL = jax.lax.dynamic_update_slice(cache['text'], last_B[:, None], (0, cache['n']))
    logits_BxV = jax.pure_callback(log_probs,
                                   jax.ShapeDtypeStruct((B, model.vocab_size), jnp.float32),
                                   text_BxL, cache['n'] + 1)
    return logits_BxV, {'text': text_BxL, 'n': cache['n'] + 1}

  text_BxL = jnp.zeros((B, P + new_tokens), jnp.int32).at[:, :P - 1].set(prompt_BxP[:, :-1])
  return (step_fn, {'text': text_BxL, 'n': jnp.int32(P - 1)},
          jnp.asarray(prompt_BxP[:, -1], jnp.int32))


def _generate(model: NGramLM, params, prompt_BxP, rng, *, max_new: int, temperature: float = 0.0,
              top_k: int = 0, top_p: float = 1.0, eos_id: int | None = None,
              window: int = 0) -> jax.Array:
  del params, window  # the counts are the model; its context is order - 1 tokens
  return decoding.sample(*step_function(model, prompt_BxP, max_new), max_new, rng,
                         temperature=temperature, top_k=top_k, top_p=top_p, eos_id=eos_id)


def _counted(m, data, dtype):
  raise ValueError(f'model {m.name!r} is fitted by counting, not built as a module: '
                   'seqmodels.train.count.fit_and_evaluate runs it')


def _check(config) -> None:
  m = config.model
  entry.check_positive(m, 'order')
  entry.check(0 <= m.discount <= 1, f'config.model.discount={m.discount!r} must be in [0, 1] (0 '
              'means modified Kneser-Ney discounts estimated from the counts)')


ENTRIES = {'ngram': entry.Entry(_counted, kinds=('lm',), trained_by='counting', check=_check,
                                carries_state=True, generate=_generate)}
