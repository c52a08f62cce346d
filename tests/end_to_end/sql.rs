//! `trajectory sql`: views, formats, read-only enforcement, time travel.

use crate::harness::{examples, public, python, Workspace};

#[test]
fn every_view_answers() {
    let ws = Workspace::new();
    ws.ingest(&[&examples()]);
    for view in [
        "events",
        "llm_calls",
        "tool_calls",
        "messages",
        "sessions",
        "cloud_exposure",
        "quarantine",
    ] {
        let rows = ws.sql(&format!("SELECT count(*) AS n FROM {view}"));
        assert!(rows[0]["n"].is_i64(), "{view}: {rows:?}");
    }
    let sessions = ws.count("SELECT count(*) FROM sessions");
    assert_eq!(
        sessions,
        ws.count("SELECT count(DISTINCT session_id) FROM events")
    );
    // Every tool call in the real runs is joined to its result.
    let unmatched = ws.count(
        "SELECT count(*) FROM tool_calls WHERE result_event_id IS NULL AND session_id LIKE '01a20116%'",
    );
    assert_eq!(unmatched, 0);
    // cloud_exposure holds only cloud calls, each with what preceded it.
    let rows = ws.sql("SELECT min(messages_sent) AS m FROM cloud_exposure");
    assert!(rows[0]["m"].as_i64().unwrap() >= 1);
    assert_eq!(
        ws.count("SELECT count(*) FROM cloud_exposure"),
        ws.count("SELECT count(*) FROM llm_calls WHERE locality = 'cloud'")
    );
}

#[test]
fn output_formats() {
    let ws = Workspace::new();
    ws.ingest(&[&public(
        "openclaw-v3-local-ollama-fallback-to-codex.excerpt.jsonl",
    )]);
    let query =
        "SELECT provider, count(*) AS calls FROM llm_calls GROUP BY provider ORDER BY provider";
    let csv = ws.ok(["sql", "--format", "csv", query]);
    assert_eq!(csv, "provider,calls\nollama,4\nopenai-codex,1\n");
    let ndjson = ws.ok(["sql", "--format", "ndjson", query]);
    let lines: Vec<serde_json::Value> = ndjson
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[1]["provider"], "openai-codex");
    let table = ws.ok(["sql", query]);
    assert!(table.contains("| ollama"), "{table}");
    let empty = ws.sql("SELECT * FROM quarantine");
    assert!(empty.is_empty());
    let parquet = ws.run(["sql", "--format", "parquet", query]);
    assert!(parquet.status.success());
    assert_eq!(&parquet.stdout[..4], b"PAR1");
}

#[test]
fn statements_that_write_are_refused() {
    let ws = Workspace::new();
    ws.ingest(&[&public(
        "openclaw-v3-local-ollama-fallback-to-codex.excerpt.jsonl",
    )]);
    let before = ws.count("SELECT count(*) FROM events");
    let copy_target = ws.path("copied.parquet");
    for statement in [
        "CREATE TABLE t AS SELECT 1".to_string(),
        "INSERT INTO events SELECT * FROM events".to_string(),
        "DELETE FROM events".to_string(),
        "DROP VIEW sessions".to_string(),
        format!(
            "COPY events TO '{}' STORED AS PARQUET",
            copy_target.display()
        ),
        "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '/etc/passwd'".to_string(),
        "SET datafusion.execution.batch_size = 1".to_string(),
    ] {
        let out = ws.run(["sql", statement.as_str()]);
        assert!(!out.status.success(), "{statement} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("read-only"), "{statement}: {stderr}");
        assert!(stderr.contains("hint:"), "{statement}: {stderr}");
    }
    assert!(!copy_target.exists());
    assert_eq!(ws.count("SELECT count(*) FROM events"), before);
}

#[test]
fn errors_are_one_line_with_a_hint() {
    let ws = Workspace::new();
    let out = ws.run(["sql", "SELECT 1"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no events yet"), "{stderr}");
    assert!(stderr.contains("trajectory ingest"), "{stderr}");
    ws.ingest(&[&public(
        "openclaw-v3-local-ollama-fallback-to-codex.excerpt.jsonl",
    )]);
    let out = ws.run(["sql", "SELECT nope FROM events"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("DESCRIBE events"));
}

/// The scan reads the files of the loaded snapshot, each row with its
/// file's `date`, and prunes files by `date`: per-day counts agree with
/// delta-rs' Python reader, and survive a compaction whose replaced
/// segments are still on disk.
#[test]
fn scans_read_the_snapshot_files_with_their_partition() {
    let ws = Workspace::new();
    ws.ingest(&[&public(
        "openclaw-v3-local-ollama-fallback-to-codex.excerpt.jsonl",
    )]);
    ws.ingest(&[&examples()]);
    let per_day = |ws: &Workspace| -> Vec<(String, i64)> {
        ws.sql("SELECT CAST(date AS VARCHAR) AS day, count(*) AS n FROM events GROUP BY date ORDER BY day")
            .iter()
            .map(|r| (r["day"].as_str().unwrap().to_string(), r["n"].as_i64().unwrap()))
            .collect()
    };
    let before = per_day(&ws);
    assert!(before.len() > 1, "{before:?}");
    // Every row carries its own file's partition value.
    assert_eq!(
        ws.count("SELECT count(*) FROM events WHERE date <> CAST(ts AS DATE)"),
        0
    );
    // A `date` filter prunes files and still counts every row of the day.
    let (day, n) = &before[before.len() / 2];
    assert_eq!(
        ws.count(&format!(
            "SELECT count(*) FROM events WHERE date = DATE '{day}'"
        )),
        *n
    );
    let plan = ws.sql(&format!(
        "EXPLAIN SELECT count(*) FROM events WHERE date = DATE '{day}'"
    ));
    let physical = plan
        .iter()
        .find(|r| r["plan_type"] == "physical_plan")
        .and_then(|r| r["plan"].as_str())
        .unwrap_or_default()
        .to_string();
    assert!(
        physical.contains(&format!("date={day}"))
            && !physical.contains(&format!("date={}", before[0].0)),
        "{physical}"
    );
    // Columns come back in the table's order, `date` third.
    let out = ws.ok(["sql", "--format", "csv", "SELECT * FROM events LIMIT 1"]);
    assert!(out.starts_with("event_id,ts,date,kind"), "{out}");

    let script = r#"
import json, os, sys
from collections import Counter
from deltalake import DeltaTable
days = DeltaTable(sys.argv[1]).to_pyarrow_table(columns=["date"]).column("date").to_pylist()
print(json.dumps(sorted([str(d), n] for d, n in Counter(days).items())))
sys.stdout.flush()
os._exit(0)
"#;
    let table = ws.store().join("events");
    let theirs: Vec<(String, i64)> =
        serde_json::from_str(&python(script, &[table.to_str().unwrap()])).unwrap();
    assert_eq!(theirs, before);

    // Compaction replaces segments; the replaced files stay on disk for
    // time travel and must not be read.
    let files_before = parquet_files(&table);
    let compacted: serde_json::Value =
        serde_json::from_str(&ws.ok(["compact", "--json", "--target-size", "64"])).unwrap();
    assert!(
        compacted[0]["files_rewritten"].as_i64().unwrap() >= 2,
        "{compacted}"
    );
    assert_eq!(per_day(&ws), before);
    assert!(parquet_files(&table) >= files_before);
}

fn parquet_files(dir: &std::path::Path) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            n += parquet_files(&path);
        } else if path.extension().is_some_and(|e| e == "parquet") {
            n += 1;
        }
    }
    n
}

#[test]
fn as_of_reads_an_earlier_version() {
    let ws = Workspace::new();
    ws.ingest(&[&public(
        "openclaw-v3-local-ollama-fallback-to-codex.excerpt.jsonl",
    )]);
    let first = ws.count("SELECT count(*) FROM events");
    ws.ingest(&[&public(
        "openclaw-v3-moltbot-anthropic-thinking.excerpt.jsonl",
    )]);
    let latest = ws.count("SELECT count(*) FROM events");
    assert!(latest > first);
    // Version 0 created the table; the first ingest is version 1.
    let out = ws.ok([
        "sql",
        "--as-of",
        "1",
        "--format",
        "csv",
        "SELECT count(*) AS n FROM events",
    ]);
    assert_eq!(out, format!("n\n{first}\n"));
    let bad = ws.run(["sql", "--as-of", "last tuesday", "SELECT 1"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--as-of"));
}

#[test]
fn active_branch_marks_abandoned_siblings() {
    // pi 0.73.1 wrote this session with in-file branches (/tree navigation).
    let file = examples()
        .join("real-run/pi-0.73.1/sessions/2026-11-22T02-29-54-390Z_01a20116-b255-7109-bea9-cf95a5d8c9a5.jsonl");
    // Independent answer: walk parentId from the last entry of the file.
    let entries: Vec<serde_json::Value> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let parents: std::collections::HashMap<&str, Option<&str>> = entries
        .iter()
        .map(|e| (e["id"].as_str().unwrap(), e["parentId"].as_str()))
        .collect();
    let mut on_path = std::collections::HashSet::new();
    let mut current = entries.last().and_then(|e| e["id"].as_str());
    while let Some(id) = current {
        on_path.insert(id);
        current = parents.get(id).copied().flatten();
    }
    let abandoned_entries = entries.len() - on_path.len();
    assert!(abandoned_entries > 0, "the fixture has branches");

    let ws = Workspace::new();
    ws.ingest(&[&file]);
    let rows = ws.sql(
        "SELECT count(DISTINCT b.entry_id) AS n FROM active_branch b \
         JOIN events e ON e.event_id = b.event_id \
         WHERE NOT b.on_active_branch AND e.kind <> 'session_start'",
    );
    assert_eq!(rows[0]["n"].as_u64().unwrap() as usize, abandoned_entries);
    // Every event of the tree has an answer.
    assert_eq!(
        ws.count("SELECT count(*) FROM active_branch"),
        ws.count(
            "SELECT count(*) FROM events WHERE entry_id IS NOT NULL AND kind <> 'quarantined' \
             AND source = 'openclaw_transcript'"
        )
    );
}

#[test]
fn cache_traces_feed_cloud_exposure() {
    let ws = Workspace::new();
    let logs = ws.path("home/.openclaw/logs");
    std::fs::create_dir_all(&logs).unwrap();
    // The documented cache-trace shape (formats doc §3.5); OpenClaw writes it
    // with OPENCLAW_CACHE_TRACE=1.
    let line = r#"{"runId":"run-1","sessionId":"sess-1","sessionKey":"agent:ops:main","provider":"anthropic","modelId":"claude-sonnet-4-5","modelApi":"anthropic-messages","ts":"2026-04-10T08:00:01.500+02:00","seq":5,"stage":"stream:context","system":"You are a personal assistant.","messages":[{"role":"user","content":[{"type":"text","text":"read the contract"}]},{"role":"toolResult","toolCallId":"c1","toolName":"read","content":[{"type":"text","text":"CONTRACT TEXT"}],"isError":false}],"messageCount":2}"#;
    let local = line
        .replace("\"anthropic\"", "\"ollama\"")
        .replace("\"seq\":5", "\"seq\":6");
    std::fs::write(logs.join("cache-trace.jsonl"), format!("{line}\n{local}\n")).unwrap();
    ws.ingest(&[&ws.path("home")]);
    let rows = ws.sql("SELECT session_id, provider, text_bytes_sent, evidence FROM cloud_exposure");
    assert_eq!(rows.len(), 1, "only the cloud context counts: {rows:?}");
    assert_eq!(rows[0]["evidence"], "cache_trace");
    assert_eq!(rows[0]["provider"], "anthropic");
    assert!(
        rows[0]["text_bytes_sent"].as_i64().unwrap()
            >= "read the contract\nCONTRACT TEXT".len() as i64
    );
}
