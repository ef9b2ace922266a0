"""A W&B workspace laid out for GAN runs, built with the `wandb-workspaces` package:

    python -m gan_platform.tracking.workspace --entity E --project P     # or: gan-dashboard --entity E --project P
    gan-dashboard --entity E --project P --print                          # show the layout, save nothing

Sections, in the order a GAN researcher reads them: the samples (the sample grids, each class's row
per evaluation and the 2-D scatter, as tracking/wandb.py logs them), quality (FID, KID,
precision/recall, class accuracy, the CycleGAN metrics), mode collapse (modes covered, high-quality
samples, reverse KL), the losses with D's scores on real and fake, and training health (gradient
norms, D's accuracies, ADA's p, speed). Evaluation metrics are plotted against their own x axis,
`eval/step`. The metric names and which panels pair them come from runs/metrics.py, the same table
the HTML dashboards read. Saving needs W&B online (`wandb login`); building and checking does not.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Optional, Sequence

from gan_platform.errors import UserError, report_and_exit
from gan_platform.runs.metrics import HEADLINE, HEALTH, SHARED_PANELS, group
from gan_platform.tracking.wandb import EVAL_STEP

LOSSES = ("train/d_loss", "train/g_loss", "train/d_real", "train/d_fake", "train/wasserstein", "train/grad_penalty")
SAMPLE_TABLES = ("samples_by_class", "samples_scatter_table")


def _modules():
    try:
        import wandb_workspaces.reports.v2 as wr
        import wandb_workspaces.workspaces as ws
    except ImportError:
        raise UserError("The W&B workspace builder needs the wandb-workspaces package: "
                        "pip install wandb-workspaces (scripts/install installs it).") from None
    return ws, wr


def line_panels(keys: Sequence[str], x: str) -> list[Any]:
    """One line plot per metric, except the pairs of `SHARED_PANELS`, which share one."""
    _, wr = _modules()
    panels, done = [], set()
    for key in keys:
        if key in done:
            continue
        pair = next(((title, members) for title, members in SHARED_PANELS.items() if key in members), None)
        title, members = pair if pair else (key, (key,))
        members = [m for m in members if m in keys] or [key]
        done.update(members)
        panels.append(wr.LinePlot(title=title, x=x, y=list(members)))
    return panels


def build_workspace(entity: str, project: str, name: str = "GAN runs") -> Any:
    """The workspace object (not saved): sections for samples, quality, mode collapse, losses and health."""
    ws, wr = _modules()
    quality = [k for k in HEADLINE if group(k) == "quality"]
    collapse = [k for k in HEADLINE if group(k) == "collapse"]
    samples = [wr.MediaBrowser(title="sample grids", media_keys=["samples"], num_columns=1),
               *[wr.WeavePanelSummaryTable(table_name=t) for t in SAMPLE_TABLES]]
    sections = [ws.Section(name="Samples", panels=samples, is_open=True),
                ws.Section(name="Quality", panels=line_panels(quality, EVAL_STEP), is_open=True),
                ws.Section(name="Mode collapse", panels=line_panels(collapse, EVAL_STEP), is_open=True),
                ws.Section(name="Losses", panels=line_panels(LOSSES, "Step"), is_open=True),
                ws.Section(name="Health", panels=line_panels([*HEALTH, "perf/it_per_s"], "Step"))]
    return ws.Workspace(entity=entity, project=project, name=name, sections=sections)


def layout(workspace: Any) -> list[dict[str, Any]]:
    """[{"section", "panels": [{"title", "x", "y"} or {"media"} or {"table"}]}]: what the workspace shows."""
    out = []
    for section in workspace.sections:
        panels = []
        for p in section.panels:
            if hasattr(p, "y"):
                panels.append({"title": p.title, "x": p.x, "y": list(p.y)})
            elif hasattr(p, "media_keys"):
                panels.append({"title": p.title, "media": list(p.media_keys)})
            else:
                panels.append({"table": getattr(p, "table_name", None)})
        out.append({"section": section.name, "panels": panels})
    return out


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gan_platform.tracking.workspace", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entity", required=True, help="the W&B entity (user or team)")
    parser.add_argument("--project", required=True, help="the W&B project the runs are in (tracker.project)")
    parser.add_argument("--name", default="GAN runs", help="the workspace's name")
    parser.add_argument("--print", dest="show", action="store_true", help="print the layout as JSON and save nothing")
    args = parser.parse_args(argv)
    try:
        workspace = build_workspace(args.entity, args.project, args.name)
        if args.show:
            print(json.dumps(layout(workspace), indent=2))
            return 0
        try:
            saved = workspace.save()
        except Exception as e:  # noqa: BLE001 - any W&B failure is the user's setup: one sentence
            raise UserError(f"Could not save the workspace to W&B ({type(e).__name__}): run `wandb login` "
                            f"and check --entity {args.entity} --project {args.project}.") from None
    except UserError as e:
        report_and_exit(e)
    print(getattr(saved, "url", "") or f"saved workspace '{args.name}' in {args.entity}/{args.project}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
