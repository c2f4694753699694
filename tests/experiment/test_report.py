"""The report on a small results table: golden files for Markdown and HTML, and the charts' promises.

Regenerate the golden files after an intended change with CPO_UPDATE_GOLDEN=1 and read the diff.
"""
import math
import os
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tasks.experiment.analysis import lift_table, srm_checks
from tasks.explain import ATTRIBUTION_COLUMNS, Explanation
from tasks.explain.qini import QiniResult
from tasks.report import Callout, Paragraph, Section, forest_chart, line_chart, to_html, to_markdown
from tasks.sections import experiment_sections

GOLDEN = Path(__file__).parent / "golden"


def small_frame() -> pl.DataFrame:
    """Two regions; 'clicked' has no event in control in region s (relative lift undefined there)."""
    rows = []
    for region, n, opens_c, opens_t, clicks_c, clicks_t in (("n", 400, 80, 120, 8, 14), ("s", 400, 84, 90, 0, 9)):
        for arm, opens, clicks in (("control", opens_c, clicks_c), ("treatment", opens_t, clicks_t)):
            rows += [{"arm": arm, "region": region, "opened": int(i < opens), "clicked": int(i < clicks),
                      "spend": float(25 * (i % 37 == 0) * (1 + (i % 3)))} for i in range(n)]
    return pl.DataFrame(rows)


def small_report() -> tuple[str, str]:
    df = small_frame()
    results = lift_table(df, ["opened", "clicked", "spend"], "control", segment="region", caps={"spend": 0.99})
    srm = srm_checks(df, None, segment="region")
    curve = np.array([0.0, 3.0, 5.0, 6.0, 6.5, 6.0])
    expl = Explanation(attribution=pl.DataFrame({"metric": ["opened"] * 2, "arm": ["treatment"] * 2,
                                                 "feature": ["region", "tenure"], "importance": [0.02, 0.01],
                                                 "rank": [1, 2], "method": ["r_learner"] * 2, "qini": [0.01] * 2,
                                                 "qini_p_value": [0.005] * 2, "reliable": [True] * 2,
                                                 "n_fit": [800] * 2}).select(ATTRIBUTION_COLUMNS),
                       qini={("opened", "treatment"): QiniResult(0.01, 0.005, curve, 199)}, n_fit=1600,
                       n_total=1600, excluded={"user_id": "identifier", "clicked": "a metric of this run (measured "
                                                                                  "after the send)"})
    sections = [Section("Data", [Paragraph("1600 rows, two arms, two regions."),
                                 Callout("NOTE", "a small table for the golden-file test.", "note")])]
    sections += experiment_sections(results, srm, expl, 0.05, "holm")
    return to_markdown("Experiment report — golden", sections), to_html("Experiment report — golden", sections)


@pytest.mark.parametrize("kind", ["md", "html"])
def test_report_matches_golden_file(kind):
    markdown, html = small_report()
    text = markdown if kind == "md" else html
    path = GOLDEN / f"report.{kind}"
    if os.environ.get("CPO_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"report.{kind} changed; if intended, rerun with CPO_UPDATE_GOLDEN=1"


def test_undefined_relative_lift_is_shown_with_its_reason_not_dropped():
    markdown, html = small_report()
    assert "relative lift undefined: control mean is 0" in markdown
    assert "relative lift undefined: control mean is 0 (abs" in html  # inside the forest plot, with abs lift and p
    assert "Family 'headline'" in markdown and "Family 'segment:region'" in markdown
    assert "| Excluded columns | why |" in markdown and "| user_id | identifier |" in markdown


def _texts(svg: str):
    return [(float(x), float(size), text) for x, size, text in
            re.findall(r"<text x='([\d.]+)' y='[\d.]+' font-size='(\d+)'[^>]*>([^<]*)</text>", svg)]


def test_forest_labels_all_fit_inside_the_chart():
    rows = [{"label": "treatment_3 · champions_with_a_long_name", "rel_lift": 0.671, "lo": 0.21, "hi": 1.43,
             "significant": True},
            {"label": "treatment_1 · all", "rel_lift": -0.05, "lo": -0.3, "hi": 0.25, "significant": False},
            {"label": "treatment_2 · s", "rel_lift": math.nan, "lo": math.nan, "hi": math.nan, "significant": True,
             "reason": "relative lift undefined: control mean is 0 (abs 0.023, p 0.0021)"}]
    svg = forest_chart(rows)
    width = float(re.search(r"width='(\d+)'", svg).group(1))
    texts = _texts(svg)
    assert any("+67.1% [+21.0%, +143.0%]" in t for _, _, t in texts)
    assert any("relative lift undefined" in t for _, _, t in texts)
    for x, size, text in texts:
        if not text.endswith("%") or "[" in text:  # axis ticks are centred; every label starts inside
            assert x + 0.6 * size * len(text) <= width, text


def test_qini_chart_has_both_axes():
    svg = line_chart([("treatment · opened", [0.0, 2.0, 3.0, 3.5])])
    assert "share of customers targeted" in svg and "incremental outcomes" in svg
    assert ">0%<" in svg and ">100%<" in svg and ">3.5<" in svg
