"""OpenMP thread control for scikit-learn fits.

On this 2-core machine, with Prefect's threads and other processes busy, OpenMP's spin-waiting made one
HistGradientBoosting fit take 125 s instead of 0.5 s. One OpenMP thread per fit is fast and reproducible.
The limit only reaches a library that is already loaded, so scikit-learn's OpenMP runtime is loaded first.
"""
from threadpoolctl import threadpool_limits


def single_threaded():
    import sklearn.utils._openmp_helpers  # noqa: F401 - loads libgomp so the limit below applies to it

    return threadpool_limits(limits=1, user_api="openmp")
