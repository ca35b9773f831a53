"""Widget pieces every step panel uses: a progress bar, an error box, notices, numbers and figures.

Everything here is updated by setting traits, so a background thread can update it safely; the
CSS classes (``fastml-lab-...``) let a browser test find the pieces.
"""

from __future__ import annotations

import html
import time

import ipywidgets as widgets


def _format_seconds(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


class ProgressBar:
    """A tqdm-like bar: ``desc: 3/10 epoch [00:04<00:09] loss 0.91``."""

    def __init__(self):
        self.bar = widgets.IntProgress(value=0, min=0, max=1, layout=widgets.Layout(width="40%"))
        self.label = widgets.HTML("")
        self.widget = widgets.HBox([self.bar, self.label]).add_class("fastml-lab-progress")
        self._start = time.perf_counter()
        self.reset()

    def reset(self) -> None:
        self.bar.value, self.bar.bar_style, self.label.value = 0, "", ""
        self.widget.layout.visibility = "hidden"

    def start(self) -> None:
        self._start = time.perf_counter()
        self.bar.bar_style = "info"
        self.widget.layout.visibility = "visible"

    def update(self, done: int, total: int, text: str = "") -> None:
        total = max(1, int(total))
        done = min(max(0, int(done)), total)
        elapsed = time.perf_counter() - self._start
        remaining = elapsed / done * (total - done) if done else 0.0
        with self.bar.hold_sync():
            self.bar.max, self.bar.value = total, done
        self.label.value = html.escape(
            f"{done}/{total} [{_format_seconds(elapsed)}<{_format_seconds(remaining)}] {text}".strip())

    def finish(self, outcome: str) -> None:
        self.bar.bar_style = {"done": "success", "stopped": "warning"}.get(outcome, "danger")
        if outcome == "done":
            self.bar.value = self.bar.max


class ErrorPanel:
    """A readable one-line message with the technical details folded away underneath."""

    def __init__(self):
        self.message = widgets.HTML("")
        self.details = widgets.HTML("")
        self.fold = widgets.Accordion(children=[self.details], titles=("Details",), selected_index=None)
        self.widget = widgets.VBox([self.message, self.fold]).add_class("fastml-lab-error")
        self.text = ""
        self.clear()

    def show(self, message: str, details: str = "") -> None:
        self.text = message
        self.message.value = (f'<div style="color:#a4000f;background:#fdecea;padding:6px 10px;'
                              f'border-left:4px solid #a4000f"><b>Error:</b> {html.escape(message)}</div>')
        self.details.value = f"<pre style='font-size:11px;white-space:pre-wrap'>{html.escape(details)}</pre>"
        self.fold.selected_index = None
        self.widget.layout.display = "flex"

    def clear(self) -> None:
        self.text = ""
        self.message.value = self.details.value = ""
        self.widget.layout.display = "none"


def notice_html(text: str, kind: str = "notice") -> str:
    """An amber (``notice``), grey (``note``) or green (``done``) line with a CSS class to find it."""
    colours = {"notice": ("#7a4d00", "#fff4e0"), "note": ("#333", "#f3f3f3"), "done": ("#1b5e20", "#e8f5e9")}
    fg, bg = colours[kind]
    return (f'<div class="fastml-lab-{kind}" style="color:{fg};background:{bg};padding:4px 10px;'
            f'margin:2px 0">{html.escape(text)}</div>')


def numbers_html(rows) -> str:
    """A two-column table of ``(label, value)`` rows."""
    body = "".join(f"<tr><td style='padding:2px 12px 2px 0;color:#555'>{html.escape(str(label))}</td>"
                   f"<td style='padding:2px 0'><b>{html.escape(str(value))}</b></td></tr>"
                   for label, value in rows)
    return f"<table class='fastml-lab-numbers'>{body}</table>"


def figure_widget(png: bytes, name: str) -> widgets.Image:
    """An Image widget for PNG bytes at their own size (narrower screens scale it down), tagged
    with the figure's name."""
    image = widgets.Image(value=png, format="png")
    width = int.from_bytes(png[16:20], "big")  # the PNG header's IHDR width
    image.layout.width, image.layout.max_width, image.layout.height = f"{width}px", "100%", "auto"
    return image.add_class("fastml-lab-figure").add_class(f"fastml-lab-figure-{name}")


def code_html(code: str) -> str:
    return (f"<pre class='fastml-lab-code' style='background:#f6f8fa;padding:8px;font-size:12px;"
            f"white-space:pre'>{html.escape(code)}</pre>")
