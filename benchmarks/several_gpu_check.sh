#!/usr/bin/env bash
# The whole several-GPU check, on a machine with 2 or more NVIDIA GPUs (docs/performance.md,
# "Collectives on several GPUs"). Prints the tables; raw output goes to $OUT (default /tmp).
#   benchmarks/several_gpu_check.sh [NCCL_TESTS_SOURCE_DIR]
# With a nccl-tests source tree (git clone https://github.com/NVIDIA/nccl-tests), it is built
# against the NCCL of the installed nvidia-nccl wheel (the one PyTorch uses) and run beside us.
# Every GPU of the machine takes part. Environment: REPEATS (A/A runs, 5), INJECT (runs with
# 10% more bytes, 2), GRAPH (N > 0: nccl-tests also with -G N, graph replays), OPS.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp}
# NVLink multicast stays off: a program that uses it can take a shared host's GPUs down.
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
nvidia-smi --query-gpu=name,driver_version,power.limit --format=csv,noheader
nvidia-smi topo -m
python3 -c "import torch; print('torch', torch.__version__, 'nccl', torch.cuda.nccl.version())"
nccl_tests_args=()
if [ $# -ge 1 ]; then
    nccl=$(python3 -c "import nvidia.nccl as n; print(list(n.__path__)[0])")
    mkdir -p /tmp/nccl-home/lib && cp -r "$nccl/include" /tmp/nccl-home/
    ln -sf "$nccl/lib/libnccl.so.2" /tmp/nccl-home/lib/libnccl.so
    if make -j"$(nproc)" -C "$1/src" build NCCL_HOME=/tmp/nccl-home CUDA_HOME=/usr/local/cuda \
        NVCC_GENCODE="-gencode=arch=compute_90,code=sm_90" BUILDDIR=/tmp/nccl-tests-build \
        >"$out/nccl_tests_build.log" 2>&1; then
        export LD_LIBRARY_PATH="$nccl/lib:${LD_LIBRARY_PATH:-}"
        nccl_tests_args=(--nccl-tests /tmp/nccl-tests-build)
    else
        echo "nccl-tests did not build: see nccl_tests_build.log"; tail -5 "$out/nccl_tests_build.log"
    fi
fi
# Bandwidth of every operation beside nccl-tests; A/A of all_reduce; an injected +10% bytes.
python3 benchmarks/collective_check.py --backend nccl --sizes 1MiB,64MiB,1GiB \
    --ops "${OPS:-all_reduce,all_gather,reduce_scatter,broadcast,all_to_all}" \
    --repeats "${REPEATS:-5}" --refreshes 3 --inject-runs "${INJECT:-2}" "${nccl_tests_args[@]}" \
    --nccl-tests-graph "${GRAPH:-0}" \
    2>&1 | tee "$out/collective_check.txt"
