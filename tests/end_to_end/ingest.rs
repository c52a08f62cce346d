//! `trajectory ingest`: event counts against the files themselves, idempotence,
//! quarantine.

use std::collections::HashMap;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::harness::{examples, public, Workspace};

/// Counts what a transcript holds, reading it line by line with serde_json:
/// the test's own independent view of the file.
struct FileCounts {
    by_kind: HashMap<&'static str, i64>,
    output_tokens: i64,
    cost: f64,
}

fn count_file(path: &std::path::Path) -> FileCounts {
    let text = std::fs::read_to_string(path).unwrap();
    let mut by_kind: HashMap<&'static str, i64> = HashMap::new();
    let mut output_tokens = 0;
    let mut cost = 0.0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let entry: Value = serde_json::from_str(line).unwrap();
        let kind: &'static str = match entry["type"].as_str().unwrap() {
            "session" => "session_start",
            "model_change" => "model_change",
            "thinking_level_change" => "thinking_level_change",
            "compaction" => "compaction",
            "custom" => "custom",
            "message" => {
                let message = &entry["message"];
                match message["role"].as_str().unwrap() {
                    "user" => "user_message",
                    "toolResult" => "tool_result",
                    "bashExecution" => "bash_execution",
                    "assistant" => {
                        let calls = message["content"]
                            .as_array()
                            .map(|blocks| blocks.iter().filter(|b| b["type"] == "toolCall").count())
                            .unwrap_or(0);
                        *by_kind.entry("tool_call").or_default() += calls as i64;
                        if message["provider"] == "openclaw" {
                            "injected_message"
                        } else {
                            output_tokens += message["usage"]["output"].as_i64().unwrap_or(0);
                            cost += message["usage"]["cost"]["total"].as_f64().unwrap_or(0.0);
                            "llm_call"
                        }
                    }
                    other => panic!("unexpected role {other}"),
                }
            }
            other => panic!("unexpected type {other}"),
        };
        *by_kind.entry(kind).or_default() += 1;
    }
    FileCounts {
        by_kind,
        output_tokens,
        cost,
    }
}

fn kinds_in_store(ws: &Workspace) -> HashMap<String, i64> {
    ws.sql("SELECT kind, count(*) AS n FROM events WHERE kind <> 'source_checkpoint' GROUP BY kind")
        .into_iter()
        .map(|row| {
            (
                row["kind"].as_str().unwrap().to_string(),
                row["n"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn v1_legacy_transcript_yields_every_event_of_the_file() {
    let file = public("pi-v1-legacy-before-compaction.jsonl");
    let expected = count_file(&file);
    // The file's own counts, as the issue states them.
    for (kind, n) in [
        ("llm_call", 484),
        ("tool_call", 454),
        ("tool_result", 448),
        ("user_message", 55),
        ("bash_execution", 3),
        ("compaction", 2),
        ("model_change", 5),
        ("thinking_level_change", 5),
        ("session_start", 1),
    ] {
        assert_eq!(
            expected.by_kind.get(kind).copied(),
            Some(n),
            "file count of {kind}"
        );
    }
    assert_eq!(expected.output_tokens, 187_895);

    let ws = Workspace::new();
    let summary = ws.ingest(&[&file]);
    assert_eq!(summary["lines_quarantined"], 0);
    let stored = kinds_in_store(&ws);
    for (kind, n) in &expected.by_kind {
        assert_eq!(stored.get(*kind), Some(n), "stored count of {kind}");
    }
    assert_eq!(
        stored.len(),
        expected.by_kind.len(),
        "no other kinds: {stored:?}"
    );
    assert_eq!(
        ws.count("SELECT sum(output_tokens) FROM llm_calls"),
        expected.output_tokens
    );
    let cost = ws.sql("SELECT sum(cost_usd) AS cost FROM llm_calls")[0]["cost"]
        .as_f64()
        .unwrap();
    assert!(
        (cost - expected.cost).abs() < 1e-6,
        "{cost} vs {}",
        expected.cost
    );
    // Provenance down to the byte: every line's offset points at its bytes.
    let bytes = std::fs::read(&file).unwrap();
    for row in ws.sql(
        "SELECT source_offset, source_line, line_sha256 FROM events \
         WHERE kind = 'llm_call' ORDER BY source_line LIMIT 5",
    ) {
        let offset = row["source_offset"].as_u64().unwrap() as usize;
        let end = offset + bytes[offset..].iter().position(|b| *b == b'\n').unwrap();
        assert_eq!(
            row["line_sha256"].as_str().unwrap(),
            hex::encode(Sha256::digest(&bytes[offset..end]))
        );
    }
}

#[test]
fn ollama_fallback_excerpt_separates_local_failures_cloud_and_injected() {
    let ws = Workspace::new();
    ws.ingest(&[&public(
        "openclaw-v3-local-ollama-fallback-to-codex.excerpt.jsonl",
    )]);
    let stored = kinds_in_store(&ws);
    assert_eq!(stored["llm_call"], 5);
    assert_eq!(stored["injected_message"], 1);
    assert_eq!(stored["tool_call"], 5);
    assert_eq!(
        ws.count("SELECT count(*) FROM llm_calls WHERE locality = 'local' AND failed AND provider = 'ollama'"),
        4
    );
    assert_eq!(
        ws.count("SELECT count(*) FROM llm_calls WHERE locality = 'cloud' AND NOT failed AND provider = 'openai-codex'"),
        1
    );
    assert_eq!(ws.count("SELECT count(*) FROM quarantine"), 0);
    // The last line's parent is not in the excerpt: kept, not an error.
    assert_eq!(
        ws.count(
            "SELECT count(*) FROM events e WHERE e.parent_id = '15a66bb1' \
             AND NOT EXISTS (SELECT 1 FROM events p WHERE p.entry_id = e.parent_id)"
        ),
        1
    );
    // isError:false with details.status:"error" is a failed tool result.
    assert_eq!(
        ws.count("SELECT count(*) FROM tool_calls WHERE tool_status = 'error' AND tool_is_error"),
        1
    );
}

#[test]
fn ingesting_twice_adds_nothing() {
    let ws = Workspace::new();
    let first = ws.ingest(&[&examples()]);
    let added = first["events_added"].as_i64().unwrap();
    assert!(added > 1500, "{first}");
    // The 2026.9.6 agent store keeps the deleted session's archive, whose bytes
    // equal the archived `.jsonl.deleted.*.zst`: the same events, stored once.
    assert_eq!(
        first["events_already_present"].as_i64().unwrap() + added,
        first["events_read"].as_i64().unwrap()
    );
    assert_eq!(
        first["table_version"], 1,
        "version 0 creates the table (schema, properties), the first ingest is version 1"
    );
    let stored = "SELECT count(*) FROM events WHERE kind <> 'source_checkpoint'";
    assert_eq!(ws.count(stored), added);

    // Same files again: every source is unchanged since its checkpoint.
    let second = ws.ingest(&[&examples()]);
    assert_eq!(second["events_added"], 0);
    assert_eq!(second["files_unchanged"], second["files"]);
    assert_eq!(second["table_version"], Value::Null, "no empty commit");

    // The same content under another path has no checkpoint: it is read in
    // full, and the deterministic ids drop every event already stored.
    let copy = ws.path("copy");
    copy_dir(&examples(), &copy);
    let third = ws.ingest(&[&copy]);
    assert_eq!(third["events_added"], 0, "{third}");
    assert_eq!(third["events_already_present"], third["events_read"]);
    assert_eq!(ws.count(stored), added);
    assert_eq!(
        ws.count("SELECT count(DISTINCT event_id) FROM events"),
        ws.count("SELECT count(*) FROM events")
    );
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn archived_v4_transcripts_are_read_through_zstd() {
    let ws = Workspace::new();
    let dir = examples().join("real-run/openclaw-2026.9.6");
    let summary = ws.ingest(&[&dir]);
    let files: Vec<&Value> = summary["per_file"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "transcript")
        .collect();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["header_version"], 4);
    assert!(files[0].get("note").is_none(), "v4 is a known version");
    assert!(ws.count("SELECT count(*) FROM llm_calls") > 0);
    assert_eq!(
        ws.count("SELECT count(DISTINCT agent_id) FROM events WHERE agent_id = 'main'"),
        1
    );
}

#[test]
fn bad_lines_are_quarantined_and_good_lines_kept() {
    let ws = Workspace::new();
    let path = ws.path("broken.jsonl");
    let header = br#"{"type":"session","version":3,"id":"broken-1","timestamp":"2026-05-01T10:00:00.000Z","cwd":"/w"}"#;
    let user = br#"{"type":"message","id":"u1","parentId":null,"timestamp":"2026-05-01T10:00:01.000Z","message":{"role":"user","content":"hello","timestamp":1777629601000}}"#;
    let malformed = br#"{"type":"message","id":"m1","parentId":"u1",,}"#;
    let not_utf8: &[u8] = b"{\"type\":\"label\",\"id\":\"l1\",\"label\":\"\xc3\x28\"}";
    // A line cut short by a crash, then appended after: truncated mid-file.
    let truncated =
        br#"{"type":"message","id":"a0","parentId":"u1","timestamp":"2026-05-01T10:00:0"#;
    let assistant = br#"{"type":"message","id":"a1","parentId":"u1","timestamp":"2026-05-01T10:00:02.000Z","message":{"role":"assistant","content":[{"type":"text","text":"hi"}],"provider":"ollama","model":"qwen3:8b","api":"ollama","usage":{"input":3,"output":1},"stopReason":"stop","timestamp":1777629601500}}"#;
    let mut data = Vec::new();
    let mut offsets = Vec::new();
    for line in [&header[..], user, malformed, not_utf8, truncated, assistant] {
        offsets.push(data.len());
        data.extend_from_slice(line);
        data.push(b'\n');
    }
    std::fs::write(&path, &data).unwrap();

    let summary = ws.ingest(&[&path]);
    assert_eq!(summary["lines_quarantined"], 3, "{summary}");
    let stored = kinds_in_store(&ws);
    assert_eq!(stored["user_message"], 1);
    assert_eq!(stored["llm_call"], 1);
    assert_eq!(stored["session_start"], 1);
    assert_eq!(stored["quarantined"], 3);

    let rows =
        ws.sql("SELECT line, byte_offset, line_sha256, reason, raw FROM quarantine ORDER BY line");
    let expected = [
        (3, offsets[2], &malformed[..], "malformed JSON"),
        (4, offsets[3], not_utf8, "invalid UTF-8"),
        (5, offsets[4], &truncated[..], "malformed JSON"),
    ];
    assert_eq!(rows.len(), 3);
    for (row, (line, offset, bytes, reason)) in rows.iter().zip(expected) {
        assert_eq!(row["line"], line);
        assert_eq!(row["byte_offset"].as_u64().unwrap() as usize, offset);
        assert_eq!(
            row["line_sha256"].as_str().unwrap(),
            hex::encode(Sha256::digest(bytes))
        );
        assert!(row["reason"].as_str().unwrap().starts_with(reason), "{row}");
        assert!(!row["raw"].as_str().unwrap().is_empty());
    }
    // Quarantine is idempotent too.
    let again = ws.ingest(&[&path]);
    assert_eq!(again["events_added"], 0);
    assert_eq!(ws.count("SELECT count(*) FROM quarantine"), 3);
}

#[test]
fn appended_lines_are_read_once_and_a_partial_last_line_waits() {
    let ws = Workspace::new();
    let path = ws.path("growing.jsonl");
    let header = r#"{"type":"session","version":3,"id":"grow-1","timestamp":"2026-05-01T10:00:00.000Z","cwd":"/w"}"#;
    let user = r#"{"type":"message","id":"u1","parentId":null,"timestamp":"2026-05-01T10:00:01.000Z","message":{"role":"user","content":"hello"}}"#;
    let reply = r#"{"type":"message","id":"a1","parentId":"u1","timestamp":"2026-05-01T10:00:02.000Z","message":{"role":"assistant","content":[{"type":"text","text":"hi"}],"provider":"ollama","model":"q","usage":{"output":1},"stopReason":"stop"}}"#;
    let (first_half, second_half) = reply.split_at(40);
    std::fs::write(&path, format!("{header}\n{user}\n{first_half}")).unwrap();

    let first = ws.ingest(&[&path]);
    assert_eq!(
        first["lines_quarantined"], 0,
        "a partial last line is not quarantined"
    );
    assert_eq!(first["per_file"][0]["pending_bytes"], first_half.len());
    assert_eq!(ws.count("SELECT count(*) FROM llm_calls"), 0);

    std::fs::write(&path, format!("{header}\n{user}\n{reply}\n")).unwrap();
    let _ = second_half;
    let second = ws.ingest(&[&path]);
    assert_eq!(second["per_file"][0]["mode"], "resumed");
    assert_eq!(second["lines"], 1, "only the completed line is read");
    assert_eq!(second["events_added"], 1);
    assert_eq!(ws.count("SELECT count(*) FROM llm_calls"), 1);
    // The resumed part still knows its session from the header.
    assert_eq!(
        ws.count("SELECT count(*) FROM llm_calls WHERE session_id = 'grow-1' AND seq = 2"),
        1
    );

    // Rewritten in place (as pi does on migration): read again, nothing duplicated.
    std::fs::write(
        &path,
        format!("{header}\n{user}\n{reply}\n").replace("hello", "HELLO"),
    )
    .unwrap();
    let third = ws.ingest(&[&path]);
    assert_eq!(third["per_file"][0]["mode"], "reread");
    assert_eq!(third["events_added"], 1, "only the changed line is new");
    assert_eq!(
        ws.count("SELECT count(*) FROM messages WHERE session_id = 'grow-1'"),
        3
    );
}

#[test]
fn unknown_entry_types_are_kept_not_dropped() {
    let ws = Workspace::new();
    let path = ws.path("future.jsonl");
    std::fs::write(
        &path,
        concat!(
            r#"{"type":"session","version":7,"id":"future-1","timestamp":"2027-01-01T00:00:00.000Z"}"#,
            "\n",
            r#"{"type":"teleport","id":"t1","parentId":null,"timestamp":"2027-01-01T00:00:01.000Z","to":"mars"}"#,
            "\n",
        ),
    )
    .unwrap();
    let summary = ws.ingest(&[&path]);
    assert_eq!(summary["unknown_entries"], 1);
    let note = summary["per_file"][0]["note"].as_str().unwrap();
    assert!(note.contains("newer"), "{note}");
    let rows = ws.sql("SELECT content FROM events WHERE kind = 'unknown'");
    assert!(rows[0]["content"].as_str().unwrap().contains("mars"));
}

#[test]
fn missing_input_is_a_clear_error() {
    let ws = Workspace::new();
    let out = ws.run(["ingest", "/no/such/dir"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/no/such/dir"), "{stderr}");
}

#[test]
fn locality_comes_from_base_urls_and_config_overrides() {
    let dir = examples().join("real-run/openclaw-2026.5.28");
    let ws = Workspace::new();
    ws.ingest(&[&dir]);
    // cloudstub's baseUrl in openclaw.json is on loopback: local, whatever its name says.
    assert!(ws.count("SELECT count(*) FROM llm_calls WHERE provider = 'cloudstub'") > 0);
    assert_eq!(
        ws.count(
            "SELECT count(*) FROM llm_calls WHERE provider = 'cloudstub' AND locality <> 'local'"
        ),
        0
    );

    let config = ws.path("config.toml");
    std::fs::write(&config, "[locality]\ncloudstub = \"cloud\"\n").unwrap();
    let other = Workspace::new();
    let out = other.ok([
        "--config",
        config.to_str().unwrap(),
        "ingest",
        "--json",
        dir.to_str().unwrap(),
    ]);
    assert!(out.contains("\"events_added\""));
    assert_eq!(
        other.count(
            "SELECT count(*) FROM llm_calls WHERE provider = 'cloudstub' AND locality <> 'cloud'"
        ),
        0
    );
    std::fs::write(&config, "[locality]\ncloudstub = \"moon\"\n").unwrap();
    let bad = other.run([
        "--config",
        config.to_str().unwrap(),
        "ingest",
        dir.to_str().unwrap(),
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("moon"));
}

#[test]
fn without_a_path_the_openclaw_state_dirs_are_found_and_printed() {
    let ws = Workspace::new();
    let home = ws.path("home");
    copy_dir(
        &examples().join("real-run/openclaw-2026.5.28"),
        &home.join(".openclaw-work"),
    );
    copy_dir(
        &examples().join("real-run/pi-0.73.1/sessions"),
        &home.join(".pi/agent/sessions"),
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trajectory"))
        .arg("--store")
        .arg(ws.store())
        .args(["ingest", "--json"])
        .env("HOME", &home)
        .env_remove("OPENCLAW_STATE_DIR")
        .env_remove("TRAJECTORY_STORE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("reading from:"), "{stderr}");
    assert!(
        stderr.contains(".openclaw-work"),
        "profiles are found: {stderr}"
    );
    assert!(stderr.contains(".pi/agent/sessions"), "{stderr}");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(summary["events_added"].as_i64().unwrap() > 100, "{summary}");
    assert!(ws.count("SELECT count(*) FROM events WHERE source = 'openclaw_cron_run_log'") > 0);
}

#[test]
fn identical_log_lines_appended_later_are_two_events() {
    let ws = Workspace::new();
    let dir = ws.path("tmp-openclaw");
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("openclaw-2026-06-01.log");
    let line = r#"{"0":"{\"subsystem\":\"gateway/ws\"}","1":"client connected","_meta":{"runtime":"node","name":"{\"subsystem\":\"gateway/ws\"}","parentNames":["openclaw"],"date":"2026-06-01T09:00:04.000Z","logLevelId":3,"logLevelName":"INFO"},"time":"2026-06-01T09:00:04.000Z"}"#;
    std::fs::write(&log, format!("{line}\n")).unwrap();
    ws.ingest(&[&dir]);
    // Another process logs the very same bytes; the next run resumes after the first.
    std::fs::write(&log, format!("{line}\n{line}\n")).unwrap();
    let second = ws.ingest(&[&dir]);
    assert_eq!(second["per_file"][0]["mode"], "resumed");
    assert_eq!(second["events_added"], 1);
    assert_eq!(
        ws.count("SELECT count(*) FROM events WHERE kind = 'log_record'"),
        2
    );
}

#[test]
fn two_ingests_at_once_store_each_event_once() {
    let ws = Workspace::new();
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_trajectory"))
            .arg("--store")
            .arg(ws.store())
            .args(["ingest", "--json"])
            .arg(examples())
            .env_remove("TRAJECTORY_STORE")
            .output()
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(spawn);
        let b = s.spawn(spawn);
        (a.join().unwrap().unwrap(), b.join().unwrap().unwrap())
    });
    assert!(a.status.success() && b.status.success());
    assert_eq!(
        ws.count("SELECT count(DISTINCT event_id) FROM events"),
        ws.count("SELECT count(*) FROM events"),
        "no event stored twice"
    );
}

#[test]
fn chunked_writes_store_the_same_events_in_one_commit() {
    // Every source its own chunk of segments: the same rows as one chunk,
    // still one commit.
    let whole = Workspace::new();
    let chunked = Workspace::new();
    let one = whole.ingest(&[&examples()]);
    let out = chunked.ok([
        "ingest",
        "--json",
        "--chunk-bytes",
        "1",
        "--auto-compact-after",
        "0",
        examples().to_str().unwrap(),
    ]);
    let many: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(many["events_added"], one["events_added"]);
    assert_eq!(
        many["table_version"], 1,
        "one commit after the table's creation"
    );
    let ids = "SELECT event_id FROM events ORDER BY event_id";
    assert_eq!(
        whole.ok(["sql", "--format", "csv", ids]),
        chunked.ok(["sql", "--format", "csv", ids])
    );
    let segments = |ws: &Workspace| {
        walkdir(&ws.store().join("events"))
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
            .count()
    };
    assert!(segments(&chunked) > segments(&whole));
}

fn walkdir(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walkdir(&path));
        } else {
            out.push(path);
        }
    }
    out
}
