//! Training targets from the derived tables, and nightly builds.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde_json::Value;

use crate::harness::{examples, python, Workspace};

const TARGETS: [&str; 6] = [
    "openai-sft",
    "openai-dpo",
    "trl-preference",
    "kto",
    "grpo",
    "rl-turns",
];

/// Loads a dataset directory with `datasets` and checks TRL's own helper
/// recognises conversational rows; prints per-split counts and columns.
const LOAD_AND_RECOGNISE: &str = r#"
import json, os, sys
from datasets import load_dataset
from trl.data_utils import is_conversational
out, target = sys.argv[1], sys.argv[2]
import glob
files = {s: os.path.join(out, "data", f"{s}-*.parquet") for s in ("train", "validation")
         if glob.glob(os.path.join(out, "data", f"{s}-*.parquet"))}
ds = load_dataset("parquet", data_files=files)
result = {"rows": {s: ds[s].num_rows for s in ds}, "columns": ds["train"].column_names}
rows = [r for s in ds for r in ds[s]]
if rows and target in ("openai-sft", "trl-preference", "kto", "grpo"):
    result["conversational"] = all(is_conversational(r) for r in rows)
print(json.dumps(result))
"#;

fn export(ws: &Workspace, target: &str, out: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "export",
        "--target",
        target,
        "--json",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    serde_json::from_str(&ws.ok(args)).unwrap()
}

#[test]
fn every_target_loads_with_datasets_and_trl_recognises_it() {
    let ws = Workspace::new();
    ws.ingest(&[&examples()]);
    // Without derived tables: a clear hint.
    let missing = ws.run([
        "export",
        "--target",
        "kto",
        "--out",
        ws.path("x").to_str().unwrap(),
    ]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("trajectory derive"));
    ws.ok(["derive"]);
    let turns = ws.count("SELECT count(*) FROM turns");
    for target in TARGETS {
        let out = ws.path(target);
        let summary = export(&ws, target, &out, &["--validation-percent", "30"]);
        let rows = summary["rows"].as_u64().unwrap();
        let loaded: Value = serde_json::from_str(&python(
            LOAD_AND_RECOGNISE,
            &[out.to_str().unwrap(), target],
        ))
        .unwrap();
        let total: u64 = loaded["rows"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(total, rows, "{target}: {loaded}");
        assert!(rows > 0, "{target} has rows");
        let columns: Vec<&str> = loaded["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        let expected: &[&str] = match target {
            "openai-sft" => &["messages", "tools"],
            "openai-dpo" => &["input", "preferred_output", "non_preferred_output"],
            "trl-preference" => &["prompt", "chosen", "rejected"],
            "kto" => &["prompt", "completion", "label"],
            "grpo" => &["prompt", "reward", "advantage", "group_id"],
            _ => &[
                "context",
                "response",
                "next_state",
                "next_state_role",
                "score",
                "loss_mask",
            ],
        };
        for column in expected {
            assert!(
                columns.contains(column),
                "{target} lacks {column}: {columns:?}"
            );
        }
        if let Some(ok) = loaded.get("conversational") {
            assert_eq!(ok, true, "{target} rows are conversational for TRL");
        }
        // The manifest names the events behind every row, with its shard.
        let manifest: Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap())
                .unwrap();
        let lineage = manifest["lineage"].as_array().unwrap();
        assert_eq!(
            manifest["jobs"]["rewards"]["job_version"], "rewards-v1",
            "{target}"
        );
        assert!(manifest["filters"].is_object());
        assert_eq!(lineage.len() as u64, rows);
        assert!(lineage.iter().all(|l| l["shard"]
            .as_str()
            .is_some_and(|s| s.starts_with("data/"))
            && !l["event_ids"].as_array().unwrap().is_empty()));
        if target.starts_with("openai") {
            let jsonl = std::fs::read_to_string(out.join("train.jsonl")).unwrap();
            let first: Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
            assert!(first.get("session_id").is_none());
            if target == "openai-sft" {
                // Arguments are JSON strings; assistant messages carry a weight.
                let messages = first["messages"].as_array().unwrap();
                assert!(messages
                    .iter()
                    .filter(|m| m["role"] == "assistant")
                    .all(|m| m["weight"].is_u64()));
            }
        }
    }
    assert!(
        export(&ws, "rl-turns", &ws.path("rl"), &[])["rows"]
            .as_i64()
            .unwrap()
            == turns,
        "one rl-turns row per turn"
    );
}

#[test]
fn splits_follow_sessions_and_filters_reduce_rows() {
    let ws = Workspace::new();
    ws.ingest(&[&examples()]);
    ws.ok(["derive"]);
    let out = ws.path("rl");
    export(&ws, "rl-turns", &out, &["--validation-percent", "50"]);
    let sessions = python(
        r#"
import json, sys
import pyarrow.parquet as pq, glob, os
out = sys.argv[1]
r = {}
for split in ("train", "validation"):
    s = set()
    for f in glob.glob(os.path.join(out, "data", f"{split}-*.parquet")):
        s |= set(pq.read_table(f, columns=["session_id"]).column("session_id").to_pylist())
    r[split] = sorted(s)
print(json.dumps(r))
"#,
        &[out.to_str().unwrap()],
    );
    let sessions: BTreeMap<String, Vec<String>> = serde_json::from_str(&sessions).unwrap();
    let train: HashSet<&String> = sessions["train"].iter().collect();
    assert!(!sessions["train"].is_empty() && !sessions["validation"].is_empty());
    assert!(
        sessions["validation"].iter().all(|s| !train.contains(s)),
        "a session is in one split"
    );
    // The same export again: byte-identical shards.
    let hashes = |dir: &Path| {
        let manifest: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap())
                .unwrap();
        manifest["shards"].clone()
    };
    let first = hashes(&out);
    export(&ws, "rl-turns", &out, &["--validation-percent", "50"]);
    assert_eq!(first, hashes(&out));

    let all = export(&ws, "rl-turns", &ws.path("all"), &[])["rows"]
        .as_i64()
        .unwrap();
    let cloud = export(&ws, "rl-turns", &ws.path("cloud"), &["--locality", "cloud"])["rows"]
        .as_i64()
        .unwrap();
    let expected_cloud = ws.count("SELECT count(*) FROM turns WHERE locality = 'cloud'");
    assert_eq!(cloud, expected_cloud);
    assert!(cloud < all);
    let tools = export(
        &ws,
        "rl-turns",
        &ws.path("tools"),
        &["--where", "t.tool_call_count > 0"],
    )["rows"]
        .as_i64()
        .unwrap();
    assert_eq!(
        tools,
        ws.count("SELECT count(*) FROM turns WHERE tool_call_count > 0")
    );
    let rewarded = export(
        &ws,
        "rl-turns",
        &ws.path("rewarded"),
        &["--min-reward", "0.5"],
    )["rows"]
        .as_i64()
        .unwrap();
    assert!(rewarded < all);
}

#[test]
fn nightly_build_is_reproducible_and_skips_when_nothing_changed() {
    let ws = Workspace::new();
    ws.ingest(&[&examples()]);
    let config = ws.path("nightly.toml");
    std::fs::write(
        &config,
        r#"
[derive]
credit = "grpo"

[dedupe]
threshold = 0.8

[[dataset]]
name = "sft"
target = "openai-sft"
out = "out/sft"

[[dataset]]
name = "turns"
target = "rl-turns"
out = "out/rl"
validation_percent = 20
"#,
    )
    .unwrap();
    let first: Value =
        serde_json::from_str(&ws.ok(["build", config.to_str().unwrap(), "--as-of", "1", "--json"]))
            .unwrap();
    assert_eq!(first["up_to_date"], false);
    assert_eq!(first["datasets"].as_array().unwrap().len(), 2);
    let shards = |name: &str| -> Value {
        let manifest: Value = serde_json::from_str(
            &std::fs::read_to_string(ws.path("out").join(name).join("manifest.json")).unwrap(),
        )
        .unwrap();
        manifest["shards"].clone()
    };
    let (sft, rl) = (shards("sft"), shards("rl"));
    // Nothing new: no work.
    let again = ws.ok(["build", config.to_str().unwrap(), "--as-of", "1"]);
    assert!(again.contains("nothing new"), "{again}");
    // A forced rebuild from the same version: byte-identical shards.
    std::fs::remove_dir_all(ws.path("out")).unwrap();
    ws.ok(["build", config.to_str().unwrap(), "--as-of", "1", "--force"]);
    assert_eq!(shards("sft"), sft);
    assert_eq!(shards("rl"), rl);
    // New events: it builds again.
    let extra = ws.path("new-session.jsonl");
    let text = std::fs::read_to_string(crate::harness::public(
        "openclaw-v3-moltbot-anthropic-thinking.excerpt.jsonl",
    ))
    .unwrap()
    .replace("\"id\":\"4f746ba6", "\"id\":\"5f746ba6");
    std::fs::write(&extra, text).unwrap();
    assert!(ws.ingest(&[&extra])["events_added"].as_i64().unwrap() > 0);
    let latest: Value =
        serde_json::from_str(&ws.ok(["build", config.to_str().unwrap(), "--json"])).unwrap();
    assert_eq!(latest["up_to_date"], false);
}
