//! `trajectory derive` (turns, trajectories, rewards) and `trajectory judge`
//! on the real examples.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::harness::{examples, export, public, Workspace};

const FALLBACK_EXCERPT: &str = "openclaw-v3-local-ollama-fallback-to-codex.excerpt.jsonl";

#[test]
fn derive_builds_turns_trajectories_and_rewards_and_then_is_up_to_date() {
    let ws = Workspace::new();
    ws.ingest(&[&public(FALLBACK_EXCERPT)]);
    let summary: Value = serde_json::from_str(&ws.ok(["derive", "--json"])).expect("json");
    assert_eq!(summary["up_to_date"], false);
    let rows = |name: &str| {
        summary["tables"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["name"] == name))
            .and_then(|t| t["rows"].as_i64())
            .unwrap_or(-1)
    };
    // One turn per user message (the excerpt is one linear branch).
    let user_messages = ws.count("SELECT count(*) FROM events WHERE kind = 'user_message'");
    assert!(user_messages >= 2);
    assert_eq!(rows("turns"), user_messages);
    assert_eq!(ws.count("SELECT count(*) FROM turns"), user_messages);
    assert!(rows("trajectories") >= 1 && rows("rewards") > 0);

    // The failed `read` (details.status error) gives a -1 tool_error on the
    // LLM call that made it, and on no other call.
    let failing_calls = ws.sql(
        "SELECT DISTINCT l.event_id FROM llm_calls l JOIN tool_calls t \
         ON t.session_id = l.session_id AND t.entry_id = l.entry_id WHERE t.tool_is_error",
    );
    assert_eq!(
        failing_calls.len(),
        1,
        "the fixture has one failing tool call"
    );
    let tool_errors =
        ws.sql("SELECT subject_id, value, evidence FROM rewards WHERE signal = 'tool_error'");
    assert_eq!(tool_errors.len(), 1);
    assert_eq!(tool_errors[0]["subject_id"], failing_calls[0]["event_id"]);
    assert_eq!(tool_errors[0]["value"], -1.0);
    assert!(tool_errors[0]["evidence"]
        .as_str()
        .unwrap_or("")
        .contains("read"));

    // Four failed local calls: each a call_error; the last one, replaced by a
    // cloud model, also a local->cloud fallback.
    let failed = ws.count("SELECT count(*) FROM llm_calls WHERE failed");
    assert_eq!(
        ws.count("SELECT count(*) FROM rewards WHERE signal = 'call_error' AND value = -1.0"),
        failed
    );
    let fallback = ws.sql(
        "SELECT r.value, l.locality FROM rewards r JOIN llm_calls l ON r.subject_id = l.event_id \
         WHERE r.signal = 'fallback'",
    );
    assert_eq!(fallback.len(), 1);
    assert_eq!(fallback[0]["value"], -1.0);
    assert_eq!(fallback[0]["locality"], "local");
    // The user re-sent the same message after the failure: a re-ask.
    assert_eq!(
        ws.count("SELECT count(*) FROM rewards WHERE signal = 'user_reask'"),
        1
    );

    // Every row carries lineage: session and the events behind it, all of them real events.
    for table in ["turns", "trajectories", "rewards"] {
        assert_eq!(
            ws.count(&format!(
                "SELECT count(*) FROM {table} WHERE session_id IS NULL OR cardinality(event_ids) = 0"
            )),
            0,
            "{table} rows without lineage"
        );
    }
    assert_eq!(
        ws.count(
            "SELECT count(*) FROM (SELECT unnest(event_ids) AS id FROM rewards) r \
             LEFT JOIN events e ON e.event_id = r.id WHERE e.event_id IS NULL"
        ),
        0
    );

    // Nothing new: nothing to do.
    let again = ws.ok(["derive"]);
    assert!(again.contains("up to date"), "{again}");
    // Other parameters: rebuilt.
    let discount = ws.ok(["derive", "--credit", "discount", "--gamma", "0.5"]);
    assert!(!discount.contains("up to date"), "{discount}");
    assert_eq!(
        ws.count("SELECT count(*) FROM rewards WHERE level = 'combined' AND credit_assignment <> 'discount'"),
        0
    );
}

#[test]
fn derive_covers_every_example_and_links_abandoned_branches() {
    let ws = Workspace::new();
    ws.ingest(&[&examples()]);
    ws.ok(["derive"]);
    // Turns: one per (user message, branch continuation); none is lost.
    assert_eq!(
        ws.count(
            "SELECT count(*) FROM events e WHERE kind = 'user_message' AND source = 'openclaw_transcript' \
             AND NOT EXISTS (SELECT 1 FROM turns t WHERE t.user_event_id = e.event_id)"
        ),
        0
    );
    // Abandoned branches exist in the examples: their turns are flagged, and
    // every trajectory's siblings exist and point back.
    let abandoned = ws.count(
        "SELECT count(*) FROM active_branch a JOIN events e ON a.event_id = e.event_id \
         WHERE NOT a.on_active_branch AND e.kind = 'user_message'",
    );
    let abandoned_turns = ws.count("SELECT count(*) FROM turns WHERE NOT on_active_branch");
    assert!(abandoned_turns >= abandoned);
    assert_eq!(
        ws.count(
            "SELECT count(*) FROM (SELECT trajectory_id, unnest(sibling_trajectory_ids) AS sibling \
             FROM trajectories) s LEFT JOIN trajectories t ON t.trajectory_id = s.sibling \
             WHERE t.trajectory_id IS NULL OR NOT array_has(t.sibling_trajectory_ids, s.trajectory_id)"
        ),
        0
    );
    // A cron run that failed gives its session a -1 cron_run outcome.
    let failed_cron_sessions = ws.count(
        "SELECT count(DISTINCT session_id) FROM events WHERE kind = 'cron_run' AND status = 'error' \
         AND session_id IN (SELECT session_id FROM turns)",
    );
    assert!(failed_cron_sessions >= 1);
    assert_eq!(
        ws.count("SELECT count(DISTINCT session_id) FROM rewards WHERE signal = 'cron_run' AND value = -1.0"),
        failed_cron_sessions
    );
    // Exactly one combined trajectory row per trajectory.
    assert_eq!(
        ws.count(
            "SELECT count(*) FROM rewards WHERE level = 'combined' AND subject_kind = 'trajectory'"
        ),
        ws.count("SELECT count(*) FROM trajectories")
    );
}

/// Requests a [`judge_server`] received: (path, JSON body).
type Requests = Arc<Mutex<Vec<(String, Value)>>>;

/// A tiny OpenAI-compatible server: answers every POST with the next canned
/// vote and records (path, body) of each request.
fn judge_server(answers: Vec<&'static str>) -> (String, Requests) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/v1", listener.local_addr().expect("addr"));
    let seen: Requests = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request_line = String::new();
            reader.read_line(&mut request_line).ok();
            let mut length = 0;
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                    break;
                }
                if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).ok();
            let path = request_line.split(' ').nth(1).unwrap_or("").to_string();
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            record.lock().expect("lock").push((path, body));
            let answer = serde_json::json!({
                "id": "x", "object": "chat.completion",
                "choices": [{"index": 0, "message": {"role": "assistant",
                    "content": format!("The user moved on. {}", answers[n % answers.len()])},
                    "finish_reason": "stop"}]
            })
            .to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                answer.len(),
                answer
            );
        }
    });
    (url, seen)
}

#[test]
fn judge_appends_majority_votes_as_annotations_once_and_derive_uses_them() {
    let ws = Workspace::new();
    ws.ingest(&[&public(FALLBACK_EXCERPT)]);
    let (url, seen) = judge_server(vec!["\\boxed{1}", "\\boxed{1}", "\\boxed{-1}"]);
    let out: Value = serde_json::from_str(&ws.ok([
        "judge",
        "--endpoint",
        &url,
        "--model",
        "tiny-judge",
        "--votes",
        "3",
        "--json",
    ]))
    .expect("json");
    // Turns with a next state: the first (the user re-sent it); the second
    // ends in tool calls without results in this excerpt.
    assert_eq!(out["turns_judged"], 1, "{out}");
    assert_eq!(out["annotations_added"], 1);
    let requests = seen.lock().expect("lock").clone();
    assert_eq!(requests.len(), 3, "k = 3 votes");
    for (path, body) in &requests {
        assert_eq!(path, "/v1/chat/completions");
        assert_eq!(body["model"], "tiny-judge");
        let system = body["messages"][0]["content"].as_str().unwrap_or("");
        assert!(system.contains("\\boxed{1}") && system.contains("\\boxed{-1}"));
        let user = body["messages"][1]["content"].as_str().unwrap_or("");
        assert!(user.contains("Next state (role: user)"), "{user}");
    }
    let annotations =
        ws.sql("SELECT source, session_id, attributes FROM events WHERE kind = 'annotation'");
    assert_eq!(annotations.len(), 1);
    assert_eq!(annotations[0]["source"], "trajectory_judge");
    let attributes: Value =
        serde_json::from_str(annotations[0]["attributes"].as_str().expect("attributes"))
            .expect("json");
    assert_eq!(attributes["type"], "judge");
    assert_eq!(attributes["judge_model"], "tiny-judge");
    assert_eq!(attributes["prompt_version"], "judge-prompt-v1");
    assert_eq!(attributes["votes"], serde_json::json!([1, 1, -1]));
    assert_eq!(attributes["score"], 1);

    // Again: already judged, no request, nothing appended.
    let again: Value = serde_json::from_str(&ws.ok([
        "judge",
        "--endpoint",
        &url,
        "--model",
        "tiny-judge",
        "--votes",
        "3",
        "--json",
    ]))
    .expect("json");
    assert_eq!(again["annotations_added"], 0);
    assert_eq!(again["turns_already_judged"], 1);
    assert_eq!(seen.lock().expect("lock").len(), 3);

    // The vote feeds a judge process reward on the judged turn.
    ws.ok(["derive"]);
    let judge = ws.sql("SELECT r.value, r.turn_id FROM rewards r WHERE r.signal = 'judge'");
    assert_eq!(judge.len(), 1);
    assert_eq!(judge[0]["value"], 1.0);
    assert_eq!(judge[0]["turn_id"], attributes["turn_id"]);
}

#[test]
fn judge_reports_an_unreachable_endpoint() {
    let ws = Workspace::new();
    ws.ingest(&[&public(FALLBACK_EXCERPT)]);
    // A port nothing listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let out = ws.run([
        "judge",
        "--endpoint",
        &format!("http://127.0.0.1:{port}/v1"),
        "--model",
        "m",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("judge"));
    assert_eq!(
        ws.count("SELECT count(*) FROM events WHERE kind = 'annotation'"),
        0
    );
}

/// The rows of the three derived tables, sorted by their ids, as JSON text.
/// `events_version` is left out: it says which version of the log a row's
/// session was last derived from, older for the sessions an incremental
/// build did not touch.
fn derived_rows(ws: &Workspace) -> Vec<String> {
    [
        ("turns", "turn_id"),
        ("trajectories", "trajectory_id"),
        // Ties (one reward id in two rows) would compare in any order:
        // turns-v1 gave a call shared by two copies of a turn one id twice.
        ("rewards", "reward_id, turn_id, trajectory_id"),
    ]
    .iter()
    .map(|(table, id)| {
        ws.ok([
            "sql",
            "--format",
            "json",
            &format!("SELECT * EXCLUDE (events_version) FROM {table} ORDER BY {id}"),
        ])
    })
    .collect()
}

/// The dedupe tables' rows, sorted (JSON).
fn dedupe_rows(ws: &Workspace) -> Vec<String> {
    ["dedupe_signatures", "dedupe_clusters"]
        .iter()
        .map(|table| {
            ws.ok([
                "sql",
                "--format",
                "json",
                &format!("SELECT * FROM {table} ORDER BY trajectory_id"),
            ])
        })
        .collect()
}

#[test]
fn derive_after_new_events_rebuilds_only_touched_sessions_and_equals_a_full_build() {
    let ws = Workspace::new();
    let sessions_dir = examples().join("real-run/openclaw-2026.5.28/agents/main/sessions");
    let mut transcripts: Vec<std::path::PathBuf> = std::fs::read_dir(&sessions_dir)
        .expect("real-run sessions")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    transcripts.sort();
    assert!(transcripts.len() >= 4, "{transcripts:?}");
    let live = ws.path("live/agents/main/sessions");
    std::fs::create_dir_all(&live).expect("live dir");
    let copy = |from: &std::path::Path, lines: Option<usize>| {
        let text = std::fs::read_to_string(from).expect("read transcript");
        let kept: String = match lines {
            Some(n) => text.lines().take(n).map(|l| format!("{l}\n")).collect(),
            None => text,
        };
        std::fs::write(live.join(from.file_name().expect("name")), kept).expect("write");
    };
    // Day 1: all but the last transcript, and the first one cut in half.
    let (grown, held_back) = (&transcripts[0], transcripts.last().expect("one"));
    let grown_lines = std::fs::read_to_string(grown)
        .expect("read")
        .lines()
        .count();
    assert!(grown_lines >= 4);
    for t in &transcripts[..transcripts.len() - 1] {
        copy(t, (t == grown).then_some(grown_lines / 2));
    }
    ws.ingest(&[&ws.path("live")]);
    let first: Value = serde_json::from_str(&ws.ok(["derive", "--json"])).expect("json");
    assert_eq!(first["scope"], "full");
    let all_sessions = first["sessions"].as_i64().expect("sessions");
    let deduped: Value = serde_json::from_str(&ws.ok(["dedupe", "--json"])).expect("json");
    assert_eq!(deduped["signatures"]["scope"], "full", "{deduped}");
    let again: Value = serde_json::from_str(&ws.ok(["dedupe", "--json"])).expect("json");
    assert_eq!(again["signatures"]["up_to_date"], true, "{again}");
    assert_eq!(again["signatures"]["computed"], 0, "{again}");

    // Maintenance between the builds commits to the derived tables without
    // a lineage (a rebuild leaves old segments, vacuum deletes them); the
    // next build still finds what they were built from.
    ws.ok(["derive", "--full"]);
    let vacuumed = ws.ok(["vacuum", "--retention-hours", "0"]);
    assert!(vacuumed.contains("turns: deleted"), "{vacuumed}");

    // Day 2: the grown session gets its other half, a new session arrives.
    copy(grown, None);
    copy(held_back, None);
    ws.ingest(&[&ws.path("live")]);
    let second: Value = serde_json::from_str(&ws.ok(["derive", "--json"])).expect("json");
    assert!(
        second["scope"]["incremental"]["since_version"].is_u64(),
        "{second}"
    );
    assert_eq!(
        second["sessions"], 2,
        "the grown and the new session: {second}"
    );
    let turns = second["tables"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "turns"))
        .cloned()
        .expect("turns summary");
    assert!(turns["rows_replaced"].as_i64().unwrap_or(0) > 0, "{turns}");
    // Dedupe hashes the trajectories of the two touched sessions only.
    let day2: Value = serde_json::from_str(&ws.ok(["dedupe", "--json"])).expect("json");
    assert!(
        day2["signatures"]["scope"]["incremental"]["since_version"].is_u64(),
        "{day2}"
    );
    let computed = day2["signatures"]["computed"].as_i64().expect("computed");
    // The rows the incremental derive rebuilt carry its events version.
    let in_touched = ws.count(&format!(
        "SELECT count(*) FROM trajectories WHERE events_version = {}",
        second["events_version"]
    ));
    assert!(
        computed >= 1 && computed < day2["trajectories"].as_i64().unwrap_or(0),
        "{day2}"
    );
    assert_eq!(computed, in_touched, "{day2}");
    let mut incremental = derived_rows(&ws);
    incremental.extend(dedupe_rows(&ws));
    assert_eq!(
        ws.count("SELECT max(events_version) FROM turns"),
        second["events_version"].as_i64().expect("version")
    );

    // A full build of the same version gives the same rows.
    let full: Value = serde_json::from_str(&ws.ok(["derive", "--full", "--json"])).expect("json");
    assert_eq!(full["scope"], "full");
    assert_eq!(full["sessions"].as_i64(), Some(all_sessions + 1));
    let full_dedupe: Value =
        serde_json::from_str(&ws.ok(["dedupe", "--full", "--json"])).expect("json");
    assert_eq!(full_dedupe["signatures"]["scope"], "full");
    assert_eq!(full_dedupe["trajectories"], day2["trajectories"]);
    let mut rebuilt = derived_rows(&ws);
    rebuilt.extend(dedupe_rows(&ws));
    assert_eq!(incremental.len(), 5);
    for (k, (a, b)) in incremental.iter().zip(&rebuilt).enumerate() {
        assert!(a == b, "table {k} differs after the incremental build");
    }

    // GRPO compares sessions: always a full build, advantages over every session.
    let grpo: Value =
        serde_json::from_str(&ws.ok(["derive", "--credit", "grpo", "--json"])).expect("json");
    assert_eq!(grpo["scope"], "full");
}

/// The command `trajectory --store <ws> ARGS`, its output captured.
fn command(ws: &Workspace, args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_trajectory"));
    command
        .arg("--store")
        .arg(ws.store())
        .args(args)
        .env_remove("TRAJECTORY_STORE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    command
}

/// Commands at once, as an agent that keeps writing and overlapping nightly
/// jobs produce them: while an ingest commits new sessions, two derives,
/// a dedupe and an export run. Each job reads one version of the log and
/// commits whole; afterwards one incremental derive catches up, and the
/// tables equal a full build of the final log.
#[test]
fn jobs_running_beside_an_ingest_and_each_other_catch_up_to_a_full_build() {
    let ws = Workspace::new();
    ws.ingest(&[&examples().join("real-run")]);
    ws.ok(["derive"]);
    ws.ok(["dedupe"]);
    let before = ws.count("SELECT count(DISTINCT session_id) FROM turns");

    let ingest = command(&ws, &["ingest", "--json"])
        .arg(examples().join("public"))
        .spawn()
        .expect("spawn ingest");
    let other_derive = command(&ws, &["derive", "--full", "--json"])
        .spawn()
        .expect("spawn derive");
    let derived: Value = serde_json::from_str(&ws.ok(["derive", "--json"])).expect("json");
    let out = ws.path("rl-turns");
    let exported = export(&ws, "rl-turns", &out, &[]);
    ws.ok(["dedupe"]);
    for (name, child) in [("ingest", ingest), ("derive --full", other_derive)] {
        let done = child.wait_with_output().expect("wait");
        assert!(
            done.status.success(),
            "{name} failed beside the others: {}",
            String::from_utf8_lossy(&done.stderr)
        );
    }
    // The export is one consistent version: its lineage has a row per row.
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).expect("read"))
            .expect("manifest");
    assert_eq!(
        manifest["lineage"].as_array().map(Vec::len),
        exported["rows"].as_u64().map(|r| r as usize)
    );

    // Catch up: the sessions the ingest brought are derived now.
    let caught_up: Value = serde_json::from_str(&ws.ok(["derive", "--json"])).expect("json");
    let last = ws.count("SELECT max(events_version) FROM turns");
    assert!(
        derived["events_version"].as_i64().unwrap_or(i64::MAX) <= last,
        "{derived} then {caught_up}"
    );
    let after = ws.count("SELECT count(DISTINCT session_id) FROM turns");
    assert!(after > before, "{before} sessions before, {after} after");
    assert_eq!(
        after,
        ws.count(
            "SELECT count(DISTINCT session_id) FROM events \
             WHERE source = 'openclaw_transcript' AND kind = 'user_message'"
        )
    );
    ws.ok(["dedupe"]);
    // Reward ids are unique (turns-v2 stores a turn shared by two branches once).
    assert_eq!(
        ws.count("SELECT count(*) FROM (SELECT reward_id FROM rewards GROUP BY reward_id HAVING count(*) > 1)"),
        0
    );
    let mut caught = derived_rows(&ws);
    caught.extend(dedupe_rows(&ws));
    ws.ok(["derive", "--full"]);
    ws.ok(["dedupe", "--full"]);
    let mut rebuilt = derived_rows(&ws);
    rebuilt.extend(dedupe_rows(&ws));
    for (k, (a, b)) in caught.iter().zip(&rebuilt).enumerate() {
        let (rows_a, rows_b): (Vec<Value>, Vec<Value>) = (
            serde_json::from_str(a).expect("json"),
            serde_json::from_str(b).expect("json"),
        );
        let first = rows_a.iter().zip(&rows_b).find(|(x, y)| x != y);
        assert!(
            a == b,
            "table {k} differs from a full build after the jobs ran at once: {} rows against {}; first: {first:?}",
            rows_a.len(),
            rows_b.len()
        );
    }
}
