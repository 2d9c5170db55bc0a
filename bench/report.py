"""Turning a run's figures into the issue-7 table: each figure, the floor, the ratio, the target.

Why the targets live here and not in CI: CI never asserts on timings (a shared machine is too
noisy); the table shows pass/fail so a person can read the run, and ``bench/run.py`` only fails
when a workload could not run or too many requests failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MB = 1024 * 1024

# Issue 7's targets (2 cores, PostgreSQL and wrk on the same cores, 100,000 patients).
READ_RATIO, ACCOUNTABLE_RATIO, SEARCH_RATIO, P99_RATIO = 0.7, 0.5, 0.3, 3.0
CRUD_RPS, INGEST_RPS = 1300.0, 2000.0
GAPS_SECONDS, GAPS_RSS_MB, WORKER_RSS_MB = 10.0, 300.0, 200.0
TARGET_PATIENTS = 100_000


@dataclass(frozen=True)
class Row:
    number: str
    workload: str
    service: str
    floor: str
    ratio: str
    target: str
    failures: str
    verdict: str


def _verdict(*checks: bool) -> str:
    return "pass" if all(checks) else "**FAIL**"


def _ms(value: float) -> str:
    return f"{value:.1f} ms" if value >= 1 else f"{value:.2f} ms"


def _failures(summary: dict[str, Any]) -> str:
    return f"{summary['failures']:,} / {summary['requests']:,}"


def _wrk_row(
    number: str, name: str, data: dict[str, Any], floor: dict[str, Any], ratio: float | None
) -> Row:
    service = data.get(name, {})
    if service.get("error") or not service.get("requests"):
        reason = service.get("error") or "did not run"
        return Row(number, _NAMES[name], f"not run: {reason}", "", "", _TARGETS[name], "", "—")
    rps, p99 = service["rps"], service["p99_ms"]
    figure = f"{rps:,.0f} req/s, p50 {_ms(service['p50_ms'])}, p99 {_ms(p99)}"
    floor_text, ratio_text, checks = "", "", [service["failures"] == 0]
    if floor.get("requests"):
        floor_text = f"{floor['rps']:,.0f} req/s, p99 {_ms(floor['p99_ms'])}"
        rps_ratio = rps / floor["rps"] if floor["rps"] else 0.0
        p99_ratio = p99 / floor["p99_ms"] if floor["p99_ms"] else float("inf")
        ratio_text = f"{rps_ratio:.2f}x req/s, p99 {p99_ratio:.1f}x"
        if ratio is not None:
            checks += [rps_ratio >= ratio, p99_ratio <= P99_RATIO]
    if name == "crud":
        checks.append(rps >= CRUD_RPS)
    return Row(
        number,
        _NAMES[name],
        figure,
        floor_text,
        ratio_text,
        _TARGETS[name],
        _failures(service),
        "" if name == "floor" else _verdict(*checks),
    )


_NAMES = {
    "floor": "floor: minimal Starlette + asyncpg read by id",
    "read": "read CareTeam by id",
    "accountable": "`CareTeam/$accountable` by NHS number",
    "search": "`CareTeam?subject:identifier=…&status=active&_include=CareTeam:participant`",
    "crud": "CRUD mix on CareTeam (10% C, 40% R, 20% U, 30% S)",
}
_TARGETS = {
    "floor": "—",
    "read": f"≥ {READ_RATIO}x floor req/s, p99 ≤ {P99_RATIO:.0f}x floor, 0 non-2xx",
    "accountable": f"≥ {ACCOUNTABLE_RATIO}x floor req/s, p99 ≤ {P99_RATIO:.0f}x floor, 0 non-2xx",
    "search": f"≥ {SEARCH_RATIO}x floor req/s, p99 ≤ {P99_RATIO:.0f}x floor, 0 non-2xx",
    "crud": f"≥ {CRUD_RPS:,.0f} req/s, 0 non-2xx",
}


def rows(data: dict[str, Any]) -> list[Row]:
    """Every figure of a run (the JSON ``bench/run.py`` writes) as table rows."""
    floor = data.get("floor", {})
    out = [_wrk_row("0", "floor", data, {}, None)]
    out.append(_wrk_row("1", "read", data, floor, READ_RATIO))
    out.append(_wrk_row("2", "accountable", data, floor, ACCOUNTABLE_RATIO))
    out.append(_wrk_row("3", "search", data, floor, SEARCH_RATIO))
    out.append(_wrk_row("4", "crud", data, floor, None))

    ingest = data.get("ingest", {})
    if ingest.get("error"):
        out.append(Row("5", "ingest", f"not run: {ingest['error']}", "", "", "", "", "—"))
    else:
        rate = ingest.get("resources_per_second", 0.0)
        out.append(
            Row(
                "5",
                "ingest: 100-entry transaction Bundles",
                f"{rate:,.0f} resources/s ({ingest.get('resources', 0):,} in "
                f"{ingest.get('seconds', 0):.1f} s)",
                "",
                "",
                f"≥ {INGEST_RPS:,.0f} resources/s",
                "0",
                _verdict(rate >= INGEST_RPS),
            )
        )
    gaps = data.get("gaps", {})
    if gaps.get("error"):
        out.append(
            Row("6", "`$accountability-gaps`", f"not run: {gaps['error']}", "", "", "", "", "—")
        )
    elif gaps:
        peak = gaps["peak_worker_rss"] / MB
        out.append(
            Row(
                "6",
                "`$accountability-gaps`, whole population",
                f"{gaps['seconds']:.2f} s for {gaps['entries']:,} issues in {gaps['pages']} pages;"
                f" peak worker RSS {peak:.0f} MB",
                "",
                "",
                f"≤ {GAPS_SECONDS:.0f} s, peak RSS ≤ {GAPS_RSS_MB:.0f} MB",
                "0",
                _verdict(gaps["seconds"] <= GAPS_SECONDS, peak <= GAPS_RSS_MB),
            )
        )
    history = data.get("history", {})
    if history.get("error"):
        out.append(
            Row("7", "`_history?_since=`", f"not run: {history['error']}", "", "", "", "", "—")
        )
    elif history:
        out.append(
            Row(
                "7",
                "`_history?_since=` paged to the end",
                f"{history['per_second']:,.0f} resources/s ({history['entries']:,} in "
                f"{history['seconds']:.1f} s, {history['pages']} pages)",
                "",
                "",
                "— (no target)",
                "0",
                "",
            )
        )
    rss = [size / MB for size in data.get("workers_rss_end", [])]
    if rss:
        out.append(
            Row(
                "—",
                "every worker's RSS after the run",
                ", ".join(f"{size:.0f} MB" for size in rss),
                "",
                "",
                f"≤ {WORKER_RSS_MB:.0f} MB each",
                "",
                _verdict(max(rss) <= WORKER_RSS_MB),
            )
        )
    return out


def markdown(data: dict[str, Any]) -> str:
    """The table, with a header line saying what was run (targets assume 100,000 patients)."""
    meta = data["meta"]
    lines = [
        f"Run {meta['started']} on {meta['cpus']} CPUs: {meta['patients']:,} patients "
        f"(seed {meta['seed']}), {meta['resources']:,} resources; wrk {meta['connections']} "
        f"connections, {meta['duration']:g} s x {meta['runs']} runs (medians) after a "
        f"{meta['warmup']:g} s warm-up; `keyworker serve --workers {meta['workers']}`, "
        f"auth {meta['auth']}.",
        "",
        "| # | Workload | Service | Floor | Ratio to floor | Target (issue 7) | Non-2xx | Result |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows(data):
        cells = [row.number, row.workload, row.service, row.floor, row.ratio, row.target]
        cells += [row.failures, row.verdict]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    if meta["patients"] != TARGET_PATIENTS:
        lines += [
            "",
            f"The absolute targets (ingest, CRUD req/s, gaps time and RSS) are stated for "
            f"{TARGET_PATIENTS:,} patients; this run had {meta['patients']:,}.",
        ]
    return "\n".join(lines) + "\n"
