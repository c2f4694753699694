"""Run `cpo` and die with SIGKILL while the customer checkpoint runs (after the partitions are written to the
staging folder, before they move into the run folder), as an out-of-memory kill of a large file would; prints
the staging folder first.

    python tests/flows/kill_in_ingest.py cpo-arguments...
"""
import os
import signal
import sys

from flows import scale

validate = scale.P.validate_part


def validate_then_die(path, source, index, docs_dir=None, offset=0, partitions=1):
    validate(path, source, index, docs_dir, offset, partitions)
    os.write(2, f"staging folder: {scale.Partitioned.last.staged}\n".encode())  # not print: Prefect logs prints
    os.kill(os.getpid(), signal.SIGKILL)


init = scale.Partitioned.__init__


def remember(self, *a, **k):
    init(self, *a, **k)
    scale.Partitioned.last = self


scale.Partitioned.__init__ = remember
scale.validate_part = scale.task(name="validate-customers-part", cache_policy=scale.NO_CACHE)(validate_then_die)

from flows.cli import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
