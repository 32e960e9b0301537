"""Charts as inline SVG from matplotlib (Agg backend): text kept as SVG text, escaped by matplotlib,
no external references, so the report stays one self-contained file.

Only these functions produce markup that the templates embed unescaped (markupsafe.Markup).
"""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Sequence

from markupsafe import Markup

WIDTH, HEIGHT = 6.4, 3.2
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
_XML_HEAD = re.compile(r"^.*?(?=<svg)", re.S)
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)
_SALT = itertools.count()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    # one salt per chart: the ids of clip paths and markers stay unique when charts share a page;
    # no mathtext: a '$' in a device or model name is text, not a formula that fails to parse
    plt.rcParams.update({"text.parse_math": False, "svg.fonttype": "none", "svg.hashsalt": f"edgeai{next(_SALT)}", "font.size": 8,
                         "axes.prop_cycle": matplotlib.cycler(color=PALETTE)})
    return plt


def _svg(fig) -> Markup:
    plt = _pyplot()
    buf = io.StringIO()
    # fixed margins, not bbox_inches="tight": tight layout draws every figure twice
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    return Markup(_METADATA.sub("", _XML_HEAD.sub("", buf.getvalue(), count=1), count=1))


def line_chart(title: str, xlabel: str, ylabel: str,
               lines: Sequence[tuple[str, Sequence[float], Sequence[float]]],
               log_x: bool = False, log_y: bool = False, marks: Sequence[tuple[float, str]] = ()) -> Markup:
    """Lines (label, xs, ys); ``marks`` are vertical lines with a label (releases, steps)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(WIDTH, HEIGHT))
    fig.subplots_adjust(left=0.13, right=0.98, bottom=0.15, top=0.9)
    for name, xs, ys in lines:
        ax.plot(list(xs), list(ys), marker="o" if len(xs) <= 30 else None, markersize=3, label=name)
    for x, text in marks:
        ax.axvline(x, color="#999", linestyle=":", linewidth=0.8)
        ax.annotate(text, (x, 1.0), xycoords=("data", "axes fraction"), rotation=90, fontsize=6,
                    va="top", ha="right", color="#555")
    if log_x:
        ax.set_xscale("log", base=2)
    if log_y:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if lines:
        ax.legend(fontsize=6, loc="upper left", framealpha=0.6)  # "best" searches: slow on long series
    return _svg(fig)


def distribution_chart(title: str, xlabel: str, groups: Sequence[tuple[str, Sequence[float]]]) -> Markup:
    """Horizontal box plots, one per group (label, values), whiskers at 1st/99th percentiles."""
    plt = _pyplot()
    height = max(1.6, 0.35 * len(groups) + 0.9)
    fig, ax = plt.subplots(figsize=(WIDTH, height))
    longest = max((len(g) for g, _ in groups), default=0)
    fig.subplots_adjust(left=min(0.5, 0.03 + 0.012 * longest), right=0.97, bottom=0.55 / height + 0.05,
                        top=1 - 0.35 / height)
    ax.boxplot([list(v) for _, v in groups], orientation="horizontal", whis=(1, 99), showfliers=False,
               tick_labels=[g for g, _ in groups])
    ax.set_xscale("log")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.grid(alpha=0.3, axis="x")
    return _svg(fig)
