//! The generated corpus through `trajectory ingest`: what was planted is
//! quarantined, masked and counted.

use serde_json::Value;

use crate::harness::{python, Workspace};

#[test]
fn generated_corpus_ingests_with_planted_faults_quarantined_and_secrets_masked() {
    let ws = Workspace::new();
    let corpus = ws.path("corpus");
    let stats = trajectory_corpus::generate(&corpus, 11, 2_000_000).unwrap();
    assert!(stats.malformed_lines > 0 && stats.planted_secrets > 0 && stats.images > 0);
    let summary = ws.ingest(&[&corpus]);
    assert_eq!(summary["files_failed"], 0, "{summary}");
    assert_eq!(
        summary["lines_quarantined"].as_u64(),
        Some(stats.malformed_lines)
    );
    assert_eq!(
        ws.count("SELECT count(*) FROM quarantine") as u64,
        stats.malformed_lines
    );
    assert_eq!(summary["images_replaced"].as_u64(), Some(stats.images));
    assert_eq!(
        ws.count("SELECT count(*) FROM events WHERE kind = 'fallback_decision'") as u64,
        stats.fallback_decisions
    );
    assert_eq!(
        ws.count("SELECT count(*) FROM events WHERE kind = 'session_start'") as u64,
        stats.sessions as u64
    );
    assert!(summary["events_redacted"].as_u64().unwrap() >= 1);
    // No planted secret survives anywhere in the stored values.
    let keys = serde_json::to_string(&trajectory_corpus::PLANTED_SECRETS).unwrap();
    let found: Value = serde_json::from_str(&python(
        r#"
import json, os, sys
import pyarrow.parquet as pq
root, keys = sys.argv[1], json.loads(sys.argv[2])
hits = 0
for d, _, files in os.walk(root):
    for f in files:
        if f.endswith(".parquet") and "_delta_log" not in d:
            text = json.dumps(pq.read_table(os.path.join(d, f)).to_pylist(), default=str)
            hits += sum(text.count(k) for k in keys)
print(hits)
"#,
        &[ws.store().to_str().unwrap(), &keys],
    ))
    .unwrap();
    assert_eq!(found, 0);
    // Reward signals fire where the generator planted their causes.
    ws.ok(["derive"]);
    assert_eq!(
        ws.count("SELECT count(*) FROM rewards WHERE signal = 'call_error'"),
        ws.count("SELECT count(*) FROM events WHERE kind = 'llm_call' AND stop_reason = 'error'")
    );
    assert!(
        ws.count("SELECT count(*) FROM rewards WHERE signal = 'call_error'") as u64
            >= stats.failed_local_calls
    );
    assert_eq!(
        ws.count("SELECT count(*) FROM rewards WHERE signal = 'fallback' AND value < 0"),
        ws.count("SELECT count(*) FROM rewards WHERE signal = 'call_error'"),
        "every failed local call was followed by the cloud model"
    );
    assert_eq!(
        ws.count(
            "SELECT count(*) FROM events e WHERE e.kind = 'tool_result' AND e.tool_status = 'error' \
             AND NOT EXISTS (SELECT 1 FROM rewards r WHERE r.signal = 'tool_error' \
             AND array_has(r.event_ids, e.event_id))"
        ),
        0,
        "every failed tool result has a tool_error reward"
    );
    // Same seed, same corpus.
    let again = ws.path("corpus-again");
    assert_eq!(
        trajectory_corpus::generate(&again, 11, 2_000_000).unwrap(),
        stats
    );
}

#[test]
fn a_history_read_oldest_first_lands_as_one_segment_per_day_from_a_small_buffer() {
    // Session files are named by random UUIDs, so path order spreads every
    // chunk over every day. Read oldest first, a 12 MiB stage buffer (8
    // chunks of 1.5 MiB; the corpus's days hold 6 to 8 MiB of Arrow data
    // each, about 45 MiB in all) still writes each day once.
    let ws = Workspace::new();
    let corpus = ws.path("corpus");
    trajectory_corpus::generate(&corpus, 5, 10_000_000).unwrap();
    let out = ws.ok([
        "ingest",
        "--json",
        "--chunk-bytes",
        "1572864",
        "--auto-compact-after",
        "0",
        corpus.to_str().unwrap(),
    ]);
    let summary: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["files_failed"], 0, "{summary}");
    let days = ws.count("SELECT count(DISTINCT date) FROM events");
    assert!(days >= 5, "the corpus covers {days} days");
    let per_day: Value = serde_json::from_str(&python(
        r#"
import collections, json, re, sys
from deltalake import DeltaTable
files = DeltaTable(sys.argv[1]).file_uris()
print(json.dumps(collections.Counter(re.search(r"date=([0-9-]+)", f).group(1) for f in files)))
"#,
        &[ws.store().join("events").to_str().unwrap()],
    ))
    .unwrap();
    let per_day = per_day.as_object().unwrap();
    assert_eq!(per_day.len() as i64, days);
    let split: Vec<_> = per_day
        .iter()
        .filter(|(_, n)| n.as_u64() != Some(1))
        .collect();
    assert!(
        split.is_empty(),
        "days written as several segments: {split:?}"
    );
}
