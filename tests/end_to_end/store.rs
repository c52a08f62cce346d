//! The store's upkeep commands: compaction, vacuum, history, verify, erase,
//! and what other readers (Python deltalake, DuckDB) see after them.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::harness::{examples, public, python, Workspace};

/// Appends `pi-v1-legacy-before-compaction.jsonl` to `target` in `chunks`
/// pieces, ingesting after each, so one date partition collects one small
/// segment per ingest.
fn ingest_in_chunks(ws: &Workspace, target: &Path, chunks: usize, extra: &[&str]) -> Vec<Value> {
    let text = std::fs::read_to_string(public("pi-v1-legacy-before-compaction.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let per_chunk = lines.len().div_ceil(chunks);
    let mut summaries = Vec::new();
    for chunk in lines.chunks(per_chunk) {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(target)
            .unwrap();
        for line in chunk {
            writeln!(file, "{line}").unwrap();
        }
        drop(file);
        let mut args: Vec<String> = vec!["ingest".into(), "--json".into()];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(target.display().to_string());
        summaries.push(serde_json::from_str(&ws.ok(&args)).unwrap());
    }
    summaries
}

fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "_delta_log") {
                continue;
            }
            out.extend(parquet_files(&path));
        } else if path.extension().is_some_and(|e| e == "parquet") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Counts rows with Python deltalake and with DuckDB's delta extension.
const COUNT_WITH_DELTALAKE_AND_DUCKDB: &str = r#"
import json, os, sys
from deltalake import DeltaTable
import duckdb, duckdb_extension_delta
path = sys.argv[1]
rows = DeltaTable(path).to_pyarrow_table().num_rows
ext = os.path.join(os.path.dirname(duckdb_extension_delta.__file__), "extensions",
                   "v" + duckdb.__version__, "delta.duckdb_extension")
# No progress bar: under load a scan passes DuckDB's 2 s threshold and the
# bar lands on stdout, in front of the JSON.
con = duckdb.connect(config={"allow_unsigned_extensions": True})
con.sql("SET enable_progress_bar = false")
con.sql(f"LOAD '{ext}'")
duck = con.sql(f"SELECT count(*) FROM delta_scan('{path}')").fetchone()[0]
print(json.dumps({"deltalake": rows, "duckdb": duck}))
sys.stdout.flush()
os._exit(0)
"#;

fn assert_readers_agree(ws: &Workspace) {
    let ours = ws.count("SELECT count(*) FROM events");
    let table = ws.store().join("events");
    let theirs: Value = serde_json::from_str(&python(
        COUNT_WITH_DELTALAKE_AND_DUCKDB,
        &[table.to_str().unwrap()],
    ))
    .unwrap();
    assert_eq!(theirs["deltalake"].as_i64(), Some(ours), "{theirs}");
    assert_eq!(theirs["duckdb"].as_i64(), Some(ours), "{theirs}");
}

#[test]
fn compact_bin_packs_small_segments_and_keeps_every_row() {
    let ws = Workspace::new();
    let input = ws.path("growing.jsonl");
    let summaries = ingest_in_chunks(&ws, &input, 10, &["--auto-compact-after", "0"]);
    assert!(summaries
        .iter()
        .all(|s| s["events_added"].as_i64() > Some(0)));
    let before = parquet_files(&ws.store().join("events")).len();
    assert!(before >= 10, "one segment per ingest at least: {before}");
    let ids_before = ws.ok([
        "sql",
        "--format",
        "csv",
        "SELECT event_id FROM events ORDER BY event_id",
    ]);

    let out: Value = serde_json::from_str(&ws.ok(["compact", "--json"])).unwrap();
    let events = &out[0];
    assert_eq!(events["table"], "events");
    assert!(events["files_rewritten"].as_u64().unwrap() >= 10, "{out}");
    assert!(
        events["files_after"].as_u64().unwrap() < events["files_before"].as_u64().unwrap(),
        "{out}"
    );
    // The same rows, readable by everyone.
    let ids_after = ws.ok([
        "sql",
        "--format",
        "csv",
        "SELECT event_id FROM events ORDER BY event_id",
    ]);
    assert_eq!(ids_before, ids_after);
    assert_readers_agree(&ws);

    // Rows in a compacted segment are sorted by (session_id, seq).
    let live: Vec<String> = python(
        r#"
import json, os, sys
from deltalake import DeltaTable
print(json.dumps(DeltaTable(sys.argv[1]).file_uris()))
sys.stdout.flush(); os._exit(0)
"#,
        &[ws.store().join("events").to_str().unwrap()],
    )
    .trim()
    .parse::<Value>()
    .unwrap()
    .as_array()
    .unwrap()
    .iter()
    .map(|v| v.as_str().unwrap().to_string())
    .collect();
    let sorted = python(
        r#"
import json, sys
import pyarrow.parquet as pq
ok = True
for path in json.loads(sys.argv[1]):
    t = pq.read_table(path.replace("file://", ""), columns=["session_id", "seq"])
    keys = list(zip([s or "" for s in t.column("session_id").to_pylist()],
                    [q if q is not None else -1 for q in t.column("seq").to_pylist()]))
    ok = ok and keys == sorted(keys)
print(json.dumps(ok))
"#,
        &[&serde_json::to_string(&live).unwrap()],
    );
    assert_eq!(sorted.trim(), "true");

    // Log checkpoints are written (every 10 commits: this table has 12).
    let checkpoints = std::fs::read_dir(ws.store().join("events/_delta_log"))
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .ends_with(".checkpoint.parquet")
        })
        .count();
    assert!(checkpoints >= 1, "a Delta log checkpoint exists");

    // Compacted-away segments stay until vacuum; history shows the rewrite.
    let history = ws.ok(["history", "--json"]);
    assert!(history.contains("\"compact\""), "{history}");
    let kept = parquet_files(&ws.store().join("events")).len();
    assert!(kept > live.len());
    let dry: Value =
        serde_json::from_str(&ws.ok(["vacuum", "--retention-hours", "0", "--dry-run", "--json"]))
            .unwrap();
    assert_eq!(
        dry[0]["files_deleted"].as_u64().unwrap() as usize,
        kept - live.len()
    );
    assert_eq!(
        parquet_files(&ws.store().join("events")).len(),
        kept,
        "dry run deletes nothing"
    );
    ws.ok(["vacuum", "--retention-hours", "0"]);
    assert_eq!(parquet_files(&ws.store().join("events")).len(), live.len());
    let verify: Value = serde_json::from_str(&ws.ok(["verify", "--json"])).unwrap();
    assert_eq!(verify["problems"], serde_json::json!([]));
    assert_eq!(verify["removed_awaiting_vacuum"], 0);
    assert_readers_agree(&ws);
}

#[test]
fn frequent_small_ingests_are_compacted_automatically() {
    let ws = Workspace::new();
    let input = ws.path("growing.jsonl");
    let summaries = ingest_in_chunks(&ws, &input, 12, &["--auto-compact-after", "4"]);
    let compacted: u64 = summaries
        .iter()
        .map(|s| s["segments_compacted"].as_u64().unwrap())
        .sum();
    assert!(compacted >= 4, "{summaries:?}");
    let live = ws.count("SELECT count(*) FROM events WHERE kind <> 'source_checkpoint'");
    assert_eq!(
        live,
        summaries
            .iter()
            .map(|s| s["events_added"].as_i64().unwrap())
            .sum::<i64>()
    );
    let history: Vec<Value> = serde_json::from_str(&ws.ok(["history", "--json"])).unwrap();
    assert!(history.iter().any(|h| h["operation"] == "compact"));
}

#[test]
fn history_lists_commits_with_ingest_ids() {
    let ws = Workspace::new();
    let first = ws.ingest(&[&public(
        "openclaw-v3-local-ollama-fallback-to-codex.excerpt.jsonl",
    )]);
    let second = ws.ingest(&[&public(
        "openclaw-v3-moltbot-anthropic-thinking.excerpt.jsonl",
    )]);
    let history: Vec<Value> = serde_json::from_str(&ws.ok(["history", "--json"])).unwrap();
    // Newest first: the second ingest, the first, then the table's creation.
    assert_eq!(history.len(), 3, "{history:?}");
    assert_eq!(history[0]["version"], second["table_version"]);
    assert_eq!(history[0]["ingest_id"], second["ingest_id"]);
    // Rows committed: the new events plus the one source's checkpoint row.
    assert_eq!(
        history[0]["rows_added"].as_i64(),
        Some(second["events_added"].as_i64().unwrap() + 1)
    );
    assert_eq!(history[1]["ingest_id"], first["ingest_id"]);
    assert_eq!(history[2]["version"], 0);
    assert!(history
        .iter()
        .all(|h| h["time"].as_str().is_some_and(|t| t.starts_with("20"))));
    let text = ws.ok(["history"]);
    assert!(
        text.contains(second["ingest_id"].as_str().unwrap()),
        "{text}"
    );
    // Time travel to the first ingest's version.
    let v = first["table_version"].as_u64().unwrap().to_string();
    let then = ws.ok([
        "sql",
        "--as-of",
        &v,
        "--format",
        "csv",
        "SELECT count(*) AS n FROM events WHERE kind <> 'source_checkpoint'",
    ]);
    let expected = first["events_added"].as_i64().unwrap();
    assert_eq!(then, format!("n\n{expected}\n"));
    // ... and to the time of its commit (RFC 3339), on sql and export.
    let time = history[1]["time"].as_str().unwrap().to_string();
    let then = ws.ok([
        "sql",
        "--as-of",
        &time,
        "--format",
        "csv",
        "SELECT count(*) AS n FROM events WHERE kind <> 'source_checkpoint'",
    ]);
    assert_eq!(then, format!("n\n{expected}\n"));
    let out = ws.path("as-of-dataset");
    let summary: Value = serde_json::from_str(&ws.ok([
        "export",
        "--target",
        "trl-sft",
        "--as-of",
        &time,
        "--json",
        "--out",
        out.to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(summary["events_version"], first["table_version"]);
}

#[test]
fn verify_fails_naming_a_segment_with_a_flipped_byte() {
    let ws = Workspace::new();
    ws.ingest(&[&examples().join("public")]);
    let ok = ws.ok(["verify"]);
    assert!(ok.contains("ok:"), "{ok}");
    let files = parquet_files(&ws.store().join("events"));
    let victim = files
        .iter()
        .max_by_key(|f| std::fs::metadata(f).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(victim).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(victim, &bytes).unwrap();

    let out = ws.run(["verify"]);
    assert!(!out.status.success(), "a damaged segment must fail verify");
    let name = victim.file_name().unwrap().to_str().unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("hash_mismatch"), "{all}");
    assert!(all.contains(name), "the file is named: {all}");

    // A missing segment is named too; an uncommitted file is an orphan.
    std::fs::remove_file(victim).unwrap();
    std::fs::write(
        victim.with_file_name("part-crashed-writer.parquet"),
        b"PAR1",
    )
    .unwrap();
    let report: Value = serde_json::from_slice(&ws.run(["verify", "--json"]).stdout).unwrap();
    assert!(report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["problem"] == "missing" && p["path"].as_str().unwrap().contains(name)));
    assert!(report["orphans"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o.as_str().unwrap().ends_with("part-crashed-writer.parquet")));
}

/// Lists every file under `root` that holds `marker`, in its bytes or in any
/// value of a Parquet file (segments are zstd-compressed, so bytes alone
/// would miss it).
const FIND_MARKER: &str = r#"
import json, os, sys
import pyarrow.parquet as pq
root, marker = sys.argv[1], sys.argv[2]
hits = []
for dirpath, _, files in os.walk(root):
    for name in files:
        path = os.path.join(dirpath, name)
        with open(path, "rb") as f:
            if marker.encode() in f.read():
                hits.append(path); continue
        if name.endswith(".parquet"):
            try:
                table = pq.read_table(path)
            except Exception:
                continue
            if marker in json.dumps(table.to_pylist(), default=str):
                hits.append(path)
print(json.dumps(hits))
"#;

#[test]
fn erase_removes_a_session_everywhere_and_names_affected_exports() {
    let ws = Workspace::new();
    let marker = "ZEBRA-ERASE-MARKER-4c1f";
    // One session with the marker in a user message, one without.
    let source = std::fs::read_to_string(public(
        "openclaw-v3-moltbot-anthropic-thinking.excerpt.jsonl",
    ))
    .unwrap();
    let mut planted = false;
    let marked: Vec<String> = source
        .lines()
        .map(|line| {
            let mut value: Value = serde_json::from_str(line).unwrap();
            if !planted && value["type"] == "message" && value["message"]["role"] == "user" {
                value["message"]["content"] = serde_json::json!([{"type": "text", "text": format!("please remember {marker}")}]);
                planted = true;
            }
            value.to_string()
        })
        .collect();
    assert!(planted);
    let dir = ws.path("sessions");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("marked.jsonl"), marked.join("\n") + "\n").unwrap();
    std::fs::copy(
        public("openclaw-v3-local-ollama-fallback-to-codex.excerpt.jsonl"),
        dir.join("other.jsonl"),
    )
    .unwrap();
    ws.ingest(&[&dir]);
    let session = ws.sql(&format!(
        "SELECT DISTINCT session_id FROM events WHERE text LIKE '%{marker}%'"
    ));
    assert_eq!(session.len(), 1);
    let session = session[0]["session_id"].as_str().unwrap().to_string();
    let in_session = ws.count(&format!(
        "SELECT count(*) FROM events WHERE session_id = '{session}'"
    ));
    let others = ws.count(&format!(
        "SELECT count(*) FROM events WHERE session_id IS DISTINCT FROM '{session}'"
    ));
    assert!(in_session > 0 && others > 0);
    // Derived tables built from it, an export built from it, and compaction
    // so segments mix both sessions.
    ws.ok(["derive"]);
    let turns = ws.count(&format!(
        "SELECT count(*) FROM turns WHERE session_id = '{session}'"
    ));
    assert!(turns > 0, "the marked session has turns");
    let out_dir = ws.path("dataset");
    ws.ok([
        "export",
        "--target",
        "trl-sft",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    ws.ok(["compact"]);

    let root = ws.store();
    let before: Vec<String> =
        serde_json::from_str(&python(FIND_MARKER, &[root.to_str().unwrap(), marker])).unwrap();
    assert!(
        !before.is_empty(),
        "the check must see the marker before erasure"
    );

    let receipt: Value =
        serde_json::from_str(&ws.ok(["erase", "--session", &session, "--json"])).unwrap();
    assert_eq!(
        receipt["matched_events"].as_i64(),
        Some(in_session),
        "{receipt}"
    );
    let events = &receipt["tables"][0];
    assert_eq!(events["table"], "events");
    assert_eq!(events["rows_removed"].as_i64(), Some(in_session));
    assert_eq!(events["rows_left"], 0);
    assert!(receipt["files_vacuumed"].as_u64().unwrap() > 0);
    let exports = receipt["exports"].as_array().unwrap();
    assert_eq!(exports.len(), 1, "{receipt}");
    assert!(exports[0]["manifest_path"]
        .as_str()
        .unwrap()
        .ends_with("manifest.json"));
    assert!(!exports[0]["shards"].as_array().unwrap().is_empty());

    let derived: Vec<&Value> = receipt["tables"]
        .as_array()
        .unwrap()
        .iter()
        .skip(1)
        .collect();
    let turns_entry = derived
        .iter()
        .find(|t| t["table"] == "turns")
        .expect("turns in the receipt");
    assert_eq!(turns_entry["rows_removed"].as_i64(), Some(turns));
    assert!(derived.iter().all(|t| t["rows_left"] == 0), "{receipt}");
    assert_eq!(
        ws.count(&format!(
            "SELECT count(*) FROM turns WHERE session_id = '{session}'"
        )),
        0
    );
    assert_eq!(
        ws.count(&format!(
            "SELECT count(*) FROM rewards WHERE session_id = '{session}'"
        )),
        0
    );
    let after: Vec<String> =
        serde_json::from_str(&python(FIND_MARKER, &[root.to_str().unwrap(), marker])).unwrap();
    assert_eq!(after, Vec::<String>::new(), "marker left in {after:?}");
    // Nothing else was lost; the erasure is on record, without content.
    assert_eq!(
        ws.count(&format!(
            "SELECT count(*) FROM events WHERE session_id = '{session}'"
        )),
        0
    );
    assert_eq!(
        ws.count(&format!(
            "SELECT count(*) FROM events WHERE (session_id IS DISTINCT FROM '{session}') AND kind <> 'erasure'"
        )),
        others
    );
    let record = ws.sql("SELECT attributes FROM events WHERE kind = 'erasure'");
    assert_eq!(record.len(), 1);
    let attributes: Value =
        serde_json::from_str(record[0]["attributes"].as_str().unwrap()).unwrap();
    assert_eq!(attributes["selector"]["session_id"], session.as_str());
    assert_eq!(attributes["matched_events"].as_i64(), Some(in_session));
    let verify: Value = serde_json::from_str(&ws.ok(["verify", "--json"])).unwrap();
    assert_eq!(verify["problems"], serde_json::json!([]));
    assert_readers_agree(&ws);
}

#[test]
fn erase_where_records_only_a_hash_of_the_predicate() {
    let ws = Workspace::new();
    ws.ingest(&[&public(
        "openclaw-v3-local-ollama-fallback-to-codex.excerpt.jsonl",
    )]);
    let matched = ws.count("SELECT count(*) FROM events WHERE kind = 'tool_call'");
    assert!(matched > 0);
    let predicate = "kind = 'tool_call'";
    let receipt: Value =
        serde_json::from_str(&ws.ok(["erase", "--where", predicate, "--json"])).unwrap();
    assert_eq!(receipt["matched_events"].as_i64(), Some(matched));
    assert_eq!(
        ws.count("SELECT count(*) FROM events WHERE kind = 'tool_call'"),
        0
    );
    let record = ws.sql("SELECT attributes FROM events WHERE kind = 'erasure'");
    let text = record[0]["attributes"].as_str().unwrap();
    assert!(!text.contains("tool_call'"), "{text}");
    assert!(text.contains("where_sha256"), "{text}");
    // Exactly one selector.
    let both = ws.run(["erase", "--session", "a", "--agent", "b"]);
    assert!(!both.status.success());
}
