"""`python -m gan_platform.report DIR` (or `gan-report DIR`): rebuild a run's report.html, or write
a sweep's comparison page; `python -m gan_platform.report RUN_A RUN_B ...` compares any runs. The
pages themselves are built in tracking/report/."""

from __future__ import annotations

import sys

from gan_platform.tracking.report.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
