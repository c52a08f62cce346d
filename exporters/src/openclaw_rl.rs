//! `openclaw-rl`: the JSONL records OpenClaw-RL's proxy writes, so its
//! tooling (and anything built on those files) reads an agent's history
//! directly.
//!
//! Format: Gen-Verse/OpenClaw-RL `openclaw-rl/openclaw_api_server.py`
//! (`_buffer_record`, `_flush_pending_record`, `_append_prm_record`; commit
//! 69305d2) and `openclaw-rl/feedback_store.py` (`FeedbackRecord`, PR #28);
//! field by field in `docs/research/openclaw-rl-records.md`, summarised in
//! `docs/datasets.md`. One record per LLM call (the proxy sees every request
//! of the agent loop as one "main" turn), lines written as Python's
//! `json.dumps(rec, ensure_ascii=False)` writes them (`", "` and `": "`
//! separators, raw UTF-8).
//!
//! ```text
//! DIR/record.jsonl          {"session_id", "turn", "timestamp", "messages", "prompt_text",
//!                            "response_text", "tool_calls", "next_state"}
//! DIR/record_prm.jsonl      {"session_id", "turn", "score", "votes"[, "representative_eval"]}
//! DIR/feedback_store.jsonl  {"session_id", "turn", "prompt_text", "response_text", "label",
//!                            "timestamp", "message_index"}
//! DIR/README.md, DIR/manifest.json
//! ```
//!
//! How our records map onto theirs:
//! - `turn`: 1-based per session, LLM calls in `seq` order (every branch;
//!   a call shared by two branches once). A call that failed before
//!   producing anything is no request the proxy would record: skipped.
//! - `messages`: the request's prompt history, rebuilt from the transcript
//!   by the same mapping as the `turns` table (`trajectory_transforms::turns`).
//! - `prompt_text` / `response_text`: rendered with Qwen's ChatML template
//!   (OpenClaw-RL's default policy is Qwen3), tool calls as `<tool_call>`
//!   blocks and tool results as `<tool_response>` user turns. The proxy
//!   renders with the policy's own tokenizer: re-render from `messages` when
//!   yours differs.
//! - `next_state`: the next request's last message: the last tool result
//!   before the turn's next call, else the next user message; null at the
//!   end of a branch.
//! - `timestamp`: the call's time, UTC (the proxy writes local time).
//! - PRM (calls with a next state): `score` the sign of the call's process
//!   score (`rewards`, `Σ weight·value` clamped, as `derive` computes it)
//!   as 1.0 / -1.0 / 0.0; `votes` the `trajectory judge` votes on the turn
//!   for its last call, else the rule score as one vote; `representative_eval`
//!   the fired signals' evidence, when the score is not 0.
//! - Feedback: `label` -1 when explicit negative feedback fired on the call
//!   (`user_correction`, a negative `reaction_feedback` or
//!   `annotated_feedback`), else +1 (upstream's implicit positive);
//!   `message_index` null.
//!
//! Memory: one session at a time, with its kept turns and its calls'
//! signals (three DataFusion plans sorted by session, read in step); the
//! lineage goes through a file. Records of a session are built call by
//! call, so a long session's histories are never all in memory at once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use arrow::record_batch::RecordBatch;
use chrono::DateTime;
use futures::StreamExt;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use trajectory_query::QueryEngine;
use trajectory_transforms::session_plan::stream_sessions;
use trajectory_transforms::transcript::{Session, SideEvent};
use trajectory_transforms::turns::{self, message_of, positioned_messages};

use crate::columns;
use crate::filters::ExportFilters;
use crate::manifest::{ExportManifest, LineageSpool, ManifestWriter};
use crate::session_cursor::{SessionCursor, SessionKeyed};
use crate::shards::ShardInfo;
use crate::training::require_derived_tables;
use crate::{ExportError, ExportOptions, ExportSummary};

/// The `--target` name.
pub const TARGET: &str = "openclaw-rl";

/// The three record files, as OpenClaw-RL names them by default
/// (`results/<name>_record.jsonl`, `<base>_prm.jsonl`, `feedback_store.jsonl`).
pub const RECORD_FILE: &str = "record.jsonl";
pub const PRM_FILE: &str = "record_prm.jsonl";
pub const FEEDBACK_FILE: &str = "feedback_store.jsonl";

/// Signals that count as explicit negative feedback on a call.
const NEGATIVE_FEEDBACK: [&str; 3] = ["user_correction", "reaction_feedback", "annotated_feedback"];

/// A conversation record, fields in OpenClaw-RL's order.
#[derive(Serialize)]
struct ConversationRecord<'a> {
    session_id: &'a str,
    turn: usize,
    timestamp: &'a str,
    messages: &'a [Value],
    prompt_text: &'a str,
    response_text: &'a str,
    tool_calls: Option<&'a Value>,
    next_state: Option<&'a Value>,
}

/// A PRM record; `representative_eval` only when the score is not 0.
#[derive(Serialize)]
struct PrmRecord<'a> {
    session_id: &'a str,
    turn: usize,
    score: f64,
    votes: &'a [Value],
    #[serde(skip_serializing_if = "Option::is_none")]
    representative_eval: Option<&'a str>,
}

/// A feedback record (PR #28's `FeedbackRecord`).
#[derive(Serialize)]
struct FeedbackRecord<'a> {
    session_id: &'a str,
    turn: usize,
    prompt_text: &'a str,
    response_text: &'a str,
    label: i64,
    timestamp: &'a str,
    message_index: Option<i64>,
}

/// One process signal of an LLM call: (signal, value, weight, evidence).
type Signal = (String, f64, f64, String);

/// Process signals of one LLM call.
type CallSignals = Vec<Signal>;

/// A turn's index, its context-then-events positions, and their messages.
type TurnMessages = (usize, Vec<usize>, Vec<(usize, Value)>);

/// Process signals of the LLM calls, in the order the export reads them.
const SIGNALS_SQL: &str = "SELECT session_id, subject_id, signal, value, weight, evidence \
    FROM rewards WHERE level = 'process' AND subject_kind = 'llm_call' \
    ORDER BY session_id, subject_id, signal";

/// Writes the OpenClaw-RL records of every turn passing `filters` into
/// `out_dir` (see the module docs). `--validation-percent` does not apply:
/// OpenClaw-RL's files have no splits.
///
/// Memory: one session of the log, its kept turn ids and its calls'
/// signals, each read through its own plan sorted by session (the sorts
/// spill under the engine's memory pool); the lineage is spooled to a file
/// and copied into the manifest at the end.
///
/// Errors: [`ExportError::MissingDerived`] without `turns` and `rewards`;
/// query, I/O errors.
pub async fn export_openclaw_rl(
    engine: &QueryEngine,
    out_dir: &Path,
    options: &ExportOptions,
    filters: &ExportFilters,
) -> Result<ExportSummary, ExportError> {
    filters.validate()?;
    require_derived_tables(engine).await?;
    // The two small sorts run first, so the log's sort has the pool left.
    let mut kept_turns = SessionCursor::open(engine, &kept_turns_sql(filters), |batch| {
        let sessions = columns::strings(batch, "session_id")?;
        let turns = columns::strings(batch, "turn_id")?;
        Ok((0..batch.num_rows())
            .filter_map(|k| Some((columns::value(&sessions, k)?, columns::value(&turns, k)?)))
            .collect())
    })
    .await?;
    let mut signals = SessionCursor::open(engine, SIGNALS_SQL, decode_signals).await?;
    kept_turns.fill().await?;
    signals.fill().await?;
    std::fs::create_dir_all(out_dir).map_err(|e| ExportError::io(out_dir, e))?;
    let mut files = RecordFiles::create(out_dir)?;
    let mut sessions_skipped = 0;
    let sessions = stream_sessions(engine, None)
        .await
        .map_err(|e| ExportError::Internal(e.to_string()))?;
    futures::pin_mut!(sessions);
    while let Some(item) = sessions.next().await {
        let (session, side) = item.map_err(|e| ExportError::Internal(e.to_string()))?;
        let kept: HashSet<String> = kept_turns
            .take(&session.session_id)
            .await?
            .into_iter()
            .collect();
        let mut fired: HashMap<String, CallSignals> = HashMap::new();
        for (call, signal) in signals.take(&session.session_id).await? {
            fired.entry(call).or_default().push(signal);
        }
        let written = session_records(&session, &side, &kept, &fired, &mut files)?;
        if written == 0 {
            sessions_skipped += 1;
        }
    }
    let (shards, mut lineage) = files.finish()?;
    let rows = shards[0].rows;
    let mut manifest = ExportManifest::new(
        TARGET,
        engine.events_version(),
        options,
        shards.iter().map(|s| s.rows).sum(),
        sessions_skipped,
        shards.clone(),
        Vec::new(),
    );
    manifest.filters = Some(filters.to_json());
    manifest.counts = Some(json!({
        "conversation_records": shards[0].rows,
        "prm_records": shards[1].rows,
        "feedback_records": shards[2].rows,
    }));
    let mut manifest_file = ManifestWriter::create(out_dir, &manifest)?;
    lineage.drain_into(&mut manifest_file, |entry| entry)?;
    let manifest_path = manifest_file.finish()?;
    let card_path = out_dir.join("README.md");
    std::fs::write(&card_path, card(engine.events_version(), options, &shards))
        .map_err(|e| ExportError::io(&card_path, e))?;
    Ok(ExportSummary {
        target: TARGET.to_string(),
        out_dir: out_dir.display().to_string(),
        events_version: engine.events_version(),
        rows,
        sessions_skipped,
        shards,
        manifest: manifest_path.display().to_string(),
    })
}

/// The turns passing `filters` (with their reward, as the other
/// derived-table targets filter), by session.
fn kept_turns_sql(filters: &ExportFilters) -> String {
    let min_reward = match filters.min_reward {
        Some(m) => format!(" AND s.reward >= {m}"),
        None => String::new(),
    };
    format!(
        "WITH s AS (SELECT turn_id, avg(value) AS reward, avg(advantage) AS advantage \
           FROM rewards WHERE level = 'combined' AND subject_kind = 'llm_call' \
           AND turn_id IS NOT NULL GROUP BY turn_id) \
         SELECT t.session_id, t.turn_id FROM s RIGHT JOIN turns t ON s.turn_id = t.turn_id \
         WHERE {}{min_reward} ORDER BY t.session_id",
        filters.turns_sql()
    )
}

/// The rows of [`SIGNALS_SQL`]: (session, (call event id, signal)).
fn decode_signals(batch: &RecordBatch) -> Result<SessionKeyed<(String, Signal)>, ExportError> {
    let sessions = columns::strings(batch, "session_id")?;
    let calls = columns::strings(batch, "subject_id")?;
    let names = columns::strings(batch, "signal")?;
    let values = columns::floats(batch, "value")?;
    let weights = columns::floats(batch, "weight")?;
    let evidence = columns::strings(batch, "evidence")?;
    let text = |array: &arrow::array::StringArray, k| columns::value(array, k).unwrap_or_default();
    Ok((0..batch.num_rows())
        .map(|k| {
            let signal = (
                text(&names, k),
                values[k].unwrap_or(0.0),
                weights[k].unwrap_or(0.0),
                text(&evidence, k),
            );
            (text(&sessions, k), (text(&calls, k), signal))
        })
        .collect())
}

/// One LLM call as a request the proxy would have seen; its messages are
/// rebuilt when the record is written.
struct CallRecord {
    call_event_id: String,
    /// Index of the turn in the session's segmentation.
    turn: usize,
    /// Position of the call in the turn's context-then-events list.
    slot: usize,
    is_last_call: bool,
    seq: i64,
    ts_us: i64,
    response: Value,
    next_state: Option<Value>,
}

/// Writes the records of one session; returns how many conversation
/// records it wrote.
fn session_records(
    session: &Session,
    side: &[SideEvent],
    kept_turns: &HashSet<String>,
    signals: &HashMap<String, CallSignals>,
    files: &mut RecordFiles,
) -> Result<usize, ExportError> {
    let segmented = turns::segment(session);
    // The request history of a turn: context, then its events in branch order.
    let positions_of = |turn: &turns::Turn| -> Vec<usize> {
        turn.context.iter().chain(&turn.events).copied().collect()
    };
    let mut calls: Vec<CallRecord> = Vec::new();
    let mut seen: HashSet<usize> = HashSet::new();
    for (index, turn) in segmented.turns.iter().enumerate() {
        if !kept_turns.contains(&turn.turn_id) {
            continue;
        }
        let positions = positions_of(turn);
        let call_slots: Vec<usize> = (0..positions.len())
            .filter(|&k| k >= turn.context.len() && session.events[positions[k]].kind == "llm_call")
            .collect();
        if call_slots.is_empty() {
            continue;
        }
        let messages = positioned_messages(session, &positions);
        for (n, &slot) in call_slots.iter().enumerate() {
            let call = positions[slot];
            let Some(response) = message_of(session, call, &turn.tool_calls_of(session, call))
            else {
                continue;
            };
            if !seen.insert(call) {
                continue;
            }
            let next_state = match call_slots.get(n + 1) {
                Some(&next) => messages
                    .iter()
                    .rev()
                    .find(|(k, _)| *k < next)
                    .map(|(_, m)| m.clone()),
                None => turn.next_user.and_then(|u| message_of(session, u, &[])),
            };
            let event = &session.events[call];
            calls.push(CallRecord {
                call_event_id: event.event_id.clone(),
                turn: index,
                slot,
                is_last_call: n + 1 == call_slots.len(),
                seq: event.seq,
                ts_us: event.ts_us,
                response,
                next_state,
            });
        }
    }
    calls.sort_by(|a, b| (a.seq, &a.call_event_id).cmp(&(b.seq, &b.call_event_id)));
    let votes_by_turn = judge_votes(side);
    // The last turn's positioned messages: calls mostly come turn by turn.
    let mut cached: Option<TurnMessages> = None;
    for (k, call) in calls.iter().enumerate() {
        let turn = &segmented.turns[call.turn];
        if cached.as_ref().map(|(index, _, _)| *index) != Some(call.turn) {
            let positions = positions_of(turn);
            let messages = positioned_messages(session, &positions);
            cached = Some((call.turn, positions, messages));
        }
        let Some((_, positions, positioned)) = cached.as_ref() else {
            continue;
        };
        let messages: Vec<Value> = positioned
            .iter()
            .take_while(|(k, _)| *k < call.slot)
            .map(|(_, m)| m.clone())
            .collect();
        let record_turn = k + 1;
        let timestamp = DateTime::from_timestamp_micros(call.ts_us)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default();
        let prompt_text = render_prompt(&messages);
        let response_text = render_response(&call.response);
        let row = files.records.rows;
        files.records.write(&ConversationRecord {
            session_id: &session.session_id,
            turn: record_turn,
            timestamp: &timestamp,
            messages: &messages,
            prompt_text: &prompt_text,
            response_text: &response_text,
            tool_calls: call.response.get("tool_calls"),
            next_state: call.next_state.as_ref(),
        })?;
        let fired = signals.get(&call.call_event_id);
        if call.next_state.is_some() {
            let process = fired
                .into_iter()
                .flatten()
                .map(|(_, v, w, _)| v * w)
                .sum::<f64>()
                .clamp(-1.0, 1.0);
            let score = if process > 0.0 {
                1.0
            } else if process < 0.0 {
                -1.0
            } else {
                0.0
            };
            let votes: Vec<Value> = match votes_by_turn.get(turn.turn_id.as_str()) {
                Some(votes) if call.is_last_call => votes.clone(),
                _ => vec![json!(score as i64)],
            };
            let evidence: Vec<String> = fired
                .into_iter()
                .flatten()
                .map(|(signal, _, _, evidence)| format!("{signal}: {evidence}"))
                .collect();
            let evidence = evidence.join("; ");
            files.prm.write(&PrmRecord {
                session_id: &session.session_id,
                turn: record_turn,
                score,
                votes: &votes,
                representative_eval: (score != 0.0 && !evidence.is_empty())
                    .then_some(evidence.as_str()),
            })?;
        }
        let negative = fired.into_iter().flatten().any(|(signal, value, _, _)| {
            NEGATIVE_FEEDBACK.contains(&signal.as_str()) && *value < 0.0
        });
        files.feedback.write(&FeedbackRecord {
            session_id: &session.session_id,
            turn: record_turn,
            prompt_text: &prompt_text,
            response_text: &response_text,
            label: if negative { -1 } else { 1 },
            timestamp: &timestamp,
            message_index: None,
        })?;
        let event_ids: Vec<&str> = positions
            .iter()
            .take(call.slot + 1)
            .map(|&p| session.events[p].event_id.as_str())
            .collect();
        files
            .lineage
            .push(&json!({"shard": RECORD_FILE, "row": row,
            "session_id": session.session_id, "turn_ids": [turn.turn_id],
            "event_ids": event_ids}))?;
    }
    Ok(calls.len())
}

/// The votes of `trajectory judge` annotations, by turn id (the latest
/// annotation of a turn wins).
fn judge_votes(side: &[SideEvent]) -> HashMap<String, Vec<Value>> {
    let mut out = HashMap::new();
    for event in side.iter().filter(|e| e.kind == "annotation") {
        let Some(attributes) = event
            .attributes
            .as_deref()
            .and_then(|a| serde_json::from_str::<Value>(a).ok())
        else {
            continue;
        };
        if attributes.get("type").and_then(Value::as_str) != Some("judge") {
            continue;
        }
        let (Some(turn), Some(votes)) = (
            attributes.get("turn_id").and_then(Value::as_str),
            attributes.get("votes").and_then(Value::as_array),
        ) else {
            continue;
        };
        out.insert(turn.to_string(), votes.clone());
    }
    out
}

/// The text of a message's `content` (a string, or the text parts of an array).
fn content_text(message: &Value) -> String {
    match message.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

/// One message in Qwen's ChatML, without the closing `<|im_end|>\n`.
fn render_open(message: &Value) -> String {
    let role = message
        .get("role")
        .and_then(Value::as_str)
        .unwrap_or("user");
    let content = content_text(message);
    match role {
        "tool" => format!("<|im_start|>user\n<tool_response>\n{content}\n</tool_response>"),
        "assistant" => {
            let mut text = format!("<|im_start|>assistant\n{content}");
            for call in message
                .get("tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let function = call.get("function").cloned().unwrap_or(Value::Null);
                let name = function.get("name").and_then(Value::as_str).unwrap_or("");
                let arguments = match function.get("arguments") {
                    Some(Value::String(s)) => {
                        serde_json::from_str::<Value>(s).unwrap_or_else(|_| json!(s))
                    }
                    Some(other) => other.clone(),
                    None => json!({}),
                };
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                text.push_str(&format!(
                    "<tool_call>\n{}\n</tool_call>",
                    python_json(&json!({"name": name, "arguments": arguments}))
                ));
            }
            text
        }
        other => format!("<|im_start|>{other}\n{content}"),
    }
}

/// The prompt as the chat template renders it with a generation prompt.
fn render_prompt(messages: &[Value]) -> String {
    let mut text = String::new();
    for message in messages {
        text.push_str(&render_open(message));
        text.push_str("<|im_end|>\n");
    }
    text.push_str("<|im_start|>assistant\n");
    text
}

/// The assistant turn after the prompt: its content, tool calls, `<|im_end|>\n`.
fn render_response(message: &Value) -> String {
    let open = render_open(message);
    let body = open
        .strip_prefix("<|im_start|>assistant\n")
        .unwrap_or(&open);
    format!("{body}<|im_end|>\n")
}

/// `value` as Python's `json.dumps(value, ensure_ascii=False)` writes it.
pub fn python_json<T: Serialize + ?Sized>(value: &T) -> String {
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    // Serialising into memory cannot fail for these types.
    let _ = value.serialize(&mut serializer);
    String::from_utf8(out).unwrap_or_default()
}

/// serde_json's compact output with Python's default separators
/// (`", "` between items, `": "` after keys).
struct PythonFormatter;

impl serde_json::ser::Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        writer.write_all(b": ")
    }
}

/// One JSONL file being written, hashed as it goes.
struct RecordFile {
    name: &'static str,
    path: std::path::PathBuf,
    writer: BufWriter<File>,
    hasher: Sha256,
    rows: usize,
    bytes: u64,
}

impl RecordFile {
    fn create(dir: &Path, name: &'static str) -> Result<RecordFile, ExportError> {
        let path = dir.join(name);
        let file = File::create(&path).map_err(|e| ExportError::io(&path, e))?;
        Ok(RecordFile {
            name,
            path,
            writer: BufWriter::new(file),
            hasher: Sha256::new(),
            rows: 0,
            bytes: 0,
        })
    }

    fn write<T: Serialize>(&mut self, record: &T) -> Result<(), ExportError> {
        let mut line = python_json(record);
        line.push('\n');
        self.hasher.update(line.as_bytes());
        self.bytes += line.len() as u64;
        self.rows += 1;
        self.writer
            .write_all(line.as_bytes())
            .map_err(|e| ExportError::io(&self.path, e))
    }

    fn finish(mut self) -> Result<ShardInfo, ExportError> {
        self.writer
            .flush()
            .map_err(|e| ExportError::io(&self.path, e))?;
        Ok(ShardInfo {
            path: self.name.to_string(),
            split: "train".to_string(),
            rows: self.rows,
            bytes: self.bytes,
            sha256: hex::encode(self.hasher.finalize()),
        })
    }
}

/// The three files of an export, and the records' lineage.
struct RecordFiles {
    records: RecordFile,
    prm: RecordFile,
    feedback: RecordFile,
    lineage: LineageSpool,
}

impl RecordFiles {
    fn create(dir: &Path) -> Result<RecordFiles, ExportError> {
        Ok(RecordFiles {
            records: RecordFile::create(dir, RECORD_FILE)?,
            prm: RecordFile::create(dir, PRM_FILE)?,
            feedback: RecordFile::create(dir, FEEDBACK_FILE)?,
            lineage: LineageSpool::create(dir.join(".lineage.jsonl.partial"))?,
        })
    }

    /// Flushes the files; their [`ShardInfo`]s (records, PRM, feedback)
    /// and the lineage spool.
    fn finish(self) -> Result<(Vec<ShardInfo>, LineageSpool), ExportError> {
        let shards = vec![
            self.records.finish()?,
            self.prm.finish()?,
            self.feedback.finish()?,
        ];
        Ok((shards, self.lineage))
    }
}

/// The dataset card.
fn card(events_version: u64, options: &ExportOptions, shards: &[ShardInfo]) -> String {
    let counts: BTreeMap<&str, usize> = shards.iter().map(|s| (s.path.as_str(), s.rows)).collect();
    format!(
        "# openclaw-rl records exported by trajectory\n\n\
         The JSONL files OpenClaw-RL's proxy writes (Gen-Verse/OpenClaw-RL, \
         `openclaw-rl/openclaw_api_server.py` and `feedback_store.py`), one record per LLM \
         call of the agent, from events table version {events_version} of `{}` (as of {}).\n\n\
         - `{RECORD_FILE}`: {} conversation records (`session_id`, `turn`, `timestamp`, \
         `messages`, `prompt_text`, `response_text`, `tool_calls`, `next_state`)\n\
         - `{PRM_FILE}`: {} PRM records (`session_id`, `turn`, `score`, `votes`, \
         `representative_eval`), for calls with a next state\n\
         - `{FEEDBACK_FILE}`: {} feedback records (`label` +1 / -1)\n\n\
         `prompt_text` and `response_text` use Qwen's ChatML template; timestamps are UTC. \
         How each field is formed: `docs/datasets.md`, section `openclaw-rl`. Lineage (the \
         events behind every conversation record) and file checksums are in `manifest.json`.\n",
        options.store,
        options.as_of.as_deref().unwrap_or("latest"),
        counts.get(RECORD_FILE).copied().unwrap_or(0),
        counts.get(PRM_FILE).copied().unwrap_or(0),
        counts.get(FEEDBACK_FILE).copied().unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_use_python_separators_and_raw_utf8() {
        let line = python_json(&json!({"a": [1, "x"], "b": {"c": null}, "d": "Grüße\n\"q\""}));
        assert_eq!(
            line,
            "{\"a\": [1, \"x\"], \"b\": {\"c\": null}, \"d\": \"Grüße\\n\\\"q\\\"\"}"
        );
        // Floats as Python writes them.
        assert_eq!(python_json(&json!({"score": 1.0})), "{\"score\": 1.0}");
        assert_eq!(python_json(&json!({"score": -1.0})), "{\"score\": -1.0}");
    }

    #[test]
    fn chatml_renders_tool_calls_and_results() {
        let messages = vec![
            json!({"role": "user", "content": "List /tmp"}),
            json!({"role": "assistant", "content": null, "tool_calls": [{"id": "c1",
                "type": "function", "function": {"name": "exec",
                "arguments": "{\"command\":\"ls /tmp\"}"}}]}),
            json!({"role": "tool", "tool_call_id": "c1", "content": "a.txt"}),
        ];
        assert_eq!(
            render_prompt(&messages),
            "<|im_start|>user\nList /tmp<|im_end|>\n<|im_start|>assistant\n<tool_call>\n\
             {\"name\": \"exec\", \"arguments\": {\"command\": \"ls /tmp\"}}\n</tool_call><|im_end|>\n\
             <|im_start|>user\n<tool_response>\na.txt\n</tool_response><|im_end|>\n\
             <|im_start|>assistant\n"
        );
        assert_eq!(
            render_response(&json!({"role": "assistant", "content": "Two files."})),
            "Two files.<|im_end|>\n"
        );
    }
}
