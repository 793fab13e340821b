#!/usr/bin/env bash
# The GPU figures issues 3 and 5 ask for, as one prepared run per part on a lent GPU (one JSON line per case).
#
#   bash bench/gpu_checks.sh gpt        # GPT: baby recipe and GPT-2 124M beside nanoGPT, KV-cache generation
#   bash bench/gpu_checks.sh recurrent  # LSTM/GRU beside PyTorch's cuDNN at 2x512/b64 (float32) and 2x1024/b128
#                                       # (bf16), recurrence scan / hoisted / cudnn, minGRU at T=4096, and
#                                       # unroll 4 / 16 against the GPU default 8
#   bash bench/gpu_checks.sh word_lm    # a word LSTM LM beside PyTorch's word_language_model (6 epochs each)
#   bash bench/gpu_checks.sh mixers     # every sequence mixer of the LM backbone: train step, memory, decoding
#   bash bench/gpu_checks.sh word2vec   # skip-gram beside gensim (3 CPU threads) on tinyshakespeare, 3 seeds: words/s,
#                                       # analogies, similarity (gensim's wheel in .whl/ or installed on the image)
#   QUICK=1 bash bench/gpu_checks.sh gpt recurrent   # tiny sizes: this script's plumbing, checked on a CPU
# The interpreter is $PYTHON, else .venv/bin/python where it exists, else python3 (the GPU image's).
#
# Each part writes $OUT/<part>.jsonl and $OUT/<part>.log ($OUT defaults to runs/gpu_checks) and must fit one
# device call (10 minutes): run the parts as separate calls, the GPT part first. Before the call, here:
#   ../shared/gpu/get-wheels                  # .whl/: the data stack the GPU image lacks (tfds, grain, ...)
#   a karpathy/nanoGPT checkout in third_party/nanoGPT, and the text in third_party/data/tinyshakespeare.txt
#   (../shared does not travel); for word_lm, pytorch/examples' word_language_model/ (main.py, model.py, data.py)
#   in third_party/pytorch_examples/word_language_model; then carry [".whl", "third_party"] in the device call.
set -uo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || { echo "usage: bench/gpu_checks.sh gpt|recurrent|word_lm ... (see its header)" >&2; exit 2; }
out=${OUT:-runs/gpu_checks}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH} || { echo "error: installing .whl/ failed" >&2; exit 1; }
fi
data=third_party/data/tinyshakespeare.txt
peer=third_party/nanoGPT
[ -f "$data" ] || data=../shared/data/tinyshakespeare.txt
if [ -n "${QUICK:-}" ]; then  # plumbing only: every case, at sizes a CPU runs in minutes
  baby=(--iters=20 --batch=2 --context=64) gpt2=(--iters=3 --batch=1 --context=64) gen=(--new_tokens=16)
  rec=(--quick --steps=2 --warmup=1 --T=32 --long_T=64) unroll=(--quick --cases=quick --steps=2 --warmup=1 --T=32)
  words=(--epochs=1 --size=16) w2v=(--seeds=1 --epochs=1) mix=(--quick --T=64 --steps=1 --warmup=1) peers=(--quick --T=64 --repeats=1 --warmup=1)
else
  baby=() gpt2=() gen=() rec=() unroll=(--cases=2x1024_b128 --impls=seqmodels) words=(--epochs=6)
  w2v=(--seeds=3 --batch=4096 --pairs_per_center=5)
  mix=(--width=512 --layers=4 --batch=8 --T=1024,2048,4096,8192) peers=(--width=512 --batch=8 --T=1024,4096)
fi
python=${PYTHON:-python3}
[ -z "${PYTHON:-}" ] && [ -x .venv/bin/python ] && python=.venv/bin/python  # the README's venv, where there is one
status=0
run() {  # run PART COMMAND...: JSON lines to $out/PART.jsonl, everything to $out/PART.log
  local part=$1; shift
  echo "+ $*" | tee -a "$out/$part.log"
  "$@" 2>>"$out/$part.log" | tee -a "$out/$part.jsonl" || status=1
}
for part in "$@"; do
  case $part in
    gpt)
      [ -f "$peer/train.py" ] || { echo "error: no nanoGPT checkout at $peer: see this script's header" >&2; exit 2; }
      run gpt "$python" bench/gpt.py --recipe=baby --data="$data" --peer="$peer" "${baby[@]}"
      run gpt "$python" bench/gpt.py --recipe=gpt2 --peer="$peer" "${gpt2[@]}"
      run gpt "$python" bench/gpt.py --recipe=generate "${gen[@]}" ;;
    recurrent)
      run recurrent "$python" bench/recurrent.py "${rec[@]}"
      for u in 4 16; do run recurrent "$python" bench/recurrent.py "${unroll[@]}" --unroll=$u; done ;;
    word_lm)
      words_peer=third_party/pytorch_examples/word_language_model
      [ -f "$words_peer/main.py" ] || { echo "error: no word_language_model at $words_peer: see this script's header" >&2; exit 2; }
      run word_lm "$python" bench/word_lm.py --data="$data" --peer="$words_peer" "${words[@]}" ;;
    mixers)  # every mixer of the LM backbone: training step and memory vs length, decoding per token
      run mixers "$python" bench/mixers.py "${mix[@]}"
      run mixers "$python" bench/mixer_peers.py "${peers[@]}" ;;
    word2vec)  # the corpus: tinyshakespeare (gensim's own test corpora ship in its wheel)
      run word2vec "$python" bench/word2vec.py --corpus="$data" "${w2v[@]}" ;;
    *) echo "error: unknown part '$part': choose gpt, recurrent, word_lm, mixers or word2vec" >&2; exit 2 ;;
  esac
done
exit $status
