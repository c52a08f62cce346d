//! Secrets planted in tool arguments, tool results, user text and log lines
//! never reach a byte of the store.

use std::path::Path;

use crate::harness::Workspace;

/// Fake but well-formed secrets of every kind the policy covers.
const SECRETS: &[&str] = &[
    "sk-proj-Zq3xT8vLm2Nc7Rk4Wp9Yd1Hf6Ja5Sb0Ue8Gi2Ko4Lq7Mr3",
    "sk-ant-api03-Hx7Kq2Lm9Np4Rs8Tv1Wx6Yz3Ab5Cd0Ef2Gh7Ij9Kl4Mn1Op6Qr8St3Uv5Wx0Yz2-AbCdEfAA",
    "AIzaSyD3x9Kq7Lm2Np8Rs4Tv6Wx1Yz5Ab0Cd3Ef",
    "AKIAQX7LM2NP8RS4TV6W",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq8Lm2Np4R",
    "ghp_Qx7Lm2Np8Rs4Tv6Wx1Yz5Ab0Cd3Ef9Gh2Ij",
    "xoxb-2468013579-1357924680-Qx7Lm2Np8Rs4Tv6Wx1Yz5Ab0",
    "sk_live_51Hx7Kq2Lm9Np4Rs8Tv1Wx6Yz",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7Vx9Lm2Np8Rs4Tv6W",
    "Tr0ub4dor-H0rse-B4ttery",
    "hunter2-correct-horse",
];

fn transcript(path: &Path) {
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\\n{}\\n-----END PRIVATE KEY-----",
        SECRETS[9]
    );
    let lines = [
        r#"{"type":"session","version":3,"id":"secrets-1","timestamp":"2026-06-01T09:00:00.000Z","cwd":"/w"}"#.to_string(),
        format!(
            r#"{{"type":"message","id":"u1","parentId":null,"timestamp":"2026-06-01T09:00:01.000Z","message":{{"role":"user","content":"my key is {} and the aws one {}","timestamp":1780304401000}}}}"#,
            SECRETS[0], SECRETS[3]
        ),
        format!(
            r#"{{"type":"message","id":"a1","parentId":"u1","timestamp":"2026-06-01T09:00:02.000Z","message":{{"role":"assistant","content":[{{"type":"toolCall","id":"c1","name":"exec","arguments":{{"command":"curl -H 'Authorization: Bearer {}' https://admin:{}@db.example.com/ && export GITHUB_TOKEN={}","env":{{"ANTHROPIC_API_KEY":"{}","STRIPE":"{}"}}}}}}],"provider":"anthropic","model":"claude","api":"anthropic-messages","usage":{{"input":1,"output":1}},"stopReason":"toolUse","timestamp":1780304401500}}}}"#,
            SECRETS[8], SECRETS[11], SECRETS[5], SECRETS[1], SECRETS[7]
        ),
        format!(
            r#"{{"type":"message","id":"r1","parentId":"a1","timestamp":"2026-06-01T09:00:03.000Z","message":{{"role":"toolResult","toolCallId":"c1","toolName":"exec","content":[{{"type":"text","text":"GOOGLE_API_KEY={}\naws_secret_access_key = {}\nSLACK={}\nDB_PASSWORD={}\n{}"}}],"isError":false,"timestamp":1780304403000}}}}"#,
            SECRETS[2], SECRETS[4], SECRETS[6], SECRETS[10], pem
        ),
    ];
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

fn gateway_log(path: &Path) {
    let lines = [
        format!(
            r#"{{"0":"{{\"subsystem\":\"agents/auth-profiles\"}}","1":"using key {} for google, token {}","_meta":{{"runtime":"node","name":"{{\"subsystem\":\"agents/auth-profiles\"}}","parentNames":["openclaw"],"date":"2026-06-01T09:00:04.000Z","logLevelId":3,"logLevelName":"INFO"}},"time":"2026-06-01T09:00:04.000Z"}}"#,
            SECRETS[2], SECRETS[5]
        ),
        format!(
            r#"{{"0":"gateway started with OPENAI_API_KEY={}","_meta":{{"runtime":"node","name":"openclaw","date":"2026-06-01T09:00:05.000Z","logLevelId":5,"logLevelName":"ERROR"}},"time":"2026-06-01T09:00:05.000Z"}}"#,
            SECRETS[0]
        ),
    ];
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

fn all_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            all_files(&entry.path(), out);
        } else {
            out.push(entry.path());
        }
    }
}

#[test]
fn planted_secrets_reach_no_byte_of_the_store() {
    let ws = Workspace::new();
    let input = ws.path("input");
    std::fs::create_dir_all(input.join("agents/main/sessions")).unwrap();
    std::fs::create_dir_all(input.join("tmp-openclaw")).unwrap();
    transcript(&input.join("agents/main/sessions/secrets-1.jsonl"));
    gateway_log(&input.join("tmp-openclaw/openclaw-2026-06-01.log"));
    let summary = ws.ingest(&[&input]);
    assert!(
        summary["events_redacted"].as_u64().unwrap() >= 4,
        "{summary}"
    );
    assert_eq!(
        summary["lines_quarantined"], 0,
        "masks keep JSON lines valid: {summary}"
    );

    // 1. Every byte of every file under the store (segments, Delta log).
    let mut files = Vec::new();
    all_files(&ws.store().join("events"), &mut files);
    assert!(files
        .iter()
        .any(|f| f.extension().is_some_and(|e| e == "parquet")));
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        for secret in SECRETS {
            let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
            assert!(!found, "{secret} found in {}", file.display());
        }
    }
    // 2. Every decoded value of every column (Parquet pages are compressed,
    //    so the raw scan above alone would prove little).
    let everything = ws.ok(["sql", "--format", "csv", "SELECT * FROM events"]);
    assert!(everything.contains("secrets-1"), "the data is there");
    for secret in SECRETS {
        assert!(
            !everything.contains(secret),
            "{secret} survived in a column"
        );
    }
    // Masks name their rule, and equal secrets keep equal masks.
    assert!(everything.contains("[REDACTED:"), "masks are visible");
    let rows =
        ws.sql("SELECT redactions, redaction_policy FROM events WHERE redactions IS NOT NULL");
    assert!(!rows.is_empty());
    assert!(rows[0]["redaction_policy"]
        .as_str()
        .unwrap()
        .starts_with("trajectory-redact-v"));

    // --no-redact exists and warns.
    let plain = Workspace::new();
    let out = plain.run(["ingest", "--no-redact", input.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("warning"),
        "--no-redact warns"
    );
    let raw = plain.ok([
        "sql",
        "--format",
        "csv",
        "SELECT text FROM events WHERE kind = 'user_message'",
    ]);
    assert!(
        raw.contains(SECRETS[0]),
        "nothing is masked with --no-redact"
    );
}

#[test]
fn config_rules_mask_more_and_images_become_references() {
    let ws = Workspace::new();
    let input = ws.path("agents/main/sessions");
    std::fs::create_dir_all(&input).unwrap();
    // 600 bytes of base64 "image" in a user message and a tool result.
    let image = "iVBORw0KGgo".repeat(60);
    let lines = [
        r#"{"type":"session","version":3,"id":"img-1","timestamp":"2026-06-01T09:00:00.000Z"}"#
            .to_string(),
        format!(
            r#"{{"type":"message","id":"u1","parentId":null,"timestamp":"2026-06-01T09:00:01.000Z","message":{{"role":"user","content":[{{"type":"text","text":"badge EMP-123456, see screenshot"}},{{"type":"image","data":"{image}","mimeType":"image/png"}}]}}}}"#
        ),
    ];
    std::fs::write(input.join("img-1.jsonl"), lines.join("\n") + "\n").unwrap();
    let config = ws.path("config.toml");
    std::fs::write(
        &config,
        "[[redaction.rules]]\nname = \"employee_id\"\npattern = \"EMP-[0-9]{6}\"\n",
    )
    .unwrap();
    let out = ws.ok([
        "--config",
        config.to_str().unwrap(),
        "ingest",
        "--json",
        ws.path("agents").to_str().unwrap(),
    ]);
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        summary["images_replaced"].as_u64().unwrap() >= 1,
        "{summary}"
    );
    let everything = ws.ok(["sql", "--format", "csv", "SELECT * FROM events"]);
    assert!(
        !everything.contains("EMP-123456"),
        "the config rule masked the badge"
    );
    assert!(everything.contains("[REDACTED:employee_id:"));
    assert!(
        !everything.contains(&image),
        "no base64 image in any column"
    );
    let policy =
        ws.sql("SELECT DISTINCT redaction_policy FROM events WHERE redaction_policy IS NOT NULL");
    assert!(policy[0]["redaction_policy"]
        .as_str()
        .unwrap()
        .contains("custom"));

    // --keep-images keeps them in raw.
    let kept = Workspace::new();
    kept.ok([
        "ingest",
        "--keep-images",
        ws.path("agents").to_str().unwrap(),
    ]);
    let raw = kept.ok([
        "sql",
        "--format",
        "csv",
        "SELECT raw FROM events WHERE kind = 'user_message'",
    ]);
    assert!(raw.contains(&image));
}
