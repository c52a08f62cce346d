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
