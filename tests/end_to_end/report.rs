//! `trajectory report compliance`: numbers per provider and model, and an
//! HTML report that hostile transcript text cannot script.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::harness::{examples, public, Workspace};

/// A transcript where a cloud model reads a file whose content is hostile HTML.
fn hostile_transcript(path: &Path) {
    let lines = [
        r#"{"type":"session","version":3,"id":"hostile-1","timestamp":"2026-06-01T09:00:00.000Z","cwd":"/w"}"#,
        r#"{"type":"message","id":"u1","parentId":null,"timestamp":"2026-06-01T09:00:01.000Z","message":{"role":"user","content":"summarise notes.html <b>please</b>","timestamp":1780304401000}}"#,
        r#"{"type":"message","id":"a1","parentId":"u1","timestamp":"2026-06-01T09:00:02.000Z","message":{"role":"assistant","content":[{"type":"toolCall","id":"c1","name":"read","arguments":{"path":"notes.html"}}],"provider":"anthropic","model":"claude-sonnet-4-5","api":"anthropic-messages","usage":{"input":100,"output":10,"cost":{"total":0.01}},"stopReason":"toolUse","timestamp":1780304401500}}"#,
        r#"{"type":"message","id":"r1","parentId":"a1","timestamp":"2026-06-01T09:00:03.000Z","message":{"role":"toolResult","toolCallId":"c1","toolName":"read","content":[{"type":"text","text":"<script>document.body.setAttribute('data-owned','yes')</script><img src=x onerror=\"document.body.setAttribute('data-img','yes')\">"}],"isError":false,"timestamp":1780304403000}}"#,
        r#"{"type":"message","id":"a2","parentId":"r1","timestamp":"2026-06-01T09:00:04.000Z","message":{"role":"assistant","content":[{"type":"text","text":"It is a script."}],"provider":"anthropic","model":"claude-sonnet-4-5","api":"anthropic-messages","usage":{"input":200,"output":5,"cost":{"total":0.02}},"stopReason":"stop","timestamp":1780304403500}}"#,
    ];
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

fn chromium() -> String {
    for candidate in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new(candidate)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return candidate.to_string();
        }
    }
    panic!("headless Chromium is needed for this test: apt-get install chromium (.ci/run does)");
}

#[test]
fn html_report_does_not_run_scripts_from_transcripts() {
    let ws = Workspace::new();
    let transcript = ws.path("hostile.jsonl");
    hostile_transcript(&transcript);
    ws.ingest(&[&transcript]);
    let report = ws.path("report.html");
    ws.ok(["report", "compliance", "--out", report.to_str().unwrap()]);

    let profile = ws.path("chromium-profile");
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=2000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", report.display()))
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("<table id=\"exposure\""),
        "chromium rendered no report: {dom}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The tool output is shown as text ...
    assert!(
        dom.contains("&lt;script&gt;document.body.setAttribute"),
        "{dom}"
    );
    // ... and never became an element or ran.
    let lower = dom.to_ascii_lowercase();
    assert!(
        !lower.contains("<script"),
        "a script element reached the DOM"
    );
    assert!(!lower.contains("<img"), "an img element reached the DOM");
    assert!(!lower.contains("data-owned=\"yes\""), "the script ran");
    assert!(
        !lower.contains("data-img=\"yes\""),
        "the onerror handler ran"
    );
    assert!(
        dom.contains("&lt;b&gt;please&lt;/b&gt;"),
        "user text escaped too"
    );
}

#[test]
fn compliance_numbers_per_provider_and_locality() {
    let ws = Workspace::new();
    ws.ingest(&[&public(
        "openclaw-v3-local-ollama-fallback-to-codex.excerpt.jsonl",
    )]);
    let report = ws.path("report.json");
    ws.ok(["report", "compliance", "--out", report.to_str().unwrap()]);
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["llm_calls"], 5);
    assert_eq!(r["failed_llm_calls"], 4);
    let models = r["models"].as_array().unwrap();
    let ollama = models.iter().find(|m| m["provider"] == "ollama").unwrap();
    assert_eq!(
        (ollama["calls"].as_i64(), ollama["failed_calls"].as_i64()),
        (Some(4), Some(4))
    );
    assert_eq!(ollama["locality"], "local");
    let codex = models
        .iter()
        .find(|m| m["provider"] == "openai-codex")
        .unwrap();
    assert_eq!(codex["input_tokens"], 12310);
    assert_eq!(codex["output_tokens"], 191);
    assert!((codex["cost_usd"].as_f64().unwrap() - 0.0244853).abs() < 1e-9);
    let shares: Vec<(&str, f64)> = r["locality"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["locality"].as_str().unwrap(),
                l["call_share"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(shares, vec![("cloud", 0.2), ("local", 0.8)]);
    let exposed = r["exposed_sessions"].as_array().unwrap();
    assert_eq!(exposed.len(), 1);
    assert_eq!(
        exposed[0]["session_id"],
        "8555a0a4-0b79-459d-939c-e17cdbbf4fe2"
    );

    let md = ws.path("report.md");
    ws.ok(["report", "compliance", "--out", md.to_str().unwrap()]);
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(
        text.contains("| ollama | qwen3.5:9b | local | 4 | 4 |"),
        "{text}"
    );
}

/// The report's excerpts per exposed session come from two aggregate queries
/// over all sessions (issue 26); they must equal what one query per session
/// gives: the first user message, and the first five tool outputs before the
/// session's last cloud call, each cut to 240 characters and an ellipsis.
#[test]
fn exposed_session_excerpts_equal_per_session_queries() {
    let ws = Workspace::new();
    ws.ingest(&[&examples()]);
    let report = ws.path("report.json");
    ws.ok(["report", "compliance", "--out", report.to_str().unwrap()]);
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let exposed = r["exposed_sessions"].as_array().unwrap();
    assert!(
        exposed.len() >= 2,
        "the examples reach a cloud provider in several sessions"
    );
    let excerpt = |text: &str| {
        let mut out: String = text.chars().take(240).collect();
        if text.chars().count() > 240 {
            out.push('…');
        }
        out
    };
    let mut with_outputs = 0;
    let mut cut = 0;
    for session in exposed {
        let id = session["session_id"].as_str().unwrap().replace('\'', "''");
        let first = ws.sql(&format!(
            "SELECT text FROM messages WHERE session_id = '{id}' AND kind = 'user_message' \
             ORDER BY seq, event_id LIMIT 1"
        ));
        let expected_first = first
            .first()
            .map(|row| Value::String(excerpt(row["text"].as_str().unwrap_or(""))))
            .unwrap_or(Value::Null);
        assert_eq!(session["first_user_message"], expected_first, "{id}");
        let outputs = ws.sql(&format!(
            "SELECT coalesce(tool_name, '') AS tool_name, coalesce(text, '') AS text \
             FROM messages WHERE session_id = '{id}' AND kind = 'tool_result' AND seq < \
               (SELECT coalesce(max(seq), 0) FROM cloud_exposure \
                WHERE session_id = '{id}' AND evidence = 'transcript') \
             ORDER BY seq, event_id LIMIT 5"
        ));
        let expected: Vec<Value> = outputs
            .iter()
            .map(|row| {
                serde_json::json!({
                    "tool_name": row["tool_name"],
                    "excerpt": excerpt(row["text"].as_str().unwrap()),
                })
            })
            .collect();
        assert_eq!(
            session["tool_outputs_sent"].as_array().unwrap(),
            &expected,
            "{id}"
        );
        with_outputs += usize::from(!expected.is_empty());
        cut += expected
            .iter()
            .filter(|o| o["excerpt"].as_str().unwrap().ends_with('…'))
            .count();
    }
    assert!(with_outputs > 0, "some exposed session sent tool outputs");
    assert!(cut > 0, "some tool output is longer than its excerpt");
}
