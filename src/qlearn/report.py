"""One self-contained HTML page per set of runs: config, evaluation with confidence intervals, every
plot and the animation, inlined (no network needed to view it), and a side-by-side table when several
runs are given (tabular vs DQN, or several seeds)."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from qlearn.runs import RunInfo

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.6em} h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:1em 0} td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}
th{background:#f3f3f3} td.k{text-align:left;font-family:monospace}
img{max-width:100%;border:1px solid #eee;margin:.5em 0} .note{color:#666;font-size:.9em}
"""


# Marks on <body> how many figures decoded (shown in the page footer; browser tests read it).
CHECK = """window.addEventListener('load', () => {
  const imgs = [...document.images], ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.dataset.figures = ok + '/' + imgs.length;
  const p = document.createElement('p'); p.className = 'note';
  p.textContent = ok + ' of ' + imgs.length + ' figures shown'; document.body.appendChild(p);
});"""


def _img(path: Path, alt: str) -> str:
    mime = "image/gif" if path.suffix == ".gif" else "image/png"
    data = base64.b64encode(path.read_bytes()).decode()
    return (
        f'<figure><img alt="{html.escape(alt)}" src="data:{mime};base64,{data}">'
        f"<figcaption>{html.escape(alt)}</figcaption></figure>"
    )


def run_section(run: RunInfo, evaluation: dict[str, Any] | None, notes: list[str]) -> str:
    cfg = run.config
    rows = "".join(
        f"<tr><td class=k>{html.escape(k)}</td><td class=k>{html.escape(json.dumps(v))}</td></tr>"
        for k, v in sorted(cfg.get("agent_config", {}).items())
    )
    train = "".join(
        f"<tr><td class=k>{html.escape(k)}</td><td class=k>{html.escape(json.dumps(v))}</td></tr>"
        for k, v in sorted(cfg.get("train", {}).items())
    )
    parts = [
        f'<section class="run"><h2>{html.escape(run.path.name)}</h2>',
        f"<p>{html.escape(cfg['env_id'])} {html.escape(json.dumps(cfg.get('env_kwargs') or {}))}, "
        f"agent <b>{html.escape(cfg['agent'])}</b>; versions {html.escape(json.dumps(cfg.get('versions', {})))}</p>",
    ]
    parts.append(f"<p>{html.escape(chosen_by(cfg))}</p>")
    derived = cfg.get("derived")
    if isinstance(derived, dict) and isinstance(derived.get("why"), dict):
        why = "; ".join(f"{k}: {v}" for k, v in derived["why"].items())
        parts.append(f'<p class="note">No preset: settings derived from the env ({html.escape(why)}).</p>')
    if evaluation:
        lo, hi = evaluation["ci95"]
        slo, shi = evaluation["success_ci95"]
        exact = evaluation.get("exact_success_probability")
        parts.append(
            "<h3>Evaluation</h3><table class=eval><tr><th>greedy episodes</th><th>mean return</th>"
            "<th>95% CI</th><th>success rate</th><th>95% CI (Wilson)</th><th>exact success</th></tr>"
            f"<tr><td>{evaluation['episodes']}</td><td>{evaluation['mean_return']:.3f}</td>"
            f"<td>[{lo:.3f}, {hi:.3f}]</td><td>{evaluation['success_rate']:.3f}</td>"
            f"<td>[{slo:.3f}, {shi:.3f}]</td><td>{'' if exact is None else f'{exact:.4f}'}</td></tr></table>"
        )
        err = evaluation.get("value_error")
        if err:
            parts.append(
                f"<p>Q-values against Q* (value iteration), over the {err['states_compared']} states the agent acts "
                f"in: max |Q - Q*| {err['max_abs_diff']:.4f}, mean {err['mean_abs_diff']:.4f}; greedy action "
                f"optimal in {err['greedy_agree']} of {err['states_compared']}.</p>"
            )
    for name, alt in (
        ("learning_curve.png", "learning curve"),
        ("q_table.png", "Q-table and greedy policy"),
        ("values.png", "learned utility beside the optimal V*"),
        ("value_policy.png", "value and greedy policy over the state space"),
        ("episodes.gif", "greedy episodes"),
    ):
        if (run.path / name).is_file():
            parts.append(_img(run.path / name, alt))
    parts.append(f"<details><summary>agent settings</summary><table>{rows}</table></details>")
    parts.append(f"<details><summary>training settings</summary><table>{train}</table></details>")
    for n in notes:
        parts.append(f'<p class="note">{html.escape(n)}</p>')
    parts.append("</section>")
    return "\n".join(parts)


def chosen_by(cfg: dict[str, Any]) -> str:
    """How a run chose the agent it delivered, in words (``select_by=model`` said to be the model's choice)."""
    train = cfg.get("train", {})
    if train.get("keep_best") is False:
        return "Delivered: the final agent (keep_best off); the env's model, where it has one, only reports."
    if "select_by" not in train:
        return "Delivered: the best evaluated agent (a run from before select_by: exact where the env has a model)."
    if train["select_by"] == "model":
        return "Delivered: the best agent by the env's exact model (select_by=model): the model chose it."
    return "Delivered: the best agent on greedy evaluation episodes; the env's model, where it has one, only reports."


def comparison_table(runs: list[RunInfo], evaluations: list[dict[str, Any] | None]) -> str:
    head = (
        "<table class=compare><tr><th>run</th><th>agent</th><th>seed</th><th>mean return</th><th>95% CI</th>"
        "<th>success rate</th><th>exact success</th></tr>"
    )
    body = []
    for run, ev in zip(runs, evaluations):
        if ev is None:
            body.append(f"<tr><td class=k>{html.escape(run.path.name)}</td><td colspan=6>no agent</td></tr>")
            continue
        exact = ev.get("exact_success_probability")
        body.append(
            f"<tr><td class=k>{html.escape(run.path.name)}</td><td>{html.escape(run.config['agent'])}</td>"
            f"<td>{run.config.get('train', {}).get('seed', '')}</td><td>{ev['mean_return']:.3f}</td>"
            f"<td>[{ev['ci95'][0]:.3f}, {ev['ci95'][1]:.3f}]</td><td>{ev['success_rate']:.3f}</td>"
            f"<td>{'' if exact is None else f'{exact:.4f}'}</td></tr>"
        )
    return head + "".join(body) + "</table>"


def page(title: str, sections: list[str], comparison: str | None) -> str:
    top = f"<h2>Side by side</h2>{comparison}" if comparison else ""
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{top}{''.join(sections)}"
        f"<script>{CHECK}</script></body></html>"
    )
