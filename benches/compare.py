#!/usr/bin/env python3
"""Side-by-side benchmarks of trajectory against what a user would pick instead.

Run through `benches/compare` (installs the pinned Python baselines and builds
the binaries first, in the release profile unless `--profile` names another).
One run, one generated corpus, medians of N runs (ingest after --warmup
untimed rounds of every tool; `sync` before each timed command):

  (a) ingest JSONL -> committed events: trajectory vs DuckDB read_json_auto ->
      COPY parquet zstd vs polars scan_ndjson -> sink_parquet, plus a parse-only
      floor (serde_json); MB/s, events/s, peak RSS; RSS at 1x and Kx input.
  (b) audit queries: trajectory (in process, query_timing example) vs DuckDB (in
      process) over the same Parquet segments.
  (c) MinHash near-dedupe: trajectory (minhash_texts example) vs datasketch,
      precision/recall against exact Jaccard.
  (d) export throughput of `trajectory export --target trl-sft`.

Prints a table and writes docs/benchmarks.md. Never asserts a time.

`--profile dev` (what CI's smoke run uses) times the unoptimised binaries the
test build already made, so CI compiles the dependency graph once: the run
proves the pipeline end to end and its figures are not performance figures
(the report says so, and its targets table marks nothing as met).
"""

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
TARGET_ROOT = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
# Set by main() from --profile: where cargo put that profile's binaries.
TARGET = TARGET_ROOT / "release"
BIN = TARGET / "trajectory"
CORPUS = TARGET / "trajectory-corpus"
EXAMPLES = TARGET / "examples"


def use_profile(profile):
    """Points BIN, CORPUS and EXAMPLES at cargo's output directory for `profile`
    (`dev` builds into `debug/`, every other profile into a directory of its name)."""
    global TARGET, BIN, CORPUS, EXAMPLES
    TARGET = TARGET_ROOT / ("debug" if profile == "dev" else profile)
    BIN = TARGET / "trajectory"
    CORPUS = TARGET / "trajectory-corpus"
    EXAMPLES = TARGET / "examples"

QUERIES = [
    ("cost per provider per day",
     "SELECT provider, CAST(ts AS DATE) AS day, count(*) AS calls, sum(cost_usd) AS cost "
     "FROM events WHERE kind = 'llm_call' GROUP BY provider, CAST(ts AS DATE) ORDER BY day, provider"),
    ("cloud exposure per session",
     "SELECT session_id, count(*) AS cloud_calls, sum(input_tokens) AS tokens_sent FROM events "
     "WHERE kind = 'llm_call' AND locality = 'cloud' GROUP BY session_id ORDER BY tokens_sent DESC LIMIT 50"),
    ("tool error rate per tool",
     "SELECT tool_name, count(*) AS results, "
     "sum(CASE WHEN tool_is_error OR tool_status = 'error' THEN 1 ELSE 0 END) AS errors FROM events "
     "WHERE kind = 'tool_result' GROUP BY tool_name ORDER BY errors DESC"),
    ("fallback chains",
     "SELECT session_id, requested_provider, next_provider, count(*) AS steps FROM events "
     "WHERE kind = 'fallback_decision' GROUP BY session_id, requested_provider, next_provider "
     "ORDER BY steps DESC LIMIT 100"),
    ("top sessions by tokens",
     "SELECT session_id, sum(input_tokens + output_tokens) AS tokens FROM events "
     "WHERE kind = 'llm_call' GROUP BY session_id ORDER BY tokens DESC LIMIT 20"),
    ("tokens per model per hour",
     "SELECT model, CAST(date_trunc('hour', ts) AS VARCHAR) AS hour, sum(output_tokens) AS out_tokens "
     "FROM events WHERE kind = 'llm_call' GROUP BY model, date_trunc('hour', ts) ORDER BY hour, model"),
    ("failed calls per provider",
     "SELECT provider, stop_reason, count(*) AS n FROM events WHERE kind = 'llm_call' "
     "AND stop_reason IN ('error', 'aborted') GROUP BY provider, stop_reason ORDER BY n DESC"),
    ("quarantine per source",
     "SELECT source_uri, count(*) AS lines FROM events WHERE kind = 'quarantined' "
     "GROUP BY source_uri ORDER BY lines DESC"),
    ("redacted events per agent",
     "SELECT agent_id, count(*) AS redacted FROM events WHERE redactions IS NOT NULL "
     "GROUP BY agent_id ORDER BY redacted DESC"),
    ("longest tool outputs",
     "SELECT session_id, tool_name, length(content) AS chars FROM events WHERE kind = 'tool_result' "
     "ORDER BY chars DESC LIMIT 20"),
]


# Where docs/benchmarks.md's hand-written analysis starts (kept across runs).
NOTES_HEADING = "## Where the time goes"


class Timed(NamedTuple):
    """One command run under /usr/bin/time."""
    seconds: float
    peak_rss_mb: float
    stdout: str
    user_s: float
    sys_s: float

    @property
    def cpu_s(self):
        """user + system CPU seconds."""
        return self.user_s + self.sys_s


def run_timed(cmd, env=None):
    """Runs cmd under /usr/bin/time; returns a Timed (wall seconds, peak RSS, stdout, CPU).

    Flushes the page cache's dirty pages first (not timed), so no command
    pays for writing back what the one before it wrote (the corpus, another
    tool's output, a deleted store)."""
    os.sync()
    with tempfile.NamedTemporaryFile("r", suffix=".time") as t:
        started = time.perf_counter()
        out = subprocess.run(["/usr/bin/time", "-f", "%M %U %S", "-o", t.name] + cmd,
                             capture_output=True, text=True, env=env)
        seconds = time.perf_counter() - started
        if out.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed: {out.stderr[-2000:]}")
        rss_kb, user, system = open(t.name).read().strip().splitlines()[-1].split()
    return Timed(seconds, int(rss_kb) / 1024, out.stdout, float(user), float(system))


def files_under(root, suffixes):
    return sorted(str(p) for p in Path(root).rglob("*") if p.is_file() and p.suffix in suffixes)


def total_bytes(paths):
    return sum(os.path.getsize(p) for p in paths)


DUCKDB_INGEST = r"""
import duckdb, sys
files, out = sys.argv[1], sys.argv[2]
con = duckdb.connect()
con.sql("SET enable_progress_bar = false")
con.sql(f"COPY (SELECT * FROM read_json_auto('{files}', format='newline_delimited', "
        f"union_by_name=true, ignore_errors=true, maximum_object_size=268435456)) "
        f"TO '{out}' (FORMAT parquet, COMPRESSION zstd)")
print(con.sql(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0])
"""

POLARS_INGEST = r"""
import polars as pl, sys
files, out = sys.argv[1], sys.argv[2]
pl.scan_ndjson(files, infer_schema_length=None, ignore_errors=True).sink_parquet(out, compression="zstd")
print(pl.scan_parquet(out).select(pl.len()).collect().item())
"""

DUCKDB_QUERIES = r"""
import duckdb, json, os, sys, time
from deltalake import DeltaTable
table, queries, runs = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
files = [u.replace("file://", "") for u in DeltaTable(table).file_uris()]
con = duckdb.connect()
con.sql("SET enable_progress_bar = false")
con.sql(f"CREATE VIEW events AS SELECT * FROM read_parquet({files!r}, hive_partitioning=true)")
out = []
for name, sql in queries:
    seconds, rows = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        rows = len(con.sql(sql).fetchall())
        seconds.append(time.perf_counter() - started)
    out.append({"name": name, "rows": rows, "seconds": seconds})
print(json.dumps(out))
sys.stdout.flush()
os._exit(0)
"""

DATASKETCH = r"""
import json, re, sys, time
from datasketch import MinHash, MinHashLSH
path, bands, rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
texts = [json.loads(l)["text"] for l in open(path)]
def shingles(t):
    w = re.findall(r"[^\W_]+", t.lower())
    if not w: return set()
    if len(w) < 5: return {" ".join(w)}
    return {" ".join(w[i:i+5]) for i in range(len(w) - 4)}
sets = [shingles(t) for t in texts]
started = time.perf_counter()
lsh = MinHashLSH(num_perm=bands * rows, params=(bands, rows))
sigs = []
for i, s in enumerate(sets):
    m = MinHash(num_perm=bands * rows, seed=1)
    for sh in s: m.update(sh.encode())
    sigs.append(m)
    if s: lsh.insert(str(i), m)
pairs = set()
for i, m in enumerate(sigs):
    if not sets[i]: continue
    for j in lsh.query(m):
        j = int(j)
        if j != i: pairs.add((min(i, j), max(i, j)))
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "pairs": sorted(pairs)}))
"""

EXACT_PAIRS = r"""
import json, re, sys
path, threshold = sys.argv[1], float(sys.argv[2])
texts = [json.loads(l)["text"] for l in open(path)]
def shingles(t):
    w = re.findall(r"[^\W_]+", t.lower())
    if not w: return frozenset()
    if len(w) < 5: return frozenset([" ".join(w)])
    return frozenset(" ".join(w[i:i+5]) for i in range(len(w) - 4))
sets = [shingles(t) for t in texts]
truth = []
for i in range(len(sets)):
    a = sets[i]
    if not a: continue
    for j in range(i + 1, len(sets)):
        b = sets[j]
        if not b: continue
        small, large = (a, b) if len(a) < len(b) else (b, a)
        if len(small) < threshold * len(large): continue
        inter = len(a & b)
        if inter / (len(a) + len(b) - inter) >= threshold: truth.append((i, j))
print(json.dumps({"truth": truth}))
"""


def jaccard_filter(pairs, texts_path, threshold):
    """Keeps the pairs whose exact 5-shingle Jaccard reaches threshold."""
    texts = [json.loads(l)["text"] for l in open(texts_path)]

    def shingles(t):
        w = re.findall(r"[^\W_]+", t.lower())
        if not w:
            return frozenset()
        if len(w) < 5:
            return frozenset([" ".join(w)])
        return frozenset(" ".join(w[i:i + 5]) for i in range(len(w) - 4))

    sets = [shingles(t) for t in texts]
    kept = []
    for i, j in pairs:
        a, b = sets[i], sets[j]
        inter = len(a & b)
        if a and b and inter / (len(a) + len(b) - inter) >= threshold:
            kept.append((i, j))
    return kept


def prf(found, truth):
    found, truth = set(map(tuple, found)), set(map(tuple, truth))
    tp = len(found & truth)
    precision = tp / len(found) if found else 1.0
    recall = tp / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def median(xs):
    return statistics.median(xs) if xs else float("nan")


EXPORT_TARGETS = ["trl-sft", "openai-sft", "openai-dpo", "trl-preference", "kto", "grpo", "rl-turns",
                  "openclaw-rl"]



def run_jobs(work, source, label, ingest_s, args):
    """derive and dedupe (full, then incremental after 1 % more sessions), every export target
    and the compliance report on a copy of `source`; wall seconds and peak RSS of each.
    openclaw-rl's records repeat each request's history (about 15 GB at 10x): its output is
    removed as soon as it is measured, like every target's."""
    store = work / f"jobs-{label}"
    shutil.rmtree(store, ignore_errors=True)
    shutil.copytree(source, store)
    bin_ = str(BIN)
    out = {"ingest_s": ingest_s}
    timed = run_timed([bin_, "--store", str(store), "derive", "--full", "--json"])
    full = json.loads(timed.stdout)
    out["derive"] = {"seconds": timed.seconds, "peak_rss_mb": timed.peak_rss_mb, "sessions": full["sessions"],
                     "rows": {t["name"]: t["rows"] for t in full["tables"]},
                     "segments": {t["name"]: t["segments_written"] for t in full["tables"]}}
    timed = run_timed([bin_, "--store", str(store), "dedupe", "--json"])
    out["dedupe"] = {"seconds": timed.seconds, "peak_rss_mb": timed.peak_rss_mb,
                     "signatures": json.loads(timed.stdout)["signatures"]["computed"]}
    # 1 % new sessions (another seed), ingested, then an incremental derive.
    extra = work / f"extra-{label}"
    shutil.rmtree(extra, ignore_errors=True)
    sessions = full["sessions"]
    extra_bytes = max(200_000, int(results_bytes(source) * 0.01))
    subprocess.run([str(CORPUS), "--out", str(extra), "--seed", str(args.seed + 1), "--size", str(extra_bytes)],
                   check=True, capture_output=True)
    subprocess.run([bin_, "--store", str(store), "ingest", "--json", str(extra)], check=True, capture_output=True)
    timed = run_timed([bin_, "--store", str(store), "derive", "--json"])
    inc = json.loads(timed.stdout)
    out["derive_incremental"] = {"seconds": timed.seconds, "peak_rss_mb": timed.peak_rss_mb,
                                 "sessions": inc["sessions"], "of_sessions": sessions + inc["sessions"],
                                 "scope": inc["scope"]}
    shutil.rmtree(extra, ignore_errors=True)
    timed = run_timed([bin_, "--store", str(store), "dedupe", "--json"])
    out["dedupe_incremental"] = {"seconds": timed.seconds, "peak_rss_mb": timed.peak_rss_mb,
                                 "signatures": json.loads(timed.stdout)["signatures"]["computed"]}
    out["export"] = {}
    for target in EXPORT_TARGETS:
        dest = work / f"export-{label}-{target}"
        shutil.rmtree(dest, ignore_errors=True)
        timed = run_timed([bin_, "--store", str(store), "export", "--target", target, "--json", "--out", str(dest)])
        summary = json.loads(timed.stdout)
        out["export"][target] = {"seconds": timed.seconds, "peak_rss_mb": timed.peak_rss_mb, "rows": summary["rows"],
                                 "mb": sum(sh["bytes"] for sh in summary["shards"]) / 1e6}
        shutil.rmtree(dest, ignore_errors=True)
    report = work / f"report-{label}.json"
    timed = run_timed([bin_, "--store", str(store), "report", "compliance", "--out", str(report)])
    out["report_compliance"] = {"seconds": timed.seconds, "peak_rss_mb": timed.peak_rss_mb}
    shutil.rmtree(store, ignore_errors=True)
    return out


def results_bytes(store):
    """Bytes of the events segments of a store (what 1 % of the log means)."""
    return sum(p.stat().st_size for p in Path(store, "events").rglob("*.parquet"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="100MB", help="corpus size (10MB .. several GB)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1,
                    help="untimed ingest rounds before the timed ones (every tool), as hyperfine's --warmup")
    ap.add_argument("--scale", type=int, default=10, help="RSS check at 1x and this many x the size")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--smoke", action="store_true", help="10MB, 5 runs, scale 3 (CI)")
    ap.add_argument("--max-dedupe-docs", type=int, default=3000)
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--profile", default="release",
                    help="cargo profile the binaries were built with (benches/compare builds it); "
                         "anything but release makes a smoke run whose figures are not comparable")
    args = ap.parse_args()
    use_profile(args.profile)
    for binary in (BIN, CORPUS, EXAMPLES / "query_timing"):
        if not binary.exists():
            sys.exit(f"error: {binary} does not exist\nhint: run through benches/compare, which builds "
                     f"the {args.profile} profile first (or cargo build --profile {args.profile} --bins --examples)")
    if args.smoke:
        args.size, args.runs, args.scale = "10MB", 5, 3
    work = Path(args.workdir or tempfile.mkdtemp(prefix="trajectory-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    log = lambda msg: print(f"== {msg}", file=sys.stderr, flush=True)

    corpus = work / "corpus"
    shutil.rmtree(corpus, ignore_errors=True)
    log(f"generating {args.size} corpus (seed {args.seed})")
    stats = json.loads(subprocess.run([str(CORPUS), "--out", str(corpus), "--seed", str(args.seed),
                                       "--size", args.size], check=True, capture_output=True, text=True).stdout)
    transcripts = files_under(corpus / "agents", {".jsonl"})
    # The baselines get a glob (thousands of paths overflow an argv).
    transcript_glob = str(corpus / "agents" / "*" / "sessions" / "*.jsonl")
    # polars stops at the first malformed line even with ignore_errors, so it
    # reads a copy without them (made here, not timed); the others read the
    # corpus as generated.
    clean = work / "corpus-clean"
    shutil.rmtree(clean, ignore_errors=True)
    dropped = 0
    for path in transcripts:
        target = clean / Path(path).relative_to(corpus)
        target.parent.mkdir(parents=True, exist_ok=True)
        kept = []
        for line in open(path, encoding="utf-8", errors="replace"):
            try:
                json.loads(line)
                kept.append(line if line.endswith("\n") else line + "\n")
            except ValueError:
                dropped += 1
        target.write_text("".join(kept))
    clean_glob = str(clean / "agents" / "*" / "sessions" / "*.jsonl")
    all_inputs = transcripts + files_under(corpus / "tmp-openclaw", {".log"})
    in_bytes = total_bytes(all_inputs)
    tx_bytes = total_bytes(transcripts)
    mb = lambda b: b / 1e6
    results = {"corpus": stats, "input_bytes": in_bytes, "transcript_bytes": tx_bytes,
               "polars_dropped_lines": dropped}

    # (a) ingest
    ours, duck, polars_r, floor = [], [], [], []
    events = 0
    store = work / "store"
    for run in range(-args.warmup, args.runs):
        log(f"ingest warm-up run {run + args.warmup + 1}/{args.warmup}" if run < 0
            else f"ingest run {run + 1}/{args.runs}")
        if run == 0:
            ours, duck, polars_r, floor = [], [], [], []
        shutil.rmtree(store, ignore_errors=True)
        timed = run_timed([str(BIN), "--store", str(store), "ingest", "--json", str(corpus)])
        summary = json.loads(timed.stdout)
        events = summary["events_added"] + summary["lines_quarantined"]
        ours.append((timed.seconds, timed.peak_rss_mb, timed.cpu_s, timed.sys_s))
        pq = work / "duck.parquet"
        timed = run_timed([sys.executable, "-c", DUCKDB_INGEST, transcript_glob, str(pq)])
        duck.append((timed.seconds, timed.peak_rss_mb, int(timed.stdout.strip().splitlines()[-1]), timed.cpu_s, timed.sys_s))
        try:
            pq = work / "polars.parquet"
            s, rss, out, *_ = run_timed([sys.executable, "-c", POLARS_INGEST, clean_glob, str(pq)])
            polars_r.append((s, rss, int(out.strip().splitlines()[-1])))
        except RuntimeError as e:
            polars_r.append(None)
            results["polars_error"] = " ".join(str(e).strip().splitlines()[-1:])[:200].replace("|", "/")
        s, rss, out, *_ = run_timed([str(EXAMPLES / "parse_floor"), str(corpus)])
        floor.append((s, rss, json.loads(out)["lines"]))
    ours_s = median([r[0] for r in ours])
    duck_s = median([r[0] for r in duck])
    ok_polars = [r for r in polars_r if r]
    polars_s = median([r[0] for r in ok_polars]) if ok_polars else float("nan")
    floor_s = median([r[0] for r in floor])
    results["ingest"] = {
        "trajectory": {"seconds": ours_s, "mb_s": mb(in_bytes) / ours_s, "events_s": events / ours_s,
                       "peak_rss_mb": max(r[1] for r in ours), "events": events,
                       "cpu_s": median([r[2] for r in ours]), "runs_s": [r[0] for r in ours],
                       "runs_sys_s": [r[3] for r in ours]},
        "duckdb": {"seconds": duck_s, "mb_s": mb(tx_bytes) / duck_s, "rows_s": duck[0][2] / duck_s,
                   "peak_rss_mb": max(r[1] for r in duck), "rows": duck[0][2],
                   "cpu_s": median([r[3] for r in duck]), "runs_s": [r[0] for r in duck],
                   "runs_sys_s": [r[4] for r in duck]},
        "polars": ({"seconds": polars_s, "mb_s": mb(tx_bytes) / polars_s, "rows_s": ok_polars[0][2] / polars_s,
                    "peak_rss_mb": max(r[1] for r in ok_polars), "rows": ok_polars[0][2]} if ok_polars else None),
        "parse_floor": {"seconds": floor_s, "mb_s": mb(in_bytes) / floor_s, "lines_s": floor[0][2] / floor_s,
                        "peak_rss_mb": max(r[1] for r in floor)},
    }

    # RSS at 1x and Kx
    big = work / "corpus-big"
    shutil.rmtree(big, ignore_errors=True)
    size_bytes = int(stats["bytes"]) * args.scale
    log(f"generating {args.scale}x corpus ({size_bytes / 1e6:.0f} MB) for the memory check")
    subprocess.run([str(CORPUS), "--out", str(big), "--seed", str(args.seed), "--size", str(size_bytes)],
                   check=True, capture_output=True)
    big_store = work / "store-big"
    shutil.rmtree(big_store, ignore_errors=True)
    s, rss_big, *_ = run_timed([str(BIN), "--store", str(big_store), "ingest", "--json", str(big)])
    big_bytes = total_bytes(files_under(big, {".jsonl", ".log"}))
    results["memory"] = {"x1_mb": in_bytes / 1e6, "x1_peak_rss_mb": results["ingest"]["trajectory"]["peak_rss_mb"],
                         "xk": args.scale, "xk_mb": big_bytes / 1e6, "xk_peak_rss_mb": rss_big,
                         "xk_seconds": s}

    # (e) jobs after ingest, at 1x and Kx (each on a copy of the ingested store)
    results["jobs"] = {}
    for label, source, ingest_s in (("1x", store, results["ingest"]["trajectory"]["seconds"]),
                                    (f"{args.scale}x", big_store, s)):
        log(f"jobs after ingest ({label})")
        results["jobs"][label] = run_jobs(work, source, label, ingest_s, args)
    shutil.rmtree(big, ignore_errors=True)
    shutil.rmtree(big_store, ignore_errors=True)

    # (b) audit queries over the last ingest's store
    log("audit queries")
    qfile = work / "queries.json"
    qfile.write_text(json.dumps([{"name": n, "sql": q} for n, q in QUERIES]))
    ours_q = json.loads(subprocess.run([str(EXAMPLES / "query_timing"), str(store), str(qfile), str(args.runs)],
                                       check=True, capture_output=True, text=True).stdout)
    duck_q = json.loads(subprocess.run([sys.executable, "-c", DUCKDB_QUERIES, str(store / "events"),
                                        json.dumps(QUERIES), str(args.runs)],
                                       check=True, capture_output=True, text=True).stdout)
    results["queries"] = [
        {"name": o["name"], "rows": o["rows"], "duckdb_rows": d["rows"],
         "trajectory_s": median(o["seconds"]), "duckdb_s": median(d["seconds"])}
        for o, d in zip(ours_q, duck_q)
    ]

    # (c) MinHash vs datasketch, on one text per session
    log("minhash")
    texts = work / "texts.jsonl"
    out = subprocess.run([str(BIN), "--store", str(store), "sql", "--format", "ndjson",
                          "SELECT session_id, string_agg(text, ' ') AS text FROM events "
                          "WHERE text IS NOT NULL AND session_id IS NOT NULL GROUP BY session_id ORDER BY session_id"],
                         check=True, capture_output=True, text=True).stdout
    lines = [l for l in out.splitlines() if l.strip()][: args.max_dedupe_docs]
    texts.write_text("\n".join(json.dumps({"text": json.loads(l)["text"] or ""}) for l in lines) + "\n")
    truth = json.loads(subprocess.run([sys.executable, "-c", EXACT_PAIRS, str(texts), "0.8"],
                                      check=True, capture_output=True, text=True).stdout)["truth"]
    ours_m, theirs_m = [], []
    for _ in range(args.runs):
        r = json.loads(subprocess.run([str(EXAMPLES / "minhash_texts"), str(texts), "14", "8", "0.8"],
                                      check=True, capture_output=True, text=True).stdout)
        ours_m.append(r)
        d = json.loads(subprocess.run([sys.executable, "-c", DATASKETCH, str(texts), "14", "8"],
                                      check=True, capture_output=True, text=True).stdout)
        theirs_m.append(d)
    our_p = prf(ours_m[0]["pairs"], truth)
    their_p = prf(jaccard_filter(theirs_m[0]["pairs"], texts, 0.8), truth)
    results["minhash"] = {"documents": len(lines), "true_pairs": len(truth),
                          "trajectory_s": median([r["seconds"] for r in ours_m]),
                          "datasketch_s": median([r["seconds"] for r in theirs_m]),
                          "trajectory_prf": our_p, "datasketch_prf": their_p}

    # (d) export
    log("export")
    ex = []
    rows = 0
    for _ in range(args.runs):
        dest = work / "dataset"
        shutil.rmtree(dest, ignore_errors=True)
        s, rss, out, *_ = run_timed([str(BIN), "--store", str(store), "export", "--target", "trl-sft",
                                 "--json", "--out", str(dest)])
        summary = json.loads(out)
        rows = summary["rows"]
        shard_bytes = sum(sh["bytes"] for sh in summary["shards"])
        ex.append((s, rss))
    ex_s = median([e[0] for e in ex])
    results["export"] = {"seconds": ex_s, "rows": rows, "rows_s": rows / ex_s,
                         "shard_mb_s": mb(shard_bytes) / ex_s, "peak_rss_mb": max(e[1] for e in ex)}

    report = render(results, args)
    print(report)
    # The hand-written analysis after the generated tables survives a rerun.
    out = Path(args.out)
    if out.exists() and NOTES_HEADING in out.read_text():
        report += "\n" + NOTES_HEADING + out.read_text().split(NOTES_HEADING, 1)[1]
    out.write_text(report)
    (work / "results.json").write_text(json.dumps(results, indent=2))
    log(f"wrote {args.out}; raw results in {work / 'results.json'}")


def versions():
    def cmd(c):
        try:
            return subprocess.run(c, capture_output=True, text=True).stdout.strip().splitlines()[0]
        except Exception:
            return "?"
    import importlib.metadata as md
    v = {"trajectory": cmd([str(BIN), "--version"]), "rustc": cmd(["rustc", "--version"]),
         "python": platform.python_version()}
    for pkg in ["duckdb", "polars", "datasketch", "deltalake"]:
        try:
            v[pkg] = md.version(pkg)
        except Exception:
            v[pkg] = "not installed"
    return v


def machine():
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        kb = int(open("/proc/meminfo").readline().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except Exception:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {mem} RAM, {platform.system()} {platform.release()}"


def invocation(args):
    """The benches/compare command line that reproduces this run."""
    words = ["benches/compare", "--smoke" if args.smoke else f"--size {args.size}"]
    if args.profile != "release":
        words.append(f"--profile {args.profile}")
    return " ".join(words)


def render(r, args):
    i = r["ingest"]
    t, d, p, f = i["trajectory"], i["duckdb"], i["polars"], i["parse_floor"]
    m = r["memory"]
    ratio = lambda ours, theirs: theirs / ours if ours else float("nan")
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `{invocation(args)}`; "
        "medians of " + str(args.runs) + " runs on the same generated corpus (ingest: after "
        + str(args.warmup) + " untimed warm-up round(s) of every tool; dirty pages flushed before each timed "
        "command). Ratios: their time / our time (> 1: trajectory is faster). Nothing here is a timed test.",
        "",
    ]
    optimised = args.profile in ("release", "profiling")  # profiling: release with line tables
    if not optimised:
        lines += [
            f"**Smoke run: trajectory was built with the `{args.profile}` cargo profile (unoptimised), so its "
            "times below are not performance figures and the targets table marks nothing as met. "
            "`benches/compare` without `--profile` measures the release build.**",
            "",
        ]
    met = lambda ok: ("yes" if ok else "no") if optimised else f"n/a ({args.profile} build)"
    lines += [
        f"- Machine: {machine()}",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()),
        f"- Corpus: `trajectory-corpus --seed {args.seed} --size {args.size}`: {r['corpus']['sessions']} sessions, "
        f"{r['input_bytes'] / 1e6:.1f} MB ({r['transcript_bytes'] / 1e6:.1f} MB of transcripts, the rest gateway logs), "
        f"{r['corpus']['planted_secrets']} planted secrets, {r['corpus']['malformed_lines']} malformed lines, "
        f"{r['corpus']['images']} images",
        "",
        "## (a) Ingest: JSONL → committed columnar data",
        "",
        "trajectory does the full job (discovery, checkpoints, normalisation into the event model, "
        "image stripping, redaction with 17 rules, dedupe by id, sorted Parquet segments (Snappy; ids and hashes zstd), sha256 "
        "of each, one Delta commit). DuckDB and polars only convert the transcript JSON to Parquet "
        "(no normalisation, no redaction, no logs).",
        "",
        "| tool | median s | MB/s | events or rows/s | peak RSS MB | ratio (their s / ours) |",
        "|---|---|---|---|---|---|",
        f"| trajectory ingest | {t['seconds']:.2f} | {t['mb_s']:.1f} | {t['events_s']:.0f} events | {t['peak_rss_mb']:.0f} | 1.00 |",
        f"| DuckDB read_json_auto → COPY zstd | {d['seconds']:.2f} | {d['mb_s']:.1f} | {d['rows_s']:.0f} rows | {d['peak_rss_mb']:.0f} | {ratio(t['seconds'], d['seconds']):.2f} |",
    ]
    if p:
        lines.append(f"| polars scan_ndjson → sink_parquet (¹) | {p['seconds']:.2f} | {p['mb_s']:.1f} | {p['rows_s']:.0f} rows | {p['peak_rss_mb']:.0f} | {ratio(t['seconds'], p['seconds']):.2f} |")
    else:
        lines.append(f"| polars scan_ndjson → sink_parquet | failed | | | | ({r.get('polars_error', '')[:120]}) |")
    lines += [
        f"| parse-only floor (serde_json) | {f['seconds']:.2f} | {f['mb_s']:.1f} | {f['lines_s']:.0f} lines | {f['peak_rss_mb']:.0f} | {ratio(t['seconds'], f['seconds']):.2f} |",
        "",
        f"(¹) polars stops at the first malformed line even with `ignore_errors=True`, so it reads a copy "
        f"of the transcripts without the {r['polars_dropped_lines']} malformed lines (copy not timed).",
        "",
        f"CPU (user + system, medians): trajectory {t['cpu_s']:.2f} s, DuckDB {d['cpu_s']:.2f} s "
        f"(ratio {ratio(t['cpu_s'], d['cpu_s']):.2f}). Wall time of each run, in order: trajectory "
        + ", ".join(f"{x:.2f}" for x in t["runs_s"]) + " s (system CPU "
        + ", ".join(f"{x:.2f}" for x in t["runs_sys_s"]) + " s); DuckDB "
        + ", ".join(f"{x:.2f}" for x in d["runs_s"]) + " s (system CPU "
        + ", ".join(f"{x:.2f}" for x in d["runs_sys_s"]) + " s). On a VM whose first touches of "
        "memory are slow or fast depending on the host, system time is where runs of one binary differ.",
        "",
        f"Memory: {m['x1_mb']:.0f} MB input → peak RSS {m['x1_peak_rss_mb']:.0f} MB; "
        f"{m['xk']}× ({m['xk_mb']:.0f} MB) → {m['xk_peak_rss_mb']:.0f} MB ({m['xk_seconds']:.1f} s).",
        "",
        "## (b) Audit queries (in process, same Parquet segments)",
        "",
        "| query | rows (ours / DuckDB) | trajectory ms | DuckDB ms | ours / DuckDB |",
        "|---|---|---|---|---|",
    ]
    qratios = []
    for q in r["queries"]:
        qratios.append(q["trajectory_s"] / q["duckdb_s"] if q["duckdb_s"] else float("nan"))
        lines.append(f"| {q['name']} | {q['rows']} / {q['duckdb_rows']} | {q['trajectory_s'] * 1e3:.1f} | "
                     f"{q['duckdb_s'] * 1e3:.1f} | {qratios[-1]:.2f} |")
    med_q = median(qratios)
    mh = r["minhash"]
    op, tp = mh["trajectory_prf"], mh["datasketch_prf"]
    lines += [
        "",
        f"Median of ours / DuckDB over the suite: **{med_q:.2f}** (target ≤ 0.8).",
        "",
        "## (c) MinHash near-dedupe (5-word shingles, 14 bands × 8 rows, Jaccard ≥ 0.8)",
        "",
        f"{mh['documents']} documents (one per session), {mh['true_pairs']} pairs with exact Jaccard ≥ 0.8.",
        "",
        "| tool | median s | precision | recall | F1 | speed-up |",
        "|---|---|---|---|---|---|",
        f"| trajectory (shingle + signatures + LSH + exact confirmation) | {mh['trajectory_s']:.3f} | {op[0]:.3f} | {op[1]:.3f} | {op[2]:.3f} | {ratio(mh['trajectory_s'], mh['datasketch_s']):.1f}× |",
        f"| datasketch (signatures + LSH; confirmation not timed) | {mh['datasketch_s']:.3f} | {tp[0]:.3f} | {tp[1]:.3f} | {tp[2]:.3f} | 1× |",
        "",
        "## (d) Export",
        "",
        f"`trajectory export --target trl-sft`: {r['export']['rows']} rows in {r['export']['seconds']:.2f} s "
        f"({r['export']['rows_s']:.0f} rows/s, {r['export']['shard_mb_s']:.1f} MB/s of shards, "
        f"peak RSS {r['export']['peak_rss_mb']:.0f} MB).",
        "",
        "## (e) Jobs after ingest (issue 26)",
        "",
        "Each job on a copy of the ingested store, at 1× and " + f"{m['xk']}×" + ". The incremental derive and "
        "dedupe run after ingesting about 1 % more data (new sessions from another seed). Wall seconds / peak RSS MB.",
        "",
        "| job | " + " | ".join(r["jobs"].keys()) + " |",
        "|---|" + "---|" * len(r["jobs"]) + "",
    ]
    jobs = r["jobs"]
    def cell(label, key, sub=None):
        j = jobs[label].get(key) if sub is None else jobs[label].get(key, {}).get(sub)
        return f"{j['seconds']:.2f} s / {j['peak_rss_mb']:.0f} MB" if j else "not run"
    lines.append("| ingest (for comparison) | " + " | ".join(f"{jobs[l]['ingest_s']:.2f} s" for l in jobs) + " |")
    lines.append("| derive, full | " + " | ".join(cell(l, "derive") for l in jobs) + " |")
    lines.append("| derive, incremental (+1 %) | " + " | ".join(
        cell(l, "derive_incremental") + f" ({jobs[l]['derive_incremental']['sessions']} of "
        f"{jobs[l]['derive_incremental']['of_sessions']} sessions)" for l in jobs) + " |")
    lines.append("| dedupe, full | " + " | ".join(
        cell(l, "dedupe") + f" ({jobs[l]['dedupe']['signatures']} signatures)" for l in jobs) + " |")
    lines.append("| dedupe, incremental (+1 %) | " + " | ".join(
        cell(l, "dedupe_incremental") + f" ({jobs[l]['dedupe_incremental']['signatures']} signatures)"
        for l in jobs) + " |")
    for target in EXPORT_TARGETS:
        lines.append(f"| export {target} | " + " | ".join(cell(l, "export", target) for l in jobs) + " |")
    lines.append("| report compliance | " + " | ".join(cell(l, "report_compliance") for l in jobs) + " |")
    big = list(jobs)[-1]
    jb = jobs[big]
    worst = max([jobs[l][k]["peak_rss_mb"] for l in jobs
                 for k in ("derive", "derive_incremental", "dedupe", "dedupe_incremental", "report_compliance")]
                + [e["peak_rss_mb"] for l in jobs for e in jobs[l]["export"].values()])
    inc_share = jb["derive_incremental"]["seconds"] / jb["derive"]["seconds"]
    lines += [
        "",
        "`openclaw-rl`: every record carries its request's whole history, as the proxy's do, so on "
        "this corpus (long sessions, no compaction) the files are "
        + " and ".join(f"{jobs[l]['export']['openclaw-rl']['mb'] / 1000:.1f} GB at {l}" for l in jobs
                       if "openclaw-rl" in jobs[l]["export"])
        + "; its time is mostly writing them.",
        "",
        "| target (issue 26) | measured | met |",
        "|---|---|---|",
        f"| every job ≤ 512 MB peak RSS at 1× and {m['xk']}× | worst {worst:.0f} MB | {met(worst <= 512)} |",
        f"| full derive ≤ ingest ({big}) | {jb['derive']['seconds']:.2f} s vs {jb['ingest_s']:.2f} s | {met(jb['derive']['seconds'] <= jb['ingest_s'])} |",
        f"| incremental derive ≤ 5 % of full ({big}) | {100 * inc_share:.1f} % | {met(inc_share <= 0.05)} |",
        f"| report compliance ≤ 10 s ({big}) | {jb['report_compliance']['seconds']:.2f} s | {met(jb['report_compliance']['seconds'] <= 10)} |",
        "",
        "## Targets (issue 6)",
        "",
        "| target | measured | met |",
        "|---|---|---|",
        f"| ingest ≥ 1.5× DuckDB | {ratio(t['seconds'], d['seconds']):.2f}× | {met(ratio(t['seconds'], d['seconds']) >= 1.5)} |",
        f"| peak RSS ≤ 512 MB, flat 1×→{m['xk']}× | {m['x1_peak_rss_mb']:.0f} → {m['xk_peak_rss_mb']:.0f} MB | {met(m['xk_peak_rss_mb'] <= 512 and m['xk_peak_rss_mb'] <= 1.5 * m['x1_peak_rss_mb'] + 64)} |",
        f"| audit queries ≤ 0.8× DuckDB (median) | {med_q:.2f} | {met(med_q <= 0.8)} |",
        f"| MinHash ≥ 20× datasketch at F1 ≥ 0.95 | {ratio(mh['trajectory_s'], mh['datasketch_s']):.1f}×, F1 {op[2]:.3f} | {met(ratio(mh['trajectory_s'], mh['datasketch_s']) >= 20 and op[2] >= 0.95)} |",
        "",
        f"Reproduce: `{invocation(args)}`.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
