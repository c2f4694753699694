#!/bin/sh
# A campaign on an existing Dask cluster (DASK_SCHEDULER_ADDRESS) whose worker shares the run folder's file
# system but not the flow machine's /tmp (a private /tmp mount namespace: needs root for `unshare -m`).
# The run must complete: everything a worker reads is in or beside the run folder.
#     sh benchmarks/remote_dask.sh [OUT_FOLDER]
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd); PY=${PY:-$ROOT/.venv/bin/python}; DASK=$(dirname "$PY")/dask
OUT=${1:-$(mktemp -d)}; mkdir -p "$OUT"; cd "$OUT"
"$DASK" scheduler --host 127.0.0.1 --port 8799 --no-dashboard > sched.log 2>&1 & SCHED=$!
sleep 4
unshare -m sh -c "mount -t tmpfs tmpfs /tmp && cd $OUT && PYTHONPATH=$ROOT exec $DASK worker tcp://127.0.0.1:8799 --nworkers 1 --nthreads 1 --no-dashboard" > worker.log 2>&1 & WORKER=$!
sleep 8
cd "$ROOT" && CPO_TASK_RUNNER=dask DASK_SCHEDULER_ADDRESS=tcp://127.0.0.1:8799 PYTHONPATH=$ROOT \
  "$PY" -m flows.cli run --out "$OUT/run" --approve-as me > "$OUT/run.log" 2>&1
code=$?
kill $WORKER $SCHED
echo "cpo run on the remote cluster: exit $code ($OUT/run)"
exit $code
