"""Static HTML dashboards: one page per run (`report.html` in the run dir), a comparison page per
sweep, and one page comparing any runs. No server and no network: plots are embedded, sample grids
are linked relative to the page, so a run dir or a sweep dir can be copied anywhere and opened in a
browser.

    python -m gan_platform.report RUN_DIR                       # rebuild a run's report.html
    python -m gan_platform.report SWEEP_DIR [--metric eval/fid --mode min]
    python -m gan_platform.report RUN_A RUN_B ... [--out page.html]
"""

from gan_platform.tracking.report.run_page import ReportWriter, is_run_dir, write_run_report
from gan_platform.tracking.report.sweep_page import write_comparison, write_runs_comparison

__all__ = ["ReportWriter", "is_run_dir", "write_run_report", "write_comparison", "write_runs_comparison"]
