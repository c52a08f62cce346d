//! `trajectory export --target trl-sft`: shards open in `datasets`, the Delta
//! table opens in the `deltalake` Python package.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::harness::{examples, python, Workspace};

const LOAD_WITH_DATASETS: &str = r#"
import json, sys
from datasets import load_dataset
ds = load_dataset("parquet", data_files={"rows": sys.argv[1] + "/data/*.parquet"})["rows"]
calls = 0
args_ok = True
for row in ds:
    for m in row["messages"]:
        for c in (m["tool_calls"] or []):
            calls += 1
            args_ok &= isinstance(json.loads(c["function"]["arguments"]), dict)
    json.loads(row["tools"])
roles = sorted({m["role"] for row in ds for m in row["messages"]})
print(json.dumps({"rows": ds.num_rows, "columns": ds.column_names, "roles": roles,
                  "tool_calls": calls, "arguments_are_objects": bool(args_ok)}))
"#;

#[test]
fn trl_sft_shards_load_with_datasets() {
    let ws = Workspace::new();
    ws.ingest(&[&examples()]);
    let out = ws.path("dataset");
    ws.ok([
        "export",
        "--target",
        "trl-sft",
        "--out",
        out.to_str().unwrap(),
        "--rows-per-shard",
        "8",
    ]);

    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    // Sessions split by hashed session id (default 5% validation).
    let per_split = manifest["rows"].as_object().unwrap();
    let rows: u64 = per_split.values().map(|v| v.as_u64().unwrap()).sum();
    assert!(rows >= 15, "{manifest}");
    let shards = manifest["shards"].as_array().unwrap();
    assert_eq!(
        shards.len() as u64,
        per_split
            .values()
            .map(|v| v.as_u64().unwrap().div_ceil(8))
            .sum::<u64>()
    );
    for shard in shards {
        let bytes = std::fs::read(out.join(shard["path"].as_str().unwrap())).unwrap();
        assert_eq!(
            shard["sha256"].as_str().unwrap(),
            hex::encode(Sha256::digest(&bytes))
        );
        assert_eq!(shard["bytes"].as_u64().unwrap(), bytes.len() as u64);
    }
    assert_eq!(
        manifest["events_table_version"], 1,
        "table created at 0, one ingest: version 1"
    );
    assert_eq!(manifest["lineage"].as_array().unwrap().len() as u64, rows);
    let card = std::fs::read_to_string(out.join("README.md")).unwrap();
    assert!(card.starts_with("---\nconfigs:\n"), "{card}");
    assert!(card.contains("path: data/train-*"));

    let loaded: Value =
        serde_json::from_str(&python(LOAD_WITH_DATASETS, &[out.to_str().unwrap()])).unwrap();
    assert_eq!(loaded["rows"].as_u64().unwrap(), rows);
    let columns: Vec<&str> = loaded["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        columns.contains(&"messages") && columns.contains(&"tools"),
        "{columns:?}"
    );
    assert_eq!(
        loaded["roles"],
        serde_json::json!(["assistant", "tool", "user"])
    );
    assert!(loaded["tool_calls"].as_u64().unwrap() > 400);
    assert_eq!(loaded["arguments_are_objects"], true);
}

#[test]
fn delta_table_opens_in_python_deltalake_with_the_same_rows() {
    let ws = Workspace::new();
    ws.ingest(&[&examples()]);
    let ours = ws.count("SELECT count(*) FROM events");
    let quarantined = ws.count("SELECT count(*) FROM quarantine");
    let script = r#"
import json, os, sys
from deltalake import DeltaTable
t = DeltaTable(sys.argv[1])
data = t.to_pyarrow_table()
kinds = data.column("kind").to_pylist()
print(json.dumps({"rows": data.num_rows, "version": t.version(),
                  "partitions": t.metadata().partition_columns,
                  "quarantined": kinds.count("quarantined")}))
# deltalake 1.x sometimes aborts while the interpreter shuts down
# ("terminate called without an active exception", about 1 run in 6 here),
# after its work is done: leave without running the finalizers.
sys.stdout.flush()
os._exit(0)
"#;
    let table = ws.store().join("events");
    let theirs: Value = serde_json::from_str(&python(script, &[table.to_str().unwrap()])).unwrap();
    assert_eq!(theirs["rows"].as_i64().unwrap(), ours);
    assert_eq!(theirs["quarantined"].as_i64().unwrap(), quarantined);
    assert_eq!(theirs["partitions"], serde_json::json!(["date"]));
}

#[test]
fn export_reads_conversations_from_transcripts_only() {
    // The 2026.9.6 run has transcripts in SQLite plus trajectory runtime events
    // and gateway log lines for the same sessions: rows must come from the
    // transcript tree alone, identical to exporting the transcript alone.
    let all = Workspace::new();
    all.ingest(&[&examples().join("real-run/openclaw-2026.9.6")]);
    let out = all.path("dataset");
    all.ok([
        "export",
        "--target",
        "trl-sft",
        "--out",
        out.to_str().unwrap(),
    ]);
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let lineage = manifest["lineage"].as_array().unwrap();
    assert!(!lineage.is_empty());
    let ids: Vec<String> = lineage
        .iter()
        .flat_map(|row| row["event_ids"].as_array().unwrap().iter())
        .map(|id| format!("'{}'", id.as_str().unwrap()))
        .collect();
    let list = ids.join(",");
    assert_eq!(
        all.count(&format!(
            "SELECT count(*) FROM events WHERE event_id IN ({list})"
        )),
        ids.len() as i64
    );
    assert_eq!(
        all.count(&format!(
            "SELECT count(*) FROM events WHERE event_id IN ({list}) AND source <> 'openclaw_transcript'"
        )),
        0
    );
}

/// Reads a dataset directory's train shards in order and prints, as JSON:
/// the shard row counts, every row (as Python objects), and whether the
/// manifest's lineage names each row's shard and index.
const READ_TRAIN_SHARDS: &str = r#"
import glob, json, sys
import pyarrow.parquet as pq
out = sys.argv[1]
shards = sorted(glob.glob(out + "/data/train-*.parquet"))
rows, counts = [], []
for path in shards:
    table = pq.read_table(path)
    counts.append(table.num_rows)
    rows.extend(table.to_pylist())
manifest = json.load(open(out + "/manifest.json"))
train = [e for e in manifest["lineage"] if "/train-" in e["shard"]]
ok = len(train) == len(rows) and all(
    e["shard"] == "data/" + shards_name and e["row"] == i
    for shard_path, n in zip(shards, counts)
    for shards_name in [shard_path.rsplit("/", 1)[1]]
    for i, e in enumerate(train[sum(counts[: shards.index(shard_path)]) :][:n])
)
print(json.dumps({"counts": counts, "rows": rows, "lineage_ok": ok}, default=str))
"#;

#[test]
fn exports_stream_shards_closed_by_bytes_with_every_row_in_order() {
    let ws = Workspace::new();
    // Enough turns for several 256-row pieces: a generated corpus of 6 MB.
    let corpus = ws.path("corpus");
    trajectory_corpus::generate(&corpus, 5, 6_000_000).unwrap();
    ws.ingest(&[&corpus]);
    ws.ok(["derive"]);
    let export = |dir: &str, shard_bytes: &str| -> Value {
        let out = ws.path(dir);
        ws.ok([
            "export",
            "--target",
            "rl-turns",
            "--out",
            out.to_str().unwrap(),
            "--validation-percent",
            "0",
            "--shard-bytes",
            shard_bytes,
        ]);
        serde_json::from_str(&python(READ_TRAIN_SHARDS, &[out.to_str().unwrap()])).unwrap()
    };
    let whole = export("whole", "0");
    let split = export("split", "64KiB");
    let (whole_counts, split_counts) = (
        whole["counts"].as_array().unwrap(),
        split["counts"].as_array().unwrap(),
    );
    assert_eq!(
        whole_counts.len(),
        1,
        "no byte limit: one shard of < 10,000 rows"
    );
    assert!(
        split_counts.len() > 1,
        "64 KiB closes shards: {split_counts:?}"
    );
    // A shard the byte limit closes holds a multiple of the 256 rows decoded at a time.
    for n in &split_counts[..split_counts.len() - 1] {
        assert_eq!(n.as_u64().unwrap() % 256, 0, "{split_counts:?}");
    }
    // The same rows in the same order, whatever the shards.
    assert_eq!(whole["rows"], split["rows"]);
    assert_eq!(whole["lineage_ok"], true);
    assert_eq!(split["lineage_ok"], true);
    // Deterministic: the same shards again, byte for byte.
    let shas = |dir: &str| -> Vec<Value> {
        let manifest: Value = serde_json::from_str(
            &std::fs::read_to_string(ws.path(dir).join("manifest.json")).unwrap(),
        )
        .unwrap();
        manifest["shards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["sha256"].clone())
            .collect()
    };
    let first = shas("split");
    export("split", "64KiB");
    assert_eq!(first, shas("split"));
}
