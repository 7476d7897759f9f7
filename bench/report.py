"""Writing a run's results: latest.json (everything), latest.md (the table) and latest.png."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROWS = [
    # (figure, what it is, the baselines it is compared with)
    ("baseline_bare_json", "bare Starlette route, fixed JSON (framework ceiling)", ()),
    ("baseline_one_sql", "bare route, one SQL query via the threadpool (naive stack)", ()),
    ("baseline_one_redis", "bare route, one Redis HGETALL via the threadpool", ()),
    ("products_list_category", "GET /products?category=…", ("one_sql", "bare_json")),
    ("product_by_id", "GET /products/{id} (1,000 ids)", ("one_sql", "bare_json")),
    ("cart_read", "GET /cart", ("one_redis",)),
    ("cart_add", "POST /cart/items", ("one_redis",)),
    ("status_poll", "GET /orders/{id}/status", ("bare_json",)),
    ("status_poll_304", "… with If-None-Match (304)", ("bare_json",)),
    ("products_list_1000", "listing, 1k products", ()),
    ("products_list_10000", "listing, 10k products", ()),
    ("products_list_100000", "listing, 100k products", ()),
    ("dashboard", "GET /admin/dashboard (the run's orders)", ()),
    ("dashboard_100k", "GET /admin/dashboard (100k more orders)", ()),
]


def _table(results: dict[str, Any]) -> list[str]:
    figures, ratios = results["figures"], results["ratios"]
    lines = ["| scenario | req/s | p50 ms | p99 ms | errors | vs baseline |", "|---|---:|---:|---:|---:|---|"]
    for key, label, bases in ROWS:
        if key not in figures:
            continue
        f = figures[key]
        against = ", ".join(f"{ratios[f'{key}/{b}']}x {b}" for b in bases if f"{key}/{b}" in ratios)
        lines.append(
            f"| {label} | {f['rps']:,.0f} | {f['p50_ms']:.2f} | {f['p99_ms']:.2f} | {f['errors']} | {against} |"
        )
    return lines


def _pipeline(results: dict[str, Any]) -> list[str]:
    f = results["figures"]
    if "checkout" not in f:
        return []
    c, n = f["checkout"], f.get("noop_chain", {})
    polling = f"polling every {c['poll_interval_ms']:.0f} ms" if c["poll_interval_ms"] else "long polling"
    lines = [
        "",
        "| pipeline | value |",
        "|---|---:|",
        f"| orders confirmed end to end / s ({c['shoppers']} shoppers, {polling}) | {c['orders_per_s']:.1f} |",
        f"| pay → confirmed, p50 / p99 (client polling /status) | {c['pay_to_confirmed_p50_ms']:.1f} / "
        f"{c['pay_to_confirmed_p99_ms']:.1f} ms |",
        f"| order → confirmed, p50 | {c['order_to_confirmed_p50_ms']:.1f} ms |",
        *(
            [
                f"| one shopper alone: pay → confirmed p50 / p99 | {o['pay_to_confirmed_p50_ms']:.1f} / "
                f"{o['pay_to_confirmed_p99_ms']:.1f} ms ({o['orders_per_s']:.1f} orders/s) |"
            ]
            if (o := f.get("checkout_one_shopper"))
            else []
        ),
        *(
            [
                f"| 8 shoppers: pay → confirmed p50 / p99 | {e['pay_to_confirmed_p50_ms']:.1f} / "
                f"{e['pay_to_confirmed_p99_ms']:.1f} ms ({e['orders_per_s']:.1f} orders/s) |"
            ]
            if (e := f.get("checkout_8_shoppers"))
            else []
        ),
        f"| errors / failed orders during the run | {c['errors']} / {c['failed']} |",
    ]
    if "cpu" in c:
        lines.append(f"| app CPU per confirmed order: {_parts(c['cpu'])} | {c['cpu']['counted_ms']:.1f} ms |")
        lines.append(f"| load generator's CPU per confirmed order (not counted above) | {_others(c['cpu'])} |")
        lines.append(
            f"| … so these {results['cores']} cores confirm at most (orders/s, every part above) | "
            f"{c['cpu']['max_orders_per_s_on_these_cores']} |"
        )
    if n:
        lines += [
            f"| baseline: chains of {n['tasks_per_chain']} no-op tasks / s | {n['chains_per_s']:.1f} |",
            f"| baseline: one idle chain, p50 / p99 | {n['chain_idle_p50_ms']:.1f} / {n['chain_idle_p99_ms']:.1f} ms |",
        ]
        if "cpu" in n:
            lines.append(f"| baseline: CPU per no-op chain: {_parts(n['cpu'])} | {n['cpu']['counted_ms']:.1f} ms |")
            lines.append(
                f"| … PostgreSQL meanwhile, per chain (not counted: no-op tasks do not use it) | {_others(n['cpu'])} |"
            )
    for web, workers in ((1, 1), (1, 2), (1, 4), (2, 2), (2, 4)):
        w = f.get(f"checkout_workers_{workers}" if web == 1 else f"checkout_web{web}_workers_{workers}")
        if w:
            lines.append(
                f"| orders/s with {web} web and {workers} worker process(es) | {w['orders_per_s']:.1f} "
                f"(pay→confirmed p50 {w['pay_to_confirmed_p50_ms']:.1f} ms) |"
            )
    for key in ("integrity", "integrity_after_scaling"):
        if key in f:
            i = f[key]
            lines.append(
                f"| {key}: negative stock / stock not conserved / stuck pending / stuck reserved / lost / "
                f"confirmed unpaid / ledger not summing to stock | {i['negative_stock']} / "
                f"{i['stock_not_conserved']} / {i['stuck_pending']} / {i.get('stuck_reserved', '-')} / "
                f"{i.get('lost', '-')} / {i['confirmed_unpaid']} / {i.get('ledger_not_summing', '-')} |"
            )
    if "cpu" in c or "cpu" in n:
        lines += ["", CPU_DEFINITIONS]
    return lines


CPU_DEFINITIONS = (
    "CPU is user + system time read from `/proc` for the same processes on both sides, per unit of "
    "work. **App CPU per confirmed order** = the web process(es) + the Celery worker (its pool) + "
    "PostgreSQL (every backend) + Redis, from the start of the 32-shopper run until the broker is idle "
    "again (the confirmation emails, which wait behind the payments while the shoppers keep the worker "
    "busy, are part of what the orders cost), divided by the orders confirmed in the run; "
    "the load generator (this bench process: its HTTP client) is reported beside it and not counted. "
    "**CPU per no-op chain** = the same Celery worker + Redis + the publisher (this bench process, "
    "which plays the web's part: it publishes each chain and waits for its end), during the no-op "
    "throughput run, divided by the chains; the publisher's share is shown separately, and "
    "PostgreSQL (which no-op tasks do not touch) is shown but not counted."
)


def _parts(cpu: dict[str, Any]) -> str:
    ms = cpu["ms_per_unit"]
    return " + ".join(f"{part} {ms[part]:.1f}" for part in cpu["counted"]) + " (ms)"


def _others(cpu: dict[str, Any]) -> str:
    ms = cpu["ms_per_unit"]
    return ", ".join(f"{part} {value:.1f} ms" for part, value in ms.items() if part not in cpu["counted"]) or "-"


def _targets(results: dict[str, Any]) -> list[str]:
    if not results.get("targets"):
        return []
    lines = [
        "## Targets" + (" (quick run, figures not to quote)" if results.get("quick") else ""),
        "",
        "Each a ratio to a baseline measured in this run (medians); `make bench` exits non-zero on a miss.",
        "",
        "| target | measured | threshold | result |",
        "|---|---:|---:|---|",
    ]
    for t in results["targets"]:
        measured = "-" if t["measured"] is None else f"{t['measured']:.2f}" if t["ratio"] else f"{t['measured']:.0f}"
        if t["ratio"] and t["measured"] is not None and float(measured) == float(t["threshold"].split()[1]):
            measured = f"{t['measured']:.4f}"  # at the threshold once rounded: show which side it is on
        verdict = {True: "pass", False: "**FAIL**", None: "not measured"}[t["passed"]]
        lines.append(f"| {t['target']} | {measured} | {t['threshold']} | {verdict} |")
    return lines


def _chart(results: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figures = results["figures"]
    rows = [(label, figures[key]) for key, label, _ in ROWS if key in figures]
    fig, (left, right) = plt.subplots(1, 2, figsize=(17, 6.5))
    left.barh([_short(label, 60) for label, _ in rows], [f["rps"] for _, f in rows], color="#4a7")
    left.set_xlabel("requests/s (median of runs)")
    left.invert_yaxis()
    # Each ratio target as "how far along": measured / threshold for ">=", threshold / measured for
    # "<=", so 1 is the target on every row and a longer bar is better.
    scored = []
    for target in results.get("targets", []):
        measured, (sign, bound) = target.get("measured"), target["threshold"].split()
        if measured is None or not target.get("ratio"):
            continue
        score = measured / float(bound) if sign == ">=" else float(bound) / measured if measured else 0.0
        scored.append((_short(target["target"], 64), score, target["passed"]))
    if scored:
        right.barh(
            [n for n, _, _ in scored], [v for _, v, _ in scored], color=["#4a7" if ok else "#c54" for *_, ok in scored]
        )
        right.axvline(1.0, color="#333", linestyle="--", linewidth=1)
        right.set_xlabel("measured / target (1 = on target)\ngreen met, red missed")
        right.invert_yaxis()
    fig.suptitle(
        f"{results['cores']} cores, {results['timestamp'][:19]} (quick run)"
        if results.get("quick")
        else f"{results['cores']} cores, {results['timestamp'][:19]}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return True


def _short(label: str, width: int) -> str:
    """A chart label cut to width, saying so with an ellipsis."""
    return label if len(label) <= width else label[: width - 1].rstrip() + "…"


def write(results: dict[str, Any], directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "latest.json").write_text(json.dumps(results, indent=2, default=str))
    lines = [
        f"Run {results['timestamp'][:19]} UTC on {results['cores']} cores, Python {results['python']}; "
        f"{results['runs']} run(s) of {results['seconds_per_run']} s each, medians"
        + (" (QUICK: smoke only)" if results.get("quick") else "")
        + ".",
        "",
    ]
    lines += _targets(results) + ["", "## Figures", ""] + _table(results) + _pipeline(results)
    if _chart(results, directory / "latest.png"):
        lines += ["", "![throughput, and each target against its threshold](latest.png)"]
    (directory / "latest.md").write_text("\n".join(lines) + "\n")
