#!/usr/bin/env bash
# Distributed search with torchrun: tools/dist_search.sh CONFIG CHECKPOINT NPROC [search.py args...]
# Rank 0 samples and broadcasts; every rank evaluates its shard of the val set. Without CUDA the
# processes use gloo on the CPU (tools/search.py sets it up).
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python}

PYTHONPATH="$ROOT":$PYTHONPATH \
exec "$PYTHON" -m torch.distributed.run \
    --nnodes=$NNODES \
    --node_rank=$NODE_RANK \
    --master_addr=$MASTER_ADDR \
    --nproc_per_node=$GPUS \
    --master_port=$PORT \
    "$ROOT/tools/search.py" \
    $CONFIG \
    $CHECKPOINT \
    --launcher pytorch ${@:4}
