//! Training targets from the derived tables, filters, splits, lineage, and
//! nightly builds (`trajectory build`).

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde_json::Value;

use crate::harness::{examples, export, python, Workspace};

const TARGETS: [&str; 7] = [
    "trl-sft",
    "openai-sft",
    "openai-dpo",
    "trl-preference",
    "kto",
    "grpo",
    "rl-turns",
];

/// Loads a dataset directory with `datasets` (the card's configs, as
/// `load_dataset(DIR)` does; a cache of its own: `datasets` caches a local
/// directory by its name, not its content) and checks it with TRL's own helpers:
/// `is_conversational` on every row of the conversational targets,
/// `maybe_extract_prompt` + `unpair_preference_dataset` on preference rows
/// (TRL's conversion to the unpaired KTO form), bool labels for KTO. Prints
/// per-split counts and columns as JSON.
const LOAD_AND_RECOGNISE: &str = r#"
import json, sys
from datasets import load_dataset
from trl.data_utils import is_conversational, maybe_extract_prompt, unpair_preference_dataset
out, target = sys.argv[1], sys.argv[2]
ds = load_dataset(out, cache_dir=sys.argv[1] + ".hf-cache")
result = {"rows": {s: ds[s].num_rows for s in ds}, "columns": ds["train"].column_names}
rows = [r for s in ds for r in ds[s]]
if target in ("trl-sft", "openai-sft", "trl-preference", "kto", "grpo"):
    result["conversational"] = all(is_conversational(r) for r in rows)
if target == "trl-preference" and rows:
    assert all(maybe_extract_prompt(r)["prompt"] == r["prompt"] for r in rows)
    unpaired = unpair_preference_dataset(ds["train"])
    assert set(["prompt", "completion", "label"]) <= set(unpaired.column_names)
    assert unpaired.num_rows == 2 * ds["train"].num_rows
    result["unpaired"] = unpaired.num_rows
if target == "kto":
    assert all(isinstance(r["label"], bool) for r in rows)
    assert all(r["completion"][0]["role"] == "assistant" for r in rows)
    result["labels"] = sorted(set(r["label"] for r in rows))
if target == "trl-preference":
    assert all(r["chosen"][0]["role"] == "assistant" and r["rejected"][0]["role"] == "assistant"
               and r["chosen"] != r["rejected"] for r in rows)
print(json.dumps(result))
"#;

fn rows_of(ws: &Workspace, target: &str, name: &str, extra: &[&str]) -> i64 {
    export(ws, target, &ws.path(name), extra)["rows"]
        .as_i64()
        .unwrap()
}

fn manifest(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
}

#[test]
fn every_target_loads_with_datasets_and_trl_recognises_it() {
    let ws = Workspace::new();
    let fixture = preference_fixture(&ws.path("fixture"));
    ws.ingest(&[&examples(), &fixture]);
    // Without derived tables: a clear error and the hint.
    let missing = ws.run([
        "export",
        "--target",
        "kto",
        "--out",
        ws.path("x").to_str().unwrap(),
    ]);
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("derived table") && stderr.contains("hint: run `trajectory derive` first"),
        "{stderr}"
    );
    ws.ok(["derive"]);
    let turns = ws.count("SELECT count(*) FROM turns");
    let known: HashSet<String> = ws
        .sql("SELECT event_id FROM events")
        .iter()
        .map(|r| r["event_id"].as_str().unwrap().to_string())
        .collect();
    for target in TARGETS {
        let out = ws.path(target);
        let summary = export(&ws, target, &out, &["--validation-percent", "30"]);
        let rows = summary["rows"].as_u64().unwrap();
        assert!(rows > 0, "{target} has rows");
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
        assert!(
            target.contains("pref")
                || target.contains("dpo")
                || loaded["rows"].get("validation").is_some(),
            "{target}: 30% of sessions give a validation split: {loaded}"
        );
        let columns: Vec<&str> = loaded["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        let expected: &[&str] = match target {
            "trl-sft" => &["messages", "tools"],
            "openai-sft" => &["messages", "tools"],
            "openai-dpo" => &["input", "preferred_output", "non_preferred_output"],
            "trl-preference" => &["prompt", "chosen", "rejected"],
            "kto" => &["prompt", "completion", "label"],
            "grpo" => &["prompt", "reward", "advantage", "group_id"],
            _ => &[
                "session_id",
                "turn",
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
        if target == "kto" {
            assert_eq!(
                loaded["labels"],
                serde_json::json!([false, true]),
                "both labels"
            );
        }
        // The manifest names the events behind every row, with its shard and row.
        let manifest = manifest(&out);
        let lineage = manifest["lineage"].as_array().unwrap();
        if target != "trl-sft" {
            assert_eq!(
                manifest["jobs"]["rewards"]["job_version"], "rewards-v1",
                "{target}"
            );
        }
        assert!(manifest["filters"].is_object());
        assert_eq!(manifest["split"]["validation_percent"], 30);
        assert_eq!(lineage.len() as u64, rows);
        let mut per_shard: BTreeMap<&str, u64> = BTreeMap::new();
        for entry in lineage {
            let shard = entry["shard"].as_str().unwrap();
            assert_eq!(
                entry["row"].as_u64().unwrap(),
                per_shard.get(shard).copied().unwrap_or(0)
            );
            *per_shard.entry(shard).or_default() += 1;
            let ids = entry["event_ids"].as_array().unwrap();
            assert!(!ids.is_empty(), "{target}: {entry}");
            assert!(
                ids.iter().all(|id| known.contains(id.as_str().unwrap())),
                "{target}: lineage names events of the store"
            );
        }
        for shard in manifest["shards"].as_array().unwrap() {
            assert_eq!(
                per_shard
                    .get(shard["path"].as_str().unwrap())
                    .copied()
                    .unwrap_or(0),
                shard["rows"].as_u64().unwrap()
            );
        }
        if target.starts_with("openai") {
            let jsonl = std::fs::read_to_string(out.join("train.jsonl")).unwrap();
            assert_eq!(
                jsonl.lines().count() as u64,
                manifest["rows"]["train"].as_u64().unwrap()
            );
            for line in jsonl.lines() {
                let line: Value = serde_json::from_str(line).unwrap();
                assert!(line.get("session_id").is_none());
                let messages = if target == "openai-sft" {
                    assert!(line["tools"].is_array());
                    let messages = line["messages"].as_array().unwrap().clone();
                    assert!(messages
                        .iter()
                        .filter(|m| m["role"] == "assistant")
                        .all(|m| m["weight"] == 0 || m["weight"] == 1));
                    assert!(messages.iter().any(|m| m["weight"] == 1));
                    assert!(messages
                        .iter()
                        .filter(|m| m["role"] != "assistant")
                        .all(|m| m.get("weight").is_none()));
                    messages
                } else {
                    assert!(line["input"]["tools"].is_array());
                    for side in ["preferred_output", "non_preferred_output"] {
                        let output = line[side].as_array().unwrap();
                        assert_eq!(output.len(), 1, "one assistant message");
                        assert_eq!(output[0]["role"], "assistant");
                    }
                    line["input"]["messages"].as_array().unwrap().clone()
                };
                // The keys and roles OpenAI's chat fine-tuning format allows.
                for m in &messages {
                    let allowed = [
                        "role",
                        "content",
                        "name",
                        "tool_calls",
                        "tool_call_id",
                        "weight",
                    ];
                    assert!(
                        m.as_object()
                            .unwrap()
                            .keys()
                            .all(|k| allowed.contains(&k.as_str())),
                        "{m}"
                    );
                    assert!(["system", "developer", "user", "assistant", "tool"]
                        .contains(&m["role"].as_str().unwrap()));
                    assert!(m["role"] == "assistant" || m["content"].is_string(), "{m}");
                    assert!(
                        m["content"].is_string() || m["tool_calls"].is_array(),
                        "{m}"
                    );
                    assert!(m.get("name").is_none() || m["role"] != "tool");
                    for call in m["tool_calls"].as_array().into_iter().flatten() {
                        let args = call["function"]["arguments"].as_str().expect("a string");
                        assert!(serde_json::from_str::<Value>(args).is_ok(), "{args}");
                    }
                }
            }
        }
    }
    assert_eq!(
        rows_of(&ws, "rl-turns", "rl", &[]),
        turns,
        "one rl-turns row per turn"
    );
    // Pairs come from both sources on the examples.
    let pairs = manifest(&ws.path("trl-preference"));
    assert!(
        pairs["counts"]["pairs_branch_sibling"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "{}",
        pairs["counts"]
    );
}

/// A transcript line of a v3 session.
fn line(id: &str, parent: Option<&str>, ts: &str, message: Value) -> String {
    serde_json::json!({"type": "message", "id": id, "parentId": parent, "timestamp": ts,
                       "message": message})
    .to_string()
}

fn user_says(text: &str) -> Value {
    serde_json::json!({"role": "user", "content": [{"type": "text", "text": text}]})
}

fn assistant_says(text: &str, stop: &str) -> Value {
    let mut m = serde_json::json!({"role": "assistant", "content": [{"type": "text", "text": text}],
        "api": "anthropic-messages", "provider": "anthropic", "model": "claude-opus-4-5",
        "usage": {"input": 10, "output": 20}, "stopReason": stop});
    if stop == "error" {
        m["errorMessage"] = "overloaded".into();
    }
    m
}

/// Two sessions asking the same thing: in `regen-a` the first answer was
/// regenerated and the user thanked the second (a branch-sibling pair); in
/// `regen-b` the call failed (a reward-difference pair against `regen-a`).
fn preference_fixture(dir: &Path) -> std::path::PathBuf {
    let dir = dir.join("agents/main/sessions");
    std::fs::create_dir_all(&dir).unwrap();
    let ask = "Write a haiku about the borrow checker";
    let header = |id: &str| {
        serde_json::json!({"type": "session", "version": 3, "id": id,
                           "timestamp": "2026-03-01T10:00:00.000Z", "cwd": "/tmp"})
        .to_string()
    };
    let a = [
        header("regen-a"),
        line("u1", None, "2026-03-01T10:00:01.000Z", user_says(ask)),
        line(
            "a1",
            Some("u1"),
            "2026-03-01T10:00:02.000Z",
            assistant_says("Rust is a language.", "stop"),
        ),
        line(
            "a2",
            Some("u1"),
            "2026-03-01T10:00:05.000Z",
            assistant_says(
                "Lifetimes align, / the borrow checker relents, / memory stays safe.",
                "stop",
            ),
        ),
        line(
            "u2",
            Some("a2"),
            "2026-03-01T10:00:09.000Z",
            user_says("thanks, perfect"),
        ),
        line(
            "a3",
            Some("u2"),
            "2026-03-01T10:00:10.000Z",
            assistant_says("Glad you like it!", "stop"),
        ),
    ];
    let b = [
        header("regen-b"),
        line("u1", None, "2026-03-02T10:00:01.000Z", user_says(ask)),
        line(
            "a1",
            Some("u1"),
            "2026-03-02T10:00:02.000Z",
            assistant_says("Borrow", "error"),
        ),
    ];
    std::fs::write(dir.join("regen-a.jsonl"), a.join("\n") + "\n").unwrap();
    std::fs::write(dir.join("regen-b.jsonl"), b.join("\n") + "\n").unwrap();
    dir
}

#[test]
fn preference_pairs_from_a_regenerated_answer_and_from_reward_gaps() {
    let ws = Workspace::new();
    let fixture = preference_fixture(&ws.path("fixture"));
    ws.ingest(&[&fixture]);
    ws.ok(["derive"]);
    let out = ws.path("pairs");
    let summary = export(&ws, "trl-preference", &out, &["--validation-percent", "0"]);
    assert_eq!(summary["rows"], 2, "{summary}");
    let rows: Vec<Value> = serde_json::from_str(&python(
        r#"
import json, sys
from datasets import load_dataset
print(json.dumps(load_dataset(sys.argv[1], cache_dir=sys.argv[1] + ".hf-cache")["train"].to_list()))
"#,
        &[out.to_str().unwrap()],
    ))
    .unwrap();
    let sibling = rows
        .iter()
        .find(|r| r["pair_source"] == "branch_sibling")
        .unwrap();
    assert_eq!(sibling["session_id"], "regen-a");
    assert!(
        sibling["chosen"][0]["content"]
            .as_str()
            .unwrap()
            .starts_with("Lifetimes align"),
        "the regenerated answer the user went on from is chosen"
    );
    assert_eq!(sibling["rejected"][0]["content"], "Rust is a language.");
    assert_eq!(
        sibling["prompt"].as_array().unwrap().last().unwrap()["content"],
        "Write a haiku about the borrow checker"
    );
    let gap = rows
        .iter()
        .find(|r| r["pair_source"] == "reward_difference")
        .unwrap();
    assert!(
        gap["chosen_reward"].as_f64().unwrap() - gap["rejected_reward"].as_f64().unwrap() >= 1.0
    );
    assert_eq!(gap["rejected"][0]["content"], "Borrow");
    // A gap no reward difference reaches leaves the sibling pair only.
    assert_eq!(
        rows_of(
            &ws,
            "trl-preference",
            "pairs-gap",
            &["--validation-percent", "0", "--min-reward-gap", "100"]
        ),
        1
    );
    // --min-reward applies to the chosen side.
    assert_eq!(
        rows_of(
            &ws,
            "trl-preference",
            "pairs-min",
            &["--validation-percent", "0", "--min-reward", "1"]
        ),
        2
    );
    // openai-dpo: one assistant message per side, in the JSONL too.
    let dpo = ws.path("dpo");
    export(&ws, "openai-dpo", &dpo, &["--validation-percent", "0"]);
    let lines: Vec<Value> = std::fs::read_to_string(dpo.join("train.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    let first = lines
        .iter()
        .find(|l| l["non_preferred_output"][0]["content"] == "Rust is a language.")
        .unwrap();
    assert_eq!(first["preferred_output"].as_array().unwrap().len(), 1);
    assert_eq!(
        first["input"]["messages"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()["role"],
        "user"
    );
    assert_eq!(
        first.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["input", "preferred_output", "non_preferred_output"]
    );
    // kto: the thanked answer is desirable, the failed one is not.
    let kto = ws.path("kto");
    export(&ws, "kto", &kto, &["--validation-percent", "0"]);
    let labels: Value = serde_json::from_str(&python(
        r#"
import json, sys
from datasets import load_dataset
ds = load_dataset(sys.argv[1], cache_dir=sys.argv[1] + ".hf-cache")["train"]
print(json.dumps({r["completion"][0]["content"]: r["label"] for r in ds}))
"#,
        &[kto.to_str().unwrap()],
    ))
    .unwrap();
    assert_eq!(labels["Borrow"], false, "{labels}");
    assert_eq!(
        labels["Lifetimes align, / the borrow checker relents, / memory stays safe."], true,
        "{labels}"
    );
    // rl-turns: the loss mask follows OpenClaw-RL's rule.
    let rl = ws.path("rl");
    export(&ws, "rl-turns", &rl, &["--validation-percent", "0"]);
    let turns: Vec<Value> = serde_json::from_str(&python(
        r#"
import json, sys
from datasets import load_dataset
print(json.dumps(load_dataset(sys.argv[1], cache_dir=sys.argv[1] + ".hf-cache")["train"].to_list()))
"#,
        &[rl.to_str().unwrap()],
    ))
    .unwrap();
    for t in &turns {
        let judged = !t["next_state"].is_null() && !t["score"].is_null();
        assert_eq!(
            t["loss_mask"].as_bool().unwrap(),
            judged && (t["score"] != 0.0 || t["turn"] == 0),
            "{t}"
        );
    }
    let thanked = turns
        .iter()
        .find(|t| t["next_state"] == "thanks, perfect")
        .unwrap();
    assert_eq!(thanked["next_state_role"], "user");
    assert!(thanked["signals"]
        .as_array()
        .unwrap()
        .contains(&Value::from("user_thanks")));
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
    // The documented rule decides the split.
    for (split, ids) in &sessions {
        for id in ids {
            assert_eq!(trajectory_exporters::split_of(id, 50), split, "{id}");
        }
    }
    // The same export again: byte-identical shards; the split of a session
    // does not depend on the target.
    let first = manifest(&out)["shards"].clone();
    export(&ws, "rl-turns", &out, &["--validation-percent", "50"]);
    assert_eq!(first, manifest(&out)["shards"]);
    let sft = ws.path("sft50");
    export(&ws, "trl-sft", &sft, &["--validation-percent", "50"]);
    for entry in manifest(&sft)["lineage"].as_array().unwrap() {
        let session = entry["session_id"].as_str().unwrap();
        let split = if entry["shard"]
            .as_str()
            .unwrap()
            .starts_with("data/validation")
        {
            "validation"
        } else {
            "train"
        };
        assert_eq!(trajectory_exporters::split_of(session, 50), split);
    }

    let all = rows_of(&ws, "rl-turns", "all", &[]);
    let count = |sql: &str| ws.count(sql);
    // Contexts are stored as chains (a prefix turn plus a tail): a filter
    // that drops the earlier turns of a session still gives each kept turn
    // its whole context, the one the unfiltered export gives, as long as
    // the stored message count says.
    let later = ws.path("later");
    export(&ws, "rl-turns", &later, &["--where", "t.turn_index >= 1"]);
    let counts = ws.sql("SELECT turn_id, context_messages FROM turns ORDER BY turn_id");
    let checked = python(
        r#"
import json, sys, glob, os
import pyarrow.parquet as pq
def contexts(out):
    r = {}
    for f in glob.glob(os.path.join(out, "data", "*.parquet")):
        for row in pq.read_table(f, columns=["turn_id", "context"]).to_pylist():
            r[row["turn_id"]] = row["context"]
    return r
full, later = contexts(sys.argv[1]), contexts(sys.argv[2])
counts = {r["turn_id"]: r["context_messages"] for r in json.loads(sys.argv[3])}
assert later and set(later) < set(full), (len(later), len(full))
for turn, context in later.items():
    assert context == full[turn], turn
for turn, context in full.items():
    # rl-turns' context is the turn's context and its user message.
    assert len(context) == counts[turn] + 1, (turn, len(context), counts[turn])
print(json.dumps({"kept": len(later), "longest": max(len(c) for c in later.values())}))
"#,
        &[
            ws.path("all").to_str().unwrap(),
            later.to_str().unwrap(),
            &serde_json::to_string(&counts).unwrap(),
        ],
    );
    let checked: Value = serde_json::from_str(&checked).unwrap();
    assert!(
        checked["longest"].as_i64().unwrap() > 2,
        "a kept turn carries its predecessors' messages: {checked}"
    );
    assert_eq!(
        rows_of(&ws, "rl-turns", "cloud", &["--locality", "cloud"]),
        count("SELECT count(*) FROM turns WHERE locality = 'cloud'")
    );
    assert!(count("SELECT count(*) FROM turns WHERE locality = 'cloud'") < all);
    assert_eq!(
        rows_of(
            &ws,
            "rl-turns",
            "tools",
            &["--where", "t.tool_call_count > 0"]
        ),
        count("SELECT count(*) FROM turns WHERE tool_call_count > 0")
    );
    let (provider, agent, middle) = {
        let r = ws.sql(
            "SELECT (SELECT provider FROM turns WHERE provider IS NOT NULL GROUP BY provider ORDER BY count(*) DESC LIMIT 1) AS p, \
                    (SELECT agent_id FROM turns WHERE agent_id IS NOT NULL GROUP BY agent_id ORDER BY count(*) DESC LIMIT 1) AS a, \
                    (SELECT CAST(approx_median(CAST(started_at AS BIGINT)) AS BIGINT) FROM turns) AS m",
        );
        (
            r[0]["p"].as_str().unwrap().to_string(),
            r[0]["a"].as_str().unwrap().to_string(),
            r[0]["m"].as_i64().unwrap(),
        )
    };
    assert_eq!(
        rows_of(&ws, "rl-turns", "provider", &["--provider", &provider]),
        count(&format!(
            "SELECT count(*) FROM turns WHERE provider = '{provider}'"
        ))
    );
    assert_eq!(
        rows_of(&ws, "rl-turns", "agent", &["--agent", &agent]),
        count(&format!(
            "SELECT count(*) FROM turns WHERE agent_id = '{agent}'"
        ))
    );
    let middle = chrono::DateTime::from_timestamp_micros(middle)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let since = rows_of(&ws, "rl-turns", "since", &["--since", &middle]);
    let until = rows_of(&ws, "rl-turns", "until", &["--until", &middle]);
    assert_eq!(since + until, all, "since and until partition the turns");
    assert!(since > 0 && until > 0);
    let rewarded = rows_of(&ws, "rl-turns", "rewarded", &["--min-reward", "0.5"]);
    assert!(rewarded < all && rewarded > 0);
    assert!(
        rows_of(&ws, "kto", "kto-all", &[])
            > rows_of(&ws, "kto", "kto-good", &["--min-reward", "0"])
    );
    // trl-sft filters select sessions.
    let sessions_all = rows_of(&ws, "trl-sft", "sft-all", &[]);
    let sessions_agent = rows_of(&ws, "trl-sft", "sft-agent", &["--agent", &agent]);
    assert!(sessions_agent > 0 && sessions_agent <= sessions_all);
    let with_tools = rows_of(
        &ws,
        "trl-sft",
        "sft-where",
        &["--where", "e.kind = 'tool_result'"],
    );
    assert!(
        with_tools > 0 && with_tools < sessions_all,
        "{with_tools} of {sessions_all}"
    );
    // Bad filters fail before any work, with a message naming the flag.
    let bad = ws.run([
        "export",
        "--target",
        "grpo",
        "--out",
        ws.path("bad").to_str().unwrap(),
        "--since",
        "yesterday",
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--since"));
    let bad = ws.run([
        "export",
        "--target",
        "grpo",
        "--out",
        ws.path("bad").to_str().unwrap(),
        "--where",
        "t.no_such_column > 1",
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("hint:"));
}

const NIGHTLY: &str = r#"
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

[[dataset]]
name = "pairs"
target = "trl-preference"
out = "out/pairs"

[[dataset]]
name = "sessions"
target = "trl-sft"
out = "out/sessions"
"#;

/// Every file under `dir` with its bytes, by relative path.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

#[test]
fn nightly_build_is_reproducible_and_skips_when_nothing_changed() {
    let ws = Workspace::new();
    let fixture = preference_fixture(&ws.path("fixture"));
    ws.ingest(&[&examples(), &fixture]);
    let config = ws.path("nightly.toml");
    std::fs::write(&config, NIGHTLY).unwrap();
    let config = config.to_str().unwrap();
    let first: Value =
        serde_json::from_str(&ws.ok(["build", config, "--as-of", "1", "--json"])).unwrap();
    assert_eq!(first["up_to_date"], false);
    assert_eq!(first["datasets"].as_array().unwrap().len(), 4);
    assert!(
        first["datasets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["rows"].as_u64().unwrap() > 0),
        "{first}"
    );
    // Shards, JSONL and cards; manifests differ only in created_at.
    let data = |all: BTreeMap<String, Vec<u8>>| -> BTreeMap<String, Vec<u8>> {
        all.into_iter()
            .filter(|(k, _)| !k.ends_with("manifest.json"))
            .collect()
    };
    let before = data(files(&ws.path("out")));
    assert!(before.keys().any(|k| k.ends_with(".parquet")));
    assert!(before.contains_key("sft/train.jsonl"));
    let sft_manifest = manifest(&ws.path("out/sft"));
    assert!(
        sft_manifest["jobs"]["dedupe_clusters"].is_object()
            || sft_manifest["filters"]["where"]
                .as_str()
                .unwrap()
                .contains("dedupe_clusters")
    );

    // Nothing new: no work, nothing rewritten.
    let state = std::fs::read(format!("{config}.state.json")).unwrap();
    let mtime = std::fs::metadata(ws.path("out/sft/manifest.json"))
        .unwrap()
        .modified()
        .unwrap();
    let again = ws.ok(["build", config, "--as-of", "1"]);
    assert!(again.contains("nothing new"), "{again}");
    assert_eq!(
        std::fs::metadata(ws.path("out/sft/manifest.json"))
            .unwrap()
            .modified()
            .unwrap(),
        mtime
    );
    assert_eq!(
        std::fs::read(format!("{config}.state.json")).unwrap(),
        state
    );

    // A rebuild from scratch with the same config and --as-of: byte-identical.
    std::fs::remove_dir_all(ws.path("out")).unwrap();
    let rebuilt: Value =
        serde_json::from_str(&ws.ok(["build", config, "--as-of", "1", "--json"])).unwrap();
    assert_eq!(rebuilt["up_to_date"], false, "missing outputs are rebuilt");
    assert_eq!(data(files(&ws.path("out"))), before);
    // --force rebuilds in place, byte-identical too.
    ws.ok(["build", config, "--as-of", "1", "--force"]);
    assert_eq!(data(files(&ws.path("out"))), before);

    // A changed config builds again.
    std::fs::write(config, format!("{NIGHTLY}\n# tweak\n")).unwrap();
    let changed: Value =
        serde_json::from_str(&ws.ok(["build", config, "--as-of", "1", "--json"])).unwrap();
    assert_eq!(changed["up_to_date"], false);

    // New events: it builds again.
    let extra = ws.path("new-session.jsonl");
    let text = std::fs::read_to_string(crate::harness::public(
        "openclaw-v3-moltbot-anthropic-thinking.excerpt.jsonl",
    ))
    .unwrap()
    .replace("\"id\":\"4f746ba6", "\"id\":\"5f746ba6");
    std::fs::write(&extra, text).unwrap();
    assert!(ws.ingest(&[&extra])["events_added"].as_i64().unwrap() > 0);
    let latest: Value = serde_json::from_str(&ws.ok(["build", config, "--json"])).unwrap();
    assert_eq!(latest["up_to_date"], false);
    let latest_again: Value = serde_json::from_str(&ws.ok(["build", config, "--json"])).unwrap();
    assert_eq!(latest_again["up_to_date"], true);

    // A bad config fails naming the problem.
    std::fs::write(
        config,
        "[[dataset]]\nname = \"x\"\ntarget = \"nope\"\nout = \"o\"\n",
    )
    .unwrap();
    let bad = ws.run(["build", config]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown target"));
}

/// Reads an `openclaw-rl` export as OpenClaw-RL's Python does (`json.loads`
/// per line) and checks every line is exactly what `json.dumps(record,
/// ensure_ascii=False)` writes, with its keys in the proxy's order. Prints
/// counts and the (session, turn) pairs as JSON.
const READ_OPENCLAW_RL: &str = r#"
import json, sys
d = sys.argv[1]
orders = {
    "record.jsonl": ["session_id", "turn", "timestamp", "messages", "prompt_text",
                     "response_text", "tool_calls", "next_state"],
    "record_prm.jsonl": ["session_id", "turn", "score", "votes"],
    "feedback_store.jsonl": ["session_id", "turn", "prompt_text", "response_text", "label",
                             "timestamp", "message_index"],
}
out = {}
for name, keys in orders.items():
    rows = []
    with open(f"{d}/{name}", encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            assert json.dumps(rec, ensure_ascii=False) + "\n" == line, (name, line[:200])
            got = list(rec.keys())
            if name == "record_prm.jsonl" and "representative_eval" in got:
                assert rec["score"] != 0.0 and got[-1] == "representative_eval", line
                got = got[:-1]
            assert got == keys, (name, got)
            rows.append(rec)
    out[name] = rows
records = out["record.jsonl"]
by_session = {}
for r in records:
    by_session.setdefault(r["session_id"], []).append(r["turn"])
    assert r["messages"] and r["prompt_text"].endswith("<|im_start|>assistant\n"), r
    assert r["response_text"].endswith("<|im_end|>\n")
    assert r["tool_calls"] is None or r["tool_calls"][0]["type"] == "function"
for turns in by_session.values():
    assert turns == list(range(1, len(turns) + 1)), turns
with_next = {(r["session_id"], r["turn"]) for r in records if r["next_state"] is not None}
prm = {(r["session_id"], r["turn"]) for r in out["record_prm.jsonl"]}
assert prm == with_next, (len(prm), len(with_next))
assert all(r["score"] in (1.0, -1.0, 0.0) and isinstance(r["score"], float) for r in out["record_prm.jsonl"])
assert all(all(v in (1, -1, 0, "fail") for v in r["votes"]) for r in out["record_prm.jsonl"])
assert [(r["session_id"], r["turn"]) for r in out["feedback_store.jsonl"]] == \
    [(r["session_id"], r["turn"]) for r in records]
assert all(r["label"] in (1, -1) for r in out["feedback_store.jsonl"])
print(json.dumps({"records": len(records), "prm": len(prm),
    "negative": sum(r["label"] == -1 for r in out["feedback_store.jsonl"]),
    "tool_calls": sum(r["tool_calls"] is not None for r in records),
    "prm_scores": sorted({r["score"] for r in out["record_prm.jsonl"]})}))
"#;

#[test]
fn openclaw_rl_records_read_back_as_its_proxy_writes_them() {
    let ws = Workspace::new();
    ws.ingest(&[&examples()]);
    ws.ok(["derive"]);
    let out = ws.path("orl");
    let summary = export(&ws, "openclaw-rl", &out, &[]);
    let read: Value = serde_json::from_str(&python(
        READ_OPENCLAW_RL,
        &[out.to_str().expect("utf-8 path")],
    ))
    .expect("json");
    // One record per LLM call of a turn that produced a message: counted
    // independently from the events (failed calls with no text and no tool
    // call produce none).
    let calls = ws.count(
        "SELECT count(*) FROM events e WHERE e.kind = 'llm_call' \
         AND e.event_id IN (SELECT unnest(event_ids) FROM turns) \
         AND NOT ((e.text IS NULL OR e.text = '') \
           AND (e.stop_reason IN ('error', 'aborted') OR e.error IS NOT NULL) \
           AND NOT EXISTS (SELECT 1 FROM events t WHERE t.kind = 'tool_call' \
             AND t.session_id = e.session_id AND t.entry_id = e.entry_id))",
    );
    assert!(calls > 10, "{calls}");
    assert_eq!(read["records"], calls);
    assert_eq!(summary["rows"], calls);
    assert!(read["tool_calls"].as_i64().unwrap_or(0) > 0, "{read}");
    // The examples have failed tool calls: some calls score -1, some +1.
    assert_eq!(read["prm_scores"][0], -1.0, "{read}");
    assert_eq!(
        read["prm_scores"].as_array().map(|a| a.len()),
        Some(3),
        "{read}"
    );
    // Lineage: every conversation record, with the events behind it.
    let manifest = manifest(&out);
    assert_eq!(
        manifest["lineage"].as_array().map(Vec::len),
        Some(calls as usize)
    );
    assert_eq!(manifest["shards"][0]["path"], "record.jsonl");

    // Explicit negative feedback comes from the calls' own process signals
    // (read by session beside the log): counted independently in SQL.
    // (A call that failed before producing anything has no record.)
    let negative = ws.count(
        "SELECT count(DISTINCT subject_id) FROM rewards r JOIN events e \
           ON e.event_id = r.subject_id \
         WHERE r.level = 'process' AND r.subject_kind = 'llm_call' AND r.value < 0 \
         AND r.signal IN ('user_correction', 'reaction_feedback', 'annotated_feedback') \
         AND NOT ((e.text IS NULL OR e.text = '') \
           AND (e.stop_reason IN ('error', 'aborted') OR e.error IS NOT NULL) \
           AND NOT EXISTS (SELECT 1 FROM events t WHERE t.kind = 'tool_call' \
             AND t.session_id = e.session_id AND t.entry_id = e.entry_id))",
    );
    assert_eq!(read["negative"], negative, "{read}");

    // A filter keeps some turns of some sessions: only their calls are
    // written, however the kept turns fall among the sessions.
    let first_turns = ws.path("orl-first");
    let filtered = export(
        &ws,
        "openclaw-rl",
        &first_turns,
        &["--where", "t.turn_index = 0"],
    );
    let kept_calls = ws.count(
        "SELECT count(*) FROM events e WHERE e.kind = 'llm_call' \
         AND e.event_id IN (SELECT unnest(event_ids) FROM turns WHERE turn_index = 0) \
         AND NOT ((e.text IS NULL OR e.text = '') \
           AND (e.stop_reason IN ('error', 'aborted') OR e.error IS NOT NULL) \
           AND NOT EXISTS (SELECT 1 FROM events t WHERE t.kind = 'tool_call' \
             AND t.session_id = e.session_id AND t.entry_id = e.entry_id))",
    );
    assert!(
        0 < kept_calls && kept_calls < calls,
        "{kept_calls} of {calls}"
    );
    assert_eq!(filtered["rows"], kept_calls);
}
