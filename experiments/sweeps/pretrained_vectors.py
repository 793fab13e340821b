"""A word LSTM LM with random embeddings beside one started from word2vec vectors (trained on, and
frozen), and the n-gram: what pre-trained word vectors change, overall and on rare words.

  # small (CPU): word2vec on the train split of the same text, then the four LMs
  python launch.py --config=experiments/configs/word2vec.py --config.data.min_count=2 \
      --config.data.path=../shared/data/tinyshakespeare.txt --workdir=runs/w2v_small
  python launch.py --config=experiments/configs/word_lm.py:small --config.model.embed=100 \
      --config.data.path=../shared/data/tinyshakespeare.txt \
      --sweep=experiments/sweeps/pretrained_vectors.py:small --workdir=runs/pretrained_vectors_small
  python -m seqmodels.analysis.rare_words --workdir=runs/pretrained_vectors_small/<trial> ...
  # full: WikiText-2, Zaremba et al.'s medium LSTM (650 wide), 650-dimensional vectors
  python launch.py --config=experiments/configs/word2vec.py --config.model.width=650 \
      --config.data.min_count=1 --config.data.path='wikitext-2/wiki.{split}.tokens' \
      --workdir=runs/w2v_full
  python launch.py --config=experiments/configs/word_lm.py \
      --config.data.path='wikitext-2/wiki.{split}.tokens' \
      --sweep=experiments/sweeps/pretrained_vectors.py:full --workdir=runs/pretrained_vectors_full

Each variant reads its vectors from the word2vec run above (VECTORS: run from the repository root);
model.embed must be their width. The word2vec run reads the same text's train split only (a single
file is split 90/10 at the same character by both), so no validation word leaks into the vectors.
"""

from seqmodels import sweep

VECTORS = {'small': 'runs/w2v_small', 'full': 'runs/w2v_full'}


def get_sweep(arg: str = ''):
  vectors = VECTORS[sweep.variant(arg, list(VECTORS), 'full', 'pretrained_vectors.py')]
  return [{'model.name': 'ngram', 'model.order': 3},
          {'model.name': 'lstm'},
          {'model.name': 'lstm', 'model.pretrained_vectors': vectors},
          {'model.name': 'lstm', 'model.pretrained_vectors': vectors, 'optim.freeze': 'embed'}]
