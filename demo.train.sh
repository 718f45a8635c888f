# demo.train.sh - the training flags of `make demo` (sourced by demo.sh).
#
# Brown corpus, BPE vocabulary 8192, ~1.5M tokens; DEMO_MINUTES (10) of wall time on
# 2 cores. Sizes picked by short trials (see bench/README.md, the demo's two models):
# d=128 with 4 layers trains ~2500 tokens per CPU-second (the Transformer baseline ~3400), so 10 minutes on
# 2 idle cores is roughly 2-3M tokens, 1.5-2 epochs of Brown, about 1000-1300 steps of
# 16 x 128 tokens. A larger model (d=256) is ~4x slower and sees under half an epoch.
# The learning rate decays linearly to 0 at the end of the time budget.
BACKPACK_TRAIN_FLAGS="--d 128 --layers 4 --heads 4 --senses 16 --context 128 --batch 16 \
--lr 2e-3 --warmup 100 --weight-decay 0.1 --clip 1.0 --dropout 0 --seed 1337 \
--eval-every 200 --eval-batches 20 --save-every 250"

# The Transformer baseline of the same contextual size, for the comparison in bench/README.md
# (the same flags; --senses is ignored):
#   backpack train --data data/brown --tokenizer data/brown-bpe --out runs/demo-transformer \
#       --minutes "$DEMO_MINUTES" --arch transformer $BACKPACK_TRAIN_FLAGS
BACKPACK_BASELINE_FLAGS="--arch transformer $BACKPACK_TRAIN_FLAGS"

# OpenMP threads that spin while waiting lose badly when the 2 cores are shared (a busy
# machine measured 386 tokens/s spinning vs 900 passive for the same 8 steps); passive
# waiting costs little on an idle machine. A value set by the user wins.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
