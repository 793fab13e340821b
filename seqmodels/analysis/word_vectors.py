"""Intrinsic evaluation of word vectors: nearest neighbours, analogies (3CosAdd accuracy per section
of a questions-words.txt file) and word similarity (Spearman's rho on a WordSim/SimLex TSV).

  python -m seqmodels.analysis.word_vectors --vectors=runs/w2v \
      --analogies=questions-words.txt --similarity=wordsim353.tsv --neighbours=king,day
--vectors repeats; each is a seqmodels word2vec run (its vectors.txt) or a vectors file in the
word2vec text or binary, GloVe or fastText format. Writes word_vectors.json into each run (or all
in one --out file), which the report shows as a table. gensim's conventions
(seqmodels/evals/word_vectors.py): case-insensitive, --restrict most frequent words.
"""

from __future__ import annotations

import os

from seqmodels import cli
from seqmodels.errors import SeqmodelsError

RESULT = 'word_vectors.json'


def evaluate(path: str, analogies: str = '', similarity: str = '', neighbours: tuple = (),
             k: int = 10, restrict: int = 300_000) -> dict:
  """The evaluations of one vectors source, as word_vectors.json holds them."""
  from seqmodels.data import vectors
  from seqmodels.evals import word_vectors
  vecs = word_vectors.Vectors.load(path, restrict)
  result = {'vectors': vectors.resolve(path), 'words': len(vecs.words),
            'dimension': int(vecs.raw.shape[1]), 'restrict': restrict}
  if analogies:
    result['analogies'] = {'file': os.path.abspath(analogies),
                           **word_vectors.analogies(vecs, analogies)}
  if similarity:
    result['similarity'] = {'file': os.path.abspath(similarity),
                            **word_vectors.similarity(vecs, similarity)}
  if neighbours:
    result['neighbours'] = {w: vecs.neighbours(w, k) for w in neighbours}
  return result


def main(argv: list[str] | None = None) -> None:
  parser = cli.ArgumentParser(prog='python -m seqmodels.analysis.word_vectors',
                              description=__doc__.split('\n')[0])
  parser.add_argument('--vectors', action='append', required=True,
                      help='a word2vec run (workdir) or a vectors file; repeats')
  parser.add_argument('--analogies', default='', help='a questions-words.txt file')
  parser.add_argument('--similarity', default='', help='a TSV of word1, word2, human score')
  parser.add_argument('--neighbours', default='', help='comma-separated words')
  parser.add_argument('--k', type=int, default=10, help='neighbours per word')
  parser.add_argument('--restrict', type=int, default=300_000,
                      help='the most frequent words kept (gensim: restrict_vocab)')
  parser.add_argument('--out', default='', help='one JSON file for all (default: each run\'s)')
  args = parser.parse_args(argv)
  for flag in ('analogies', 'similarity'):
    path = getattr(args, flag)
    if path and not os.path.isfile(path):
      cli.fail(f'--{flag}={path} is not a file: point it at a local file')
  for path in args.vectors:
    if not os.path.exists(path):
      cli.fail(f'--vectors={path} does not exist: name a word2vec run or a vectors file')
  outs = [args.out] if args.out else [
      os.path.join(p, RESULT) if os.path.isdir(p) else p + '.' + RESULT for p in args.vectors]
  for out in outs:  # before any computing
    cli.check_writable(out, '--out' if args.out else '--vectors')
  words = tuple(w for w in args.neighbours.split(',') if w)
  results = []
  for path in args.vectors:
    try:
      results.append(evaluate(path, args.analogies, args.similarity, words, args.k, args.restrict))
    except SeqmodelsError as e:
      cli.fail(str(e))
    summary = results[-1]
    line = [f'{path}: {summary["words"]} words']
    if 'analogies' in summary:
      a = summary['analogies']
      line.append(f'analogies {a["accuracy"]:.4f} of {a["questions"]}')
    if 'similarity' in summary:
      line.append(f'similarity rho {summary["similarity"]["spearman"]:.4f} '
                  f'({summary["similarity"]["pairs"]} pairs)')
    print(', '.join(line))
    for word, near in summary.get('neighbours', {}).items():
      print(f'  {word}: ' + ', '.join(f'{w} {c:.3f}' for w, c in near) if near
            else f'  {word}: not in the vocabulary')
  for out, result in zip(outs, [results] if args.out else results):
    cli.write_json(out, result)


if __name__ == '__main__':
  main()
