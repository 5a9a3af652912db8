"""A self-contained HTML report of a run: metrics, front plot, hypervolume curve, the Pareto
table, selected models and their model cards. Images are embedded (base64 PNG), so the file
can be mailed or archived on its own."""

from __future__ import annotations

import base64
import html
import io
import json
import time
from pathlib import Path

import pandas as pd

from nas.config import Config
from nas.io import atomic_write_text

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{margin-bottom:0}.sub{color:#666;margin-top:.2em}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}
th,td{border:1px solid #ddd;padding:.3em .6em;text-align:right}th{background:#f4f4f4}
td.l,th.l{text-align:left}tr.sel{background:#eef6ff}
img{max-width:100%;border:1px solid #eee}
.cards{display:flex;flex-wrap:wrap;gap:1em}.card{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;flex:1 1 320px}
code{background:#f4f4f4;padding:0 .2em}
"""


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def _img_file(path: Path) -> str | None:
    return base64.b64encode(path.read_bytes()).decode() if path.is_file() else None


def _hv_curve(path: Path) -> str | None:
    if not path.is_file():
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hv = pd.read_csv(path)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(hv.evaluations, hv.hypervolume, lw=2)
    ax.set_xlabel("evaluations")
    ax.set_ylabel("hypervolume (normalised)")
    ax.grid(alpha=0.3)
    out = _png(fig)
    plt.close(fig)
    return out


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if v == v else ""
    if isinstance(v, (list, dict)):
        return html.escape(json.dumps(v))
    return html.escape(str(v))


def _table(rows: list[dict], cols: list[str], selected: list[bool] | None = None) -> str:
    head = "".join(f"<th class='l'>{html.escape(c)}</th>" for c in cols)
    body = []
    for i, r in enumerate(rows):
        cls = " class='sel'" if selected and selected[i] else ""
        cells = "".join(f"<td{' class=l' if not isinstance(r.get(c), (int, float)) else ''}>{_fmt(r.get(c, ''))}</td>"
                        for c in cols)
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def write_report(cfg: Config, out: Path | None = None) -> Path:
    """Write the report of the run whose outputs ``cfg`` points at; returns its path."""
    sel, reports = Path(cfg.selection.out_dir), Path(cfg.selection.reports_dir)
    pareto_csv, metrics_json = sel / "pareto.csv", reports / "metrics.json"
    for p in (pareto_csv, metrics_json):
        if not p.is_file():
            raise FileNotFoundError(f"{p}: no finished run to report on (run `evonas run` or `evonas stage select` first)")
    metrics = json.loads(metrics_json.read_text())
    front = pd.read_csv(pareto_csv)
    cards = [json.loads(p.read_text()) for p in sorted((sel / "models").glob("*.json"))]
    summary_path = Path(cfg.search.out_dir) / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}

    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>evonas report</title><style>{CSS}</style>"
             "</head><body>",
             f"<h1>evonas run report</h1><p class='sub'>space <code>{cfg.space.kind}</code>, strategy "
             f"<code>{cfg.search.strategy}</code> ({cfg.search.mode}), evaluation <code>{cfg.evaluation.kind}</code>, "
             f"seed {cfg.seed}{'' if cfg.search.seed is None else f', search seed {cfg.search.seed}'}, objectives <code>{', '.join(cfg.search.objectives)}</code>; written "
             f"{time.strftime('%Y-%m-%d %H:%M:%S')}</p>"]
    keys = ["n_evaluated", "n_failed", "n_timeout", "n_pareto", "n_selected", "hypervolume", "best_val_accuracy",
            "reported_model", "test_accuracy", "wall_seconds"]
    parts.append("<h2>Summary</h2>" + _table([{k: metrics.get(k) for k in keys}], [k for k in keys if k in metrics]))
    if metrics.get("failures"):
        parts.append("<p>Failed or timed-out candidates by reason: " + _fmt(metrics["failures"]) + "</p>")
    if metrics.get("stage_seconds"):
        parts.append("<h3>Seconds per stage</h3>" + _table([metrics["stage_seconds"]], list(metrics["stage_seconds"])))

    front_png = _img_file(reports / "pareto.png")
    if front_png:
        parts.append(f"<h2>Pareto front</h2><img alt='Pareto front' src='data:image/png;base64,{front_png}'>")
    hv_png = _hv_curve(reports / "hypervolume.csv")
    if hv_png:
        parts.append(f"<h2>Hypervolume</h2><img alt='hypervolume per evaluation' src='data:image/png;base64,{hv_png}'>")
    if summary.get("generations"):
        parts.append(_table(summary["generations"], ["generation", "evaluated", "failed", "hypervolume",
                                                     "evaluate_wall_seconds"]))

    cols = [c for c in ["candidate_id", "val_accuracy", *cfg.search.objectives, "params", "flops", "latency_ms",
                        "test_accuracy", "selected_by"] if c in front.columns]
    cols = list(dict.fromkeys(cols))
    rows = front.to_dict("records")
    parts.append(f"<h2>Non-dominated candidates ({len(front)})</h2><p>Selected models are highlighted.</p>"
                 + _table(rows, cols, [bool(r.get("selected")) for r in rows]))

    parts.append(f"<h2>Selected models ({len(cards)})</h2><div class='cards'>")
    for c in cards:
        files = ", ".join(f"<code>{html.escape(str(v))}</code>" for v in (c.get("files") or {}).values())
        shown = {k: v for k, v in c.items() if k not in ("files", "input_normalisation", "class_names")}
        parts.append(f"<div class='card'><h3>{html.escape(c['candidate_id'])}</h3>"
                     + "".join(f"<div><b>{html.escape(k)}</b>: {_fmt(v)}</div>" for k, v in shown.items())
                     + (f"<div><b>files</b>: {files}</div>" if files else "") + "</div>")
    parts.append(f"</div><p class='sub'>Models and cards: <code>{html.escape(str(sel / 'models'))}</code></p>")
    parts.append("</body></html>")
    path = Path(out) if out else reports / "report.html"
    atomic_write_text(path, "\n".join(parts))
    return path
