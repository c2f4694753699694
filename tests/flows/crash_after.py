"""Run `cpo` and die with SIGKILL right after a stage completes (or after N audit rows): a crash test harness.

    python tests/flows/crash_after.py STAGE|audit:N cpo-arguments...
"""
import os
import signal
import sys

from tasks import rundir
from tasks.safety import audit

where, args = sys.argv[1], sys.argv[2:]
if where.startswith("audit:"):
    limit, append = int(where.split(":")[1]), audit.AuditLog.append

    def append_then_die(self, *a, **k):
        row = append(self, *a, **k)
        if self.count >= limit:
            os.kill(os.getpid(), signal.SIGKILL)
        return row
    audit.AuditLog.append = append_then_die
else:
    finish = rundir.RunDir.finish

    def finish_then_die(self, stage, *a, **k):
        finish(self, stage, *a, **k)
        if stage == where:
            os.kill(os.getpid(), signal.SIGKILL)
    rundir.RunDir.finish = finish_then_die

from flows.cli import main  # noqa: E402

sys.exit(main(args))
