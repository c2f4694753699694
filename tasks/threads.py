"""OpenMP thread control for scikit-learn fits.

On this 2-core machine, with Prefect's threads and other processes busy, OpenMP's spin-waiting made one
HistGradientBoosting fit take 125 s instead of 0.5 s. One OpenMP thread per fit is fast and reproducible.
"""
from threadpoolctl import threadpool_limits


def single_threaded():
    return threadpool_limits(limits=1, user_api="openmp")
