"""Charts as inline SVG from matplotlib (Agg backend): text kept as SVG text, escaped by matplotlib,
no external references, so the report stays one self-contained file.

Only these functions produce markup that the templates embed unescaped (markupsafe.Markup).
"""

from __future__ import annotations

import io
import itertools
import math
import re
from collections.abc import Sequence
from typing import Any

from markupsafe import Markup

WIDTH, HEIGHT = 6.4, 3.2
LEGEND_WIDTH = 2.2  # inches added on the right for a legend outside the data
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
# beyond the palette: the same colours again, dashed then dotted, so no two series look alike
LINESTYLES = ("-", "--", ":")
_XML_HEAD = re.compile(r"^.*?(?=<svg)", re.S)
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)
_SALT = itertools.count()


def _pyplot() -> Any:
    import matplotlib
    from cycler import cycler

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    # one salt per chart: the ids of clip paths and markers stay unique when charts share a page;
    # no mathtext: a '$' in a device or model name is text, not a formula that fails to parse
    plt.rcParams.update({"text.parse_math": False, "svg.fonttype": "none", "svg.hashsalt": f"edgeai{next(_SALT)}",
                         "font.size": 8, "axes.prop_cycle": cycler(color=PALETTE)})
    return plt


def _svg(fig: Any) -> Markup:
    plt = _pyplot()
    buf = io.StringIO()
    # fixed margins, not bbox_inches="tight": tight layout draws every figure twice
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    return Markup(_METADATA.sub("", _XML_HEAD.sub("", buf.getvalue(), count=1), count=1))


def _title(fig: Any, title: str) -> None:
    """The title left-aligned over the whole figure: a long one is not clipped by the axes' margins."""
    fig.suptitle(title, x=0.01, y=0.985, ha="left", va="top", fontsize=8.5, fontweight="bold")


def _log_axis(axis: Any, limits: tuple[float, float], base: float = 10) -> None:
    """Plain labels (1, 2, 5, 10, ...; 1, 2, 4, 8 in base 2) on a few major ticks, no minor ones:
    matplotlib labels minor ticks of a short log axis, and those labels overlap."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    lo, hi = (max(v, 1e-300) for v in limits)
    decades = abs(math.log(hi / lo, base)) if hi > 0 and lo > 0 else 0.0
    subs = (1.0, 2.0, 5.0) if base == 10 and decades <= 2 else (1.0,)
    axis.set_major_locator(LogLocator(base=base, subs=subs, numticks=8))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_locator(NullLocator())  # and no minor ticks: each is an artist, and most of a chart's drawing time


def line_chart(title: str, xlabel: str, ylabel: str,
               lines: Sequence[tuple[str, Sequence[float], Sequence[float]]],
               log_x: bool = False, log_y: bool = False, marks: Sequence[tuple[float, str]] = (),
               hlines: Sequence[tuple[float, str]] = (), xticks: Sequence[tuple[float, str]] = ()) -> Markup:
    """Lines (label, xs, ys); ``marks`` are vertical lines with a label (releases, a chosen cut),
    ``hlines`` horizontal reference lines in the legend (a baseline), ``xticks`` (x, label) for
    the x-axis. More than four series put the legend beside the data, never over it."""
    plt = _pyplot()
    outside = len(lines) + len(hlines) > 4
    width = WIDTH + (LEGEND_WIDTH if outside else 0)
    height = HEIGHT + (0.35 if xticks else 0)
    fig, ax = plt.subplots(figsize=(width, height))
    right = 1 - (LEGEND_WIDTH + 0.1) / width if outside else 0.98
    fig.subplots_adjust(left=0.82 / width, right=right, bottom=(0.5 + (0.35 if xticks else 0)) / height,
                        top=1 - 0.4 / height)
    for i, (name, xs, ys) in enumerate(lines):
        # markers only where they are few: on a long or crowded chart they cost drawing time and hide the lines
        ax.plot(list(xs), list(ys), marker="o" if len(xs) <= 30 and len(lines) <= 8 else None, markersize=3, label=name,
                color=PALETTE[i % len(PALETTE)], linestyle=LINESTYLES[(i // len(PALETTE)) % len(LINESTYLES)])
    for y, text in hlines:
        ax.axhline(y, color="#444", linestyle="-.", linewidth=1.0, label=text)
    for x, text in marks:
        ax.axvline(x, color="#999", linestyle=":", linewidth=0.8)
        ax.annotate(text, (x, 1.0), xycoords=("data", "axes fraction"), rotation=90, fontsize=6,
                    va="top", ha="right", color="#555")
    if log_x:
        ax.set_xscale("log", base=2)
        _log_axis(ax.xaxis, ax.get_xlim(), base=2)
    if log_y:
        ax.set_yscale("log")
        _log_axis(ax.yaxis, ax.get_ylim())
    if xticks:
        ax.set_xticks([x for x, _ in xticks], [t for _, t in xticks], fontsize=6)
    elif not log_x and all(float(x).is_integer() for _, xs, _ in lines for x in xs):
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # tenants, batches, layers: no 1.5
    _title(fig, title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if lines or hlines:
        if outside:
            ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0, frameon=False)
        else:
            ax.legend(fontsize=6, loc="best" if sum(len(x) for _, x, _ in lines) < 200 else "upper left",
                      framealpha=0.7)
    return _svg(fig)


def distribution_chart(title: str, xlabel: str, groups: Sequence[tuple[str, Sequence[float]]]) -> Markup:
    """Horizontal box plots, one per group (label, values), whiskers at 1st/99th percentiles."""
    plt = _pyplot()
    height = max(1.8, 0.3 * len(groups) + 1.1)
    fig, ax = plt.subplots(figsize=(WIDTH, height))
    longest = max((len(g) for g, _ in groups), default=0)
    fig.subplots_adjust(left=min(0.45, 0.03 + 0.011 * longest), right=0.97, bottom=0.5 / height,
                        top=1 - 0.4 / height)
    ax.boxplot([list(v) for _, v in groups], orientation="horizontal", whis=(1, 99), showfliers=False,
               tick_labels=[g for g, _ in groups])
    ax.set_xscale("log")
    _log_axis(ax.xaxis, ax.get_xlim())
    _title(fig, title)
    ax.set_xlabel(xlabel)
    ax.grid(alpha=0.3, axis="x")
    return _svg(fig)
