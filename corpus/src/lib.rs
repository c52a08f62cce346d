//! A deterministic generator of realistic OpenClaw data, for tests and
//! benchmarks: the same seed and size always give the same bytes.
//!
//! Layout written under the output directory (formats per
//! `shared/docs/openclaw-formats.md`; shapes copied from the real captures
//! in `examples/openclaw`):
//!
//! ```text
//! agents/<agent>/sessions/<session-uuid>.jsonl   transcript v3 (header, model-snapshot
//!                                                customs, user / assistant / toolResult
//!                                                messages with parentId chains)
//! tmp-openclaw/openclaw-YYYY-MM-DD.log           gateway tslog JSONL (plugin lines,
//!                                                model_fallback_decision records)
//! corpus.json                                    what was planted (counts)
//! ```
//!
//! Planted on purpose: tool-call bursts, long tool outputs, base64 images,
//! local (ollama) failures followed by a cloud fallback, branches (an edited
//! user message re-parented onto an earlier entry), API keys in user text
//! and tool results (which redaction must mask), malformed lines (counted,
//! they must be quarantined), and near-duplicate sessions (a session
//! re-written with a few words changed).

use std::fmt::Write as _;
use std::fs;
use std::io::Write;
use std::path::Path;

use serde::Serialize;
use serde_json::{json, Value};

/// What a generated corpus holds (also written as `corpus.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CorpusStats {
    pub seed: u64,
    pub bytes: u64,
    pub agents: usize,
    pub sessions: usize,
    pub transcript_lines: u64,
    pub user_messages: u64,
    pub assistant_messages: u64,
    pub tool_calls: u64,
    pub failed_local_calls: u64,
    pub cloud_fallbacks: u64,
    pub images: u64,
    pub branches: u64,
    pub planted_secrets: u64,
    pub malformed_lines: u64,
    /// Sessions re-written from the previous one with a few words changed
    /// (message counts above cover original sessions only).
    pub near_duplicate_sessions: u64,
    pub gateway_log_lines: u64,
    pub fallback_decisions: u64,
}

/// The secrets planted (one per kind; the generator cycles through them).
/// Each matches a rule of the redaction policy `trajectory-redact-v1`.
pub const PLANTED_SECRETS: [&str; 4] = [
    "sk-proj-Zx81kLmN0pQrStUvWxYz0123456789abcdEFGHijkl",
    "AKIAZ7QWERTYUIOP1234",
    "ghp_9aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
    "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx",
];

/// A splitmix64 stream: small, fast and the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn hex(&mut self, chars: usize) -> String {
        let mut s = String::with_capacity(chars);
        while s.len() < chars {
            let _ = write!(s, "{:016x}", self.next());
        }
        s.truncate(chars);
        s
    }
    fn uuid(&mut self) -> String {
        let h = self.hex(32);
        format!(
            "{}-{}-4{}-a{}-{}",
            &h[..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..32]
        )
    }
}

const WORDS: &[&str] = &[
    "the", "build", "fails", "on", "main", "please", "check", "logs", "deploy", "service",
    "config", "file", "update", "readme", "tests", "pass", "error", "retry", "cache", "index",
    "query", "user", "report", "weekly", "summary", "calendar", "meeting", "notes", "todo",
    "email", "draft", "reply", "budget", "invoice", "server", "disk", "memory", "cpu", "latency",
    "network", "backup", "restore", "python", "rust", "script", "function", "module", "package",
    "version", "release", "branch", "merge", "review", "comment", "issue", "ticket", "customer",
    "order", "shipping", "weather", "travel", "flight", "hotel", "recipe", "dinner", "grocery",
    "list", "photo", "album", "music",
];

const TOOLS: &[&str] = &[
    "exec",
    "read",
    "write",
    "edit",
    "web_search",
    "browser",
    "process",
];

fn sentence(rng: &mut Rng, words: usize) -> String {
    let mut out = String::new();
    for i in 0..words {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
    }
    out
}

/// A fake but well-formed base64 PNG payload of about `bytes` bytes.
fn base64_image(rng: &mut Rng, bytes: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::from("iVBORw0KGgo");
    while out.len() < bytes {
        let v = rng.next();
        for shift in (0..60).step_by(6) {
            out.push(ALPHABET[((v >> shift) & 63) as usize] as char);
        }
    }
    out.truncate(bytes - bytes % 4);
    out
}

struct SessionWriter<'a> {
    rng: &'a mut Rng,
    stats: &'a mut CorpusStats,
    lines: Vec<String>,
    parent: Option<String>,
    /// Entries a later branch may re-parent onto.
    user_entries: Vec<Option<String>>,
    clock_ms: i64,
}

impl SessionWriter<'_> {
    fn iso(&self) -> String {
        chrono::DateTime::from_timestamp_millis(self.clock_ms)
            .unwrap_or_default()
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string()
    }

    fn tick(&mut self, max_ms: u64) {
        self.clock_ms += 50 + self.rng.below(max_ms) as i64;
    }

    fn entry(&mut self, mut value: Value) -> String {
        let id = self.rng.hex(8);
        value["id"] = json!(id);
        value["parentId"] = json!(self.parent);
        value["timestamp"] = json!(self.iso());
        self.lines.push(value.to_string());
        self.stats.transcript_lines += 1;
        self.parent = Some(id.clone());
        id
    }

    fn user(&mut self, text: String) {
        self.tick(120_000);
        let ts = self.clock_ms;
        let previous = self.parent.clone();
        self.entry(json!({"type": "message", "message": {
            "role": "user", "content": [{"type": "text", "text": text}], "timestamp": ts}}));
        self.user_entries.push(previous);
        self.stats.user_messages += 1;
    }

    fn assistant(
        &mut self,
        provider: &str,
        model: &str,
        content: Vec<Value>,
        stop: &str,
        error: Option<&str>,
    ) {
        self.tick(20_000);
        let input = 500 + self.rng.below(20_000);
        let output = if error.is_some() {
            0
        } else {
            20 + self.rng.below(800)
        };
        let cloud = provider != "ollama";
        let cost_in = if cloud { input as f64 * 3e-6 } else { 0.0 };
        let cost_out = if cloud { output as f64 * 15e-6 } else { 0.0 };
        let api = if cloud {
            "anthropic-messages"
        } else {
            "ollama"
        };
        let mut message = json!({
            "role": "assistant", "content": content, "api": api, "provider": provider,
            "model": model, "stopReason": stop, "timestamp": self.clock_ms,
            "usage": {"input": input, "output": output, "cacheRead": 0, "cacheWrite": 0,
                      "totalTokens": input + output,
                      "cost": {"input": cost_in, "output": cost_out, "cacheRead": 0, "cacheWrite": 0,
                               "total": cost_in + cost_out}}});
        if let Some(error) = error {
            message["errorMessage"] = json!(error);
        }
        self.entry(json!({"type": "message", "message": message}));
        self.stats.assistant_messages += 1;
    }

    fn tool_result(&mut self, call_id: &str, tool: &str, text: String, failed: bool) {
        self.tick(5_000);
        let ts = self.clock_ms;
        let details = if failed {
            json!({"status": "error", "tool": tool, "exitCode": 1})
        } else {
            json!({"status": "completed", "exitCode": 0})
        };
        self.entry(json!({"type": "message", "message": {
            "role": "toolResult", "toolCallId": call_id, "toolName": tool,
            "content": [{"type": "text", "text": text}], "details": details,
            "isError": false, "timestamp": ts}}));
    }

    fn model_snapshot(&mut self, provider: &str, model: &str) {
        let ts = self.clock_ms;
        self.entry(json!({"type": "custom", "customType": "model-snapshot",
            "data": {"timestamp": ts, "provider": provider, "modelApi": provider, "modelId": model}}));
    }
}

/// One session's lines (JSONL) and the fallback decisions it implies.
fn session_lines(
    rng: &mut Rng,
    stats: &mut CorpusStats,
    session_id: &str,
    start_ms: i64,
    decisions: &mut Vec<(i64, String)>,
) -> Vec<String> {
    let mut w = SessionWriter {
        rng,
        stats,
        lines: Vec::new(),
        parent: None,
        user_entries: Vec::new(),
        clock_ms: start_ms,
    };
    let header = json!({"type": "session", "version": 3, "id": session_id,
        "timestamp": w.iso(), "cwd": "/home/agent/workspace"});
    w.lines.push(header.to_string());
    w.stats.transcript_lines += 1;
    let local = ("ollama", "qwen3:8b");
    let cloud = ("anthropic", "claude-sonnet-4-5");
    w.model_snapshot(local.0, local.1);
    let turns = 2 + w.rng.below(7);
    for turn in 0..turns {
        let n = 8 + w.rng.below(40) as usize;
        let mut text = format!("[{}] {}", turn, sentence(w.rng, n));
        if w.rng.chance(6) {
            let secret = PLANTED_SECRETS[(w.stats.planted_secrets % 4) as usize];
            let _ = write!(text, " use this key {secret} for the api");
            w.stats.planted_secrets += 1;
        }
        // A branch: the user edits an earlier message (re-parented entry).
        if turn > 1 && w.rng.chance(10) {
            let at = w.rng.below(w.user_entries.len() as u64) as usize;
            w.parent = w.user_entries[at].clone();
            w.stats.branches += 1;
        }
        w.user(text);
        let (mut provider, mut model) = local;
        if w.rng.chance(15) {
            // The local model fails, then the run falls back to the cloud.
            let failures = 1 + w.rng.below(3);
            for attempt in 0..failures {
                w.assistant(local.0, local.1, vec![], "error", Some("fetch failed"));
                w.stats.failed_local_calls += 1;
                decisions.push((
                    w.clock_ms,
                    fallback_decision(session_id, attempt + 1, failures + 1, local, cloud, w.iso()),
                ));
                w.stats.fallback_decisions += 1;
            }
            w.model_snapshot(cloud.0, cloud.1);
            (provider, model) = cloud;
            w.stats.cloud_fallbacks += 1;
        }
        let burst = if w.rng.chance(30) {
            1 + w.rng.below(6)
        } else {
            0
        };
        for _ in 0..burst {
            let tool = TOOLS[w.rng.below(TOOLS.len() as u64) as usize];
            let call_id = format!("call_{}", w.rng.hex(24));
            let args =
                json!({"command": sentence(w.rng, 4), "path": format!("/tmp/{}", w.rng.hex(6))});
            let content = vec![
                json!({"type": "text", "text": sentence(w.rng, 6)}),
                json!({"type": "toolCall", "id": call_id, "name": tool, "arguments": args}),
            ];
            w.assistant(provider, model, content, "toolUse", None);
            w.stats.tool_calls += 1;
            let failed = w.rng.chance(12);
            let mut output = if w.rng.chance(10) {
                // A long tool output (build logs, file dumps).
                (0..200 + w.rng.below(800))
                    .map(|_| sentence(w.rng, 12))
                    .collect::<Vec<_>>()
                    .join("\n")
            } else {
                let n = 10 + w.rng.below(60) as usize;
                sentence(w.rng, n)
            };
            if w.rng.chance(3) {
                let secret = PLANTED_SECRETS[(w.stats.planted_secrets % 4) as usize];
                let _ = write!(output, "\nexport TOKEN={secret}");
                w.stats.planted_secrets += 1;
            }
            if failed {
                output = format!("Error: command failed with exit code 1\n{output}");
            }
            if tool == "browser" && w.rng.chance(40) {
                let n = 2_000 + w.rng.below(30_000) as usize;
                let data = base64_image(w.rng, n);
                w.tick(5_000);
                let ts = w.clock_ms;
                w.entry(json!({"type": "message", "message": {
                    "role": "toolResult", "toolCallId": call_id, "toolName": tool,
                    "content": [{"type": "text", "text": output},
                                {"type": "image", "data": data, "mimeType": "image/png"}],
                    "details": {"status": "completed"}, "isError": false, "timestamp": ts}}));
                w.stats.images += 1;
            } else {
                w.tool_result(&call_id, tool, output, failed);
            }
        }
        let n = 20 + w.rng.below(150) as usize;
        let answer = vec![json!({"type": "text", "text": sentence(w.rng, n)})];
        w.assistant(provider, model, answer, "stop", None);
    }
    if w.rng.chance(4) {
        // A line cut short by a crash, then one that is not JSON at all.
        let cut = w.lines.last().cloned().unwrap_or_default();
        w.lines.push(cut[..cut.len() / 2].to_string());
        w.lines
            .push("<<<binary garbage \u{1} not json>>>".to_string());
        w.stats.malformed_lines += 2;
    }
    w.lines
}

fn fallback_decision(
    session_id: &str,
    attempt: u64,
    total: u64,
    from: (&str, &str),
    to: (&str, &str),
    iso: String,
) -> String {
    json!({
        "0": "{\"subsystem\":\"model-fallback/decision\"}",
        "1": {"event": "model_fallback_decision", "runId": format!("run-{session_id}-{attempt}"),
              "sessionId": session_id, "decision": "candidate_failed",
              "requestedProvider": from.0, "requestedModel": from.1,
              "candidateProvider": from.0, "candidateModel": from.1, "attempt": attempt,
              "total": total, "reason": "server_error", "status": 500,
              "errorPreview": "500 {\"error\": \"llama runner process has terminated\"}",
              "nextCandidateProvider": to.0, "nextCandidateModel": to.1},
        "2": "model fallback decision",
        "_meta": {"runtime": "node", "name": "{\"subsystem\":\"model-fallback/decision\"}",
                  "parentNames": ["openclaw"], "date": iso, "logLevelId": 4, "logLevelName": "WARN"},
        "time": iso.replace('Z', "+00:00"),
        "message": "model fallback decision",
        "session_id": session_id
    })
    .to_string()
}

/// Writes a corpus of about `target_bytes` under `out_dir` from `seed`.
///
/// Errors: I/O errors creating or writing files.
pub fn generate(out_dir: &Path, seed: u64, target_bytes: u64) -> anyhow::Result<CorpusStats> {
    let mut rng = Rng(seed ^ 0x7472_616A_6563_746F);
    let mut stats = CorpusStats {
        seed,
        ..Default::default()
    };
    let agents = ["main", "work", "home", "ops"];
    stats.agents = agents.len();
    // 2026-03-01T00:00:00Z.
    let mut clock: i64 = 1_772_323_200_000;
    let mut decisions: Vec<(i64, String)> = Vec::new();
    let mut previous: Option<(String, Vec<String>)> = None;
    while stats.bytes < target_bytes {
        let agent = agents[rng.below(agents.len() as u64) as usize];
        let session_id = rng.uuid();
        clock += 60_000 + rng.below(3_600_000) as i64;
        let lines = match previous.take() {
            // A near-duplicate: the previous session with a few words changed.
            Some((_, lines)) if rng.chance(5) => {
                stats.near_duplicate_sessions += 1;
                // Only well-formed lines are copied, so malformed lines stay
                // counted once; secrets in the copy are counted again.
                let mut copy: Vec<String> = lines
                    .iter()
                    .filter(|l| serde_json::from_str::<Value>(l).is_ok())
                    .map(|l| {
                        l.replacen("please", "kindly", 1)
                            .replacen("check", "inspect", 1)
                    })
                    .collect();
                stats.planted_secrets += copy
                    .iter()
                    .map(|l| {
                        PLANTED_SECRETS
                            .iter()
                            .map(|k| l.matches(k).count() as u64)
                            .sum::<u64>()
                    })
                    .sum::<u64>();
                stats.images += copy
                    .iter()
                    .map(|l| l.matches("\"type\":\"image\"").count() as u64)
                    .sum::<u64>();
                if let Some(first) = copy.first_mut() {
                    if let Ok(mut header) = serde_json::from_str::<Value>(first) {
                        header["id"] = json!(session_id);
                        *first = header.to_string();
                    }
                }
                stats.transcript_lines += copy.len() as u64;
                copy
            }
            _ => session_lines(&mut rng, &mut stats, &session_id, clock, &mut decisions),
        };
        let dir = out_dir.join("agents").join(agent).join("sessions");
        fs::create_dir_all(&dir)?;
        let mut text = lines.join("\n");
        text.push('\n');
        fs::write(dir.join(format!("{session_id}.jsonl")), &text)?;
        stats.bytes += text.len() as u64;
        stats.sessions += 1;
        previous = Some((session_id, lines));
    }
    // Gateway logs: one file per day, plugin noise plus the fallback decisions.
    let logs = out_dir.join("tmp-openclaw");
    fs::create_dir_all(&logs)?;
    decisions.sort_by_key(|(t, _)| *t);
    let mut files: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (ms, line) in decisions {
        let day = chrono::DateTime::from_timestamp_millis(ms)
            .unwrap_or_default()
            .format("%Y-%m-%d")
            .to_string();
        let noise = json!({"0": "{\"subsystem\":\"plugins\"}", "1": "[plugins] loading browser",
            "_meta": {"runtime": "node", "name": "{\"subsystem\":\"plugins\"}", "logLevelId": 2,
                      "logLevelName": "DEBUG", "date": format!("{day}T00:00:00.000Z")},
            "time": format!("{day}T00:00:00.000+00:00"), "message": "[plugins] loading browser"});
        let file = files.entry(day).or_default();
        file.push(noise.to_string());
        file.push(line);
    }
    for (day, lines) in files {
        let mut f = fs::File::create(logs.join(format!("openclaw-{day}.log")))?;
        for line in &lines {
            writeln!(f, "{line}")?;
            stats.bytes += line.len() as u64 + 1;
        }
        stats.gateway_log_lines += lines.len() as u64;
    }
    fs::write(
        out_dir.join("corpus.json"),
        serde_json::to_string_pretty(&stats)?,
    )?;
    Ok(stats)
}

/// Parses sizes like `10MB`, `1.5GB`, `500KB`, `12345` (bytes; 1 MB = 10^6 bytes).
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim().to_ascii_uppercase();
    let (number, unit) = t
        .find(|c: char| c.is_ascii_alphabetic())
        .map_or((t.as_str(), ""), |i| (&t[..i], &t[i..]));
    let value: f64 = number.trim().parse().ok()?;
    let factor = match unit.trim() {
        "" | "B" => 1.0,
        "KB" | "K" => 1e3,
        "MB" | "M" => 1e6,
        "GB" | "G" => 1e9,
        _ => return None,
    };
    Some((value * factor) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let (a, b, c) = (tempdir("a"), tempdir("b"), tempdir("c"));
        let sa = generate(&a, 7, 300_000).unwrap();
        let sb = generate(&b, 7, 300_000).unwrap();
        let sc = generate(&c, 8, 300_000).unwrap();
        assert_eq!(sa, sb);
        assert_eq!(listing(&a), listing(&b));
        assert_ne!(listing(&a), listing(&c));
        assert_ne!(sa, sc);
        assert!(sa.bytes >= 300_000 && sa.sessions > 5);
        for d in [a, b, c] {
            let _ = fs::remove_dir_all(d);
        }
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("10MB"), Some(10_000_000));
        assert_eq!(parse_size("1.5gb"), Some(1_500_000_000));
        assert_eq!(parse_size("42"), Some(42));
        assert_eq!(parse_size("ten"), None);
    }

    fn tempdir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("corpus-test-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn listing(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push((
                        p.strip_prefix(dir).unwrap().display().to_string(),
                        fs::read(&p).unwrap(),
                    ));
                }
            }
        }
        out.sort();
        out
    }
}
