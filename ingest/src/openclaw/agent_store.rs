//! Reader for the per-agent SQLite store of OpenClaw ≥ 2026.7
//! (`~/.openclaw/agents/<agentId>/agent/openclaw-agent.sqlite`, with its
//! `-wal` and `-shm`).
//!
//! Format source: `shared/docs/openclaw-formats.md` §8.1 (canonical DDL of
//! `src/state/openclaw-agent-schema.sql`, agent schema history) and §9 (what
//! openclaw 2026.9.6 wrote in a real run: `user_version` 23, `schema_meta`
//! row `primary/agent/23/2026.9.6`, `STRICT` tables, transcript header
//! `"version":4`). The test fixtures were written by openclaw 2026.9.6
//! (`tests/data/sqlite/SOURCES.md`). Trajectory events follow
//! `openclaw-trajectory` v1 (§3.7); the `model.fallback_step` data shape was
//! read from the 2026.5.28 sidecars of the same run.
//!
//! Mapping (one row → events):
//!
//! | table (schema) | row → event |
//! |---|---|
//! | `transcript_events` (≥ 4) | one former JSONL line (`event_json`, or `event_zstd` decompressed), read per session in `seq` order by [`TranscriptParser`]: the kinds of `transcript.rs` with source `openclaw_transcript`. `source_uri` = `file://<store>#transcript_events/<session_id>`, `seq` = the row's `seq`, `source_offset` = `seq`, `source_line` = `seq + 1` |
//! | `trajectory_runtime_events` (≥ 4) | `model.fallback_step` → `fallback_decision` (`decision` = `fallbackStepFinalOutcome`, `status` = `fallbackStepFromFailureReason`, `error` = `fallbackStepFromFailureDetail`, `requested_*` / `next_*` from `fallbackStepFromModel` / `fallbackStepToModel` split at the first `/`, `attempt` = `fallbackStepChainPosition`); every other type → `custom` with `role` = the type. `model.completed` also fills `provider`/`model`/`api`/`locality`, `stop_reason`, `status` (`ok`/`error`/`aborted`/`timeout`), `error` (the failed attempt's `errorMessage` from `data.messagesSnapshot`), `text` (`assistantTexts`) and the **run's total** token usage (`data.usage`; the `llm_call`s of the transcript hold the per-call usage, so do not add both). `tool.call`/`tool.result` fill `tool_call_id`/`tool_name` (+ `tool_args`, `tool_is_error`). Always: `run_id` (column, else `runId`), `session_key`, `entry_id`/`parent_id` (`entryId`/`parentEntryId`), `ts` from the event's `ts`, `attributes` = `data` (image bytes replaced by a sha256 reference), `raw` = `event_json`. Source `openclaw_agent_store` |
//! | `session_windows` (≥ 14) / `sessions` (4–13) | `session_info`, `role` = the table name: `session_id`, `session_key`, `channel`, `status`, `provider`/`model` (`model_provider`/`model`), `text` = `display_name`, `ts` = `started_at`, else `created_at`, else `updated_at` |
//! | `session_nodes` (≥ 14) / `session_entries` (4–13) | `session_info`, `role` = the table name: `session_key`, `session_id` (`current_session_id`), `status`, `text` = `display_name`/`label`, `provider`/`model`/`channel` from `entry_json`, `ts` = `created_at`, else `updated_at` |
//! | `session_transcript_archives`, `session_transcript_cold_archives` (`storage = 'sqlite'`) | the archived JSONL (`archive_blob`, zstd or identity) read like a transcript file: byte-identical to the `<id>.jsonl.deleted.<ts>[.zst]` file, so the events have the same ids as when that file is read |
//! | a row that cannot be read (bad zstd, decoded length ≠ `event_utf8_bytes`, invalid UTF-8 or JSON, an invalid `*_json` column) | `quarantined` (reason in `error`) |
//!
//! Session rows get the deterministic id blake3(source, agent, table, primary
//! key, sha256 of the row's JSON) and `attributes` = the row as a JSON object
//! (`*_json` columns nested as JSON). A changed row is a new event.
//!
//! Other tables (memory index, FTS, auth profiles — secrets, never read —,
//! conversations, deliveries, `message_tool_run_outcomes`, …) are not read.
//!
//! Opening: read-only (`file:…?mode=ro`, `SQLITE_OPEN_READ_ONLY | NO_MUTEX |
//! URI`), everything inside one deferred read transaction, so the events are
//! one consistent snapshot even while the gateway writes through the WAL. If
//! the database cannot be opened that way because its directory is not
//! writable and no `-shm` exists (a copy on read-only media), the store is
//! opened `immutable=1` when its `-wal` is empty or absent, else the database
//! and its `-wal` are copied into a private temporary directory and the copy is
//! read, so no `-shm` is created next to the original and WAL content is not
//! lost. Either case is reported in `ReadStats::notes`.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use serde_json::{Map, Value};
use thiserror::Error;
use trajectory_schema::{Event, EventKind};

use crate::content::without_image_bytes;
use crate::jsonl::{
    event_id, int_field, parse_time, quarantined, read_jsonl, read_lines, sha256_hex, str_field,
    ReadStats, SourceContext,
};
use crate::lines::Line;
use crate::locality::locality_of_provider;
use crate::openclaw::transcript::{self, TranscriptParser};

/// The `source` column of every event of this reader that is not a
/// transcript line: trajectory runtime events, session rows and their
/// quarantined rows. Transcript lines keep [`transcript::SOURCE`].
pub const SOURCE_RUNTIME: &str = "openclaw_agent_store";

/// The newest agent schema version this reader has seen (openclaw 2026.9.6).
pub const NEWEST_KNOWN_VERSION: i64 = 23;

/// The first agent schema version with transcripts in SQLite (v2026.7.2).
pub const FIRST_TRANSCRIPT_VERSION: i64 = 4;

/// Why a store could not be read at all. Bad rows never fail a read: they
/// become `quarantined` events.
#[derive(Debug, Error)]
pub enum AgentStoreError {
    /// The file cannot be opened or read (missing, permission denied).
    #[error("cannot open {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    /// The file does not start with the SQLite header.
    #[error("{} is not a SQLite database (no SQLite header)", path.display())]
    NotSqlite { path: PathBuf },
    /// SQLite refused to open or read the database.
    #[error("cannot read {} as SQLite: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    /// A SQLite database, but not an OpenClaw per-agent store.
    #[error("{} is not an OpenClaw agent store: {reason}", path.display())]
    NotAgentStore { path: PathBuf, reason: String },
}

/// Reads every transcript line, trajectory runtime event, session row and
/// archived transcript of one per-agent store.
///
/// `context.source_uri` is the store's `file://` URI (computed from `path`
/// when empty); each table's events get `<uri>#<table>/<key>`.
/// `context.agent_id` should be the agent of the path (`agents/<id>/agent/…`);
/// when `None` it is taken from the path, else from `schema_meta.agent_id`.
/// `stats.format_version` is the agent schema version (`PRAGMA user_version`,
/// else `schema_meta.schema_version`); `stats.lines` counts rows read.
///
/// Errors: only when the file cannot be opened, is not SQLite, or is not an
/// OpenClaw agent store. A table that fails half-way is reported in
/// `stats.notes` and reading goes on with the next table.
pub fn read_agent_store(
    path: &Path,
    context: &SourceContext,
) -> Result<(Vec<Event>, ReadStats), AgentStoreError> {
    let snapshot = Snapshot::open(path).map_err(|failure| match failure {
        OpenFailure::Io(source) => AgentStoreError::Io {
            path: path.to_path_buf(),
            source,
        },
        OpenFailure::NotSqlite => AgentStoreError::NotSqlite {
            path: path.to_path_buf(),
        },
        OpenFailure::Sqlite(source) => AgentStoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        },
    })?;
    let sql_error = |source| AgentStoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    let conn = &snapshot.conn;
    conn.execute_batch("BEGIN DEFERRED").map_err(sql_error)?;
    let tables = table_names(conn).map_err(sql_error)?;
    let user_version = user_version(conn).map_err(sql_error)?;
    let meta = schema_meta(conn, &tables);
    let role = meta.as_ref().and_then(|m| m.role.as_deref());
    let looks_like_agent = tables.contains("transcript_events")
        || tables.contains("session_windows")
        || (tables.contains("sessions") && tables.contains("session_entries"));
    if role.is_some_and(|r| r != "agent") || (role.is_none() && !looks_like_agent) {
        let reason = match role {
            Some(role) => format!("schema_meta role is {role:?}, not \"agent\""),
            None => "no schema_meta row with role \"agent\" and no transcript_events, \
                     session_windows or sessions table"
                .to_string(),
        };
        return Err(AgentStoreError::NotAgentStore {
            path: path.to_path_buf(),
            reason,
        });
    }

    let mut stats = ReadStats::default();
    stats.notes.extend(snapshot.notes.iter().cloned());
    let meta_version = meta.as_ref().and_then(|m| m.schema_version);
    let version = if user_version > 0 {
        Some(user_version)
    } else {
        meta_version
    };
    if let (Some(meta_version), true) = (meta_version, user_version > 0) {
        if meta_version != user_version {
            stats.notes.push(format!(
                "PRAGMA user_version {user_version} differs from schema_meta.schema_version {meta_version}; using {user_version}"
            ));
        }
    }
    stats.format_version = version;
    match version {
        Some(v) if v > NEWEST_KNOWN_VERSION => stats.notes.push(format!(
            "agent schema version {v} is newer than {NEWEST_KNOWN_VERSION}; read the tables and columns that are present"
        )),
        Some(v) if v < FIRST_TRANSCRIPT_VERSION => stats.notes.push(format!(
            "agent schema version {v} keeps transcripts in JSONL files, not in this store"
        )),
        _ => {}
    }

    let mut context = context.clone();
    if context.source_uri.is_empty() {
        context.source_uri = file_uri(path);
    }
    let path_agent = agent_id_from_store_path(path);
    let meta_agent = meta.as_ref().and_then(|m| m.agent_id.clone());
    if context.agent_id.is_none() {
        context.agent_id = path_agent.or_else(|| meta_agent.clone());
    }
    if let (Some(ours), Some(theirs)) = (&context.agent_id, &meta_agent) {
        if ours != theirs {
            stats.notes.push(format!(
                "agent id {ours:?} (path) differs from schema_meta.agent_id {theirs:?}; using {ours:?}"
            ));
        }
    }

    let mut reader = StoreReader {
        conn,
        context: &context,
        tables: &tables,
        stats,
        events: Vec::new(),
    };
    for table in ["session_windows", "sessions"] {
        reader.guarded(table, |r| r.read_session_rows(table, "session_id", true));
    }
    for table in ["session_nodes", "session_entries"] {
        reader.guarded(table, |r| r.read_session_rows(table, "session_key", false));
    }
    reader.guarded("transcript_events", StoreReader::read_transcripts);
    reader.guarded(
        "trajectory_runtime_events",
        StoreReader::read_runtime_events,
    );
    reader.guarded("session_transcript_archives", |r| {
        r.read_archives("session_transcript_archives")
    });
    reader.guarded("session_transcript_cold_archives", |r| {
        r.read_archives("session_transcript_cold_archives")
    });
    let StoreReader {
        mut stats, events, ..
    } = reader;
    // Nothing was written; ending the read transaction cannot lose anything.
    let _ = conn.execute_batch("COMMIT");
    stats.events = events.len() as u64;
    Ok((events, stats))
}

/// The agent id of a store path `…/agents/<id>/agent/<file>`.
pub fn agent_id_from_store_path(path: &Path) -> Option<String> {
    let parts: Vec<&str> = path.iter().filter_map(|p| p.to_str()).collect();
    parts
        .windows(3)
        .rev()
        .find(|w| w[0] == "agents" && w[2] == "agent")
        .map(|w| w[1].to_string())
}

/// One row of `transcript_events` as stored.
struct TranscriptRow {
    seq: i64,
    json: Option<Vec<u8>>,
    zstd: Option<Vec<u8>>,
    utf8_bytes: Option<i64>,
    created_at: Option<i64>,
}

struct StoreReader<'a> {
    conn: &'a Connection,
    context: &'a SourceContext,
    tables: &'a BTreeSet<String>,
    stats: ReadStats,
    events: Vec<Event>,
}

impl StoreReader<'_> {
    /// Runs one table's reader if the table exists; a SQLite error becomes a note.
    fn guarded(&mut self, table: &str, read: impl FnOnce(&mut Self) -> rusqlite::Result<()>) {
        if !self.tables.contains(table) {
            return;
        }
        if let Err(e) = read(self) {
            self.stats
                .notes
                .push(format!("table {table} could not be read to the end: {e}"));
        }
    }

    fn agent(&self) -> &str {
        self.context.agent_id.as_deref().unwrap_or("")
    }

    fn uri(&self, fragment: &str) -> String {
        format!("{}#{fragment}", self.context.source_uri)
    }

    /// `session_windows`/`sessions` (`is_window`) or `session_nodes`/`session_entries`.
    fn read_session_rows(
        &mut self,
        table: &str,
        key_column: &str,
        is_window: bool,
    ) -> rusqlite::Result<()> {
        let columns = columns(self.conn, table)?;
        if !columns.iter().any(|c| c == key_column) {
            self.stats
                .notes
                .push(format!("table {table} has no {key_column} column; skipped"));
            return Ok(());
        }
        let rows = read_rows(self.conn, table, &[key_column])?;
        for (index, row) in rows.into_iter().enumerate() {
            self.stats.lines += 1;
            let key = text_value(row.get(key_column)).unwrap_or_default();
            let uri = self.uri(&format!("{table}/{key}"));
            let fallback_ts = ["created_at", "updated_at"]
                .iter()
                .find_map(|c| ms_time(row.get(*c)))
                .unwrap_or(self.context.ingested_at);
            let (attributes, text) = match expand_json_columns(row) {
                Ok(expanded) => expanded,
                Err((text, reason)) => {
                    self.stats.bytes += text.len() as u64;
                    self.stats.quarantined += 1;
                    let session = is_window.then(|| key.clone());
                    self.events.push(quarantined_row(
                        self.context,
                        SOURCE_RUNTIME,
                        uri,
                        index as u64,
                        text.as_bytes(),
                        &reason,
                        session,
                        fallback_ts,
                    ));
                    continue;
                }
            };
            self.stats.bytes += text.len() as u64;
            let ts_columns: &[&str] = if is_window {
                &["started_at", "created_at", "updated_at"]
            } else {
                &["created_at", "updated_at"]
            };
            let ts = ts_columns
                .iter()
                .find_map(|c| ms_time(attributes.get(*c)))
                .unwrap_or(self.context.ingested_at);
            let mut event = row_event(
                self.context,
                SOURCE_RUNTIME,
                &uri,
                &[SOURCE_RUNTIME, self.agent(), table, &key],
                index as u64,
                EventKind::SessionInfo,
                ts,
                &text,
            );
            event.role = Some(table.to_string());
            event.status = text_value(attributes.get("status"));
            if is_window {
                event.session_id = Some(key);
                event.session_key = text_value(attributes.get("session_key"));
                event.channel = text_value(attributes.get("channel"));
                event.provider = text_value(attributes.get("model_provider"));
                event.model = text_value(attributes.get("model"));
                event.text = text_value(attributes.get("display_name"));
            } else {
                event.session_key = Some(key);
                event.session_id = text_value(attributes.get("current_session_id"))
                    .or_else(|| text_value(attributes.get("session_id")));
                event.text = text_value(attributes.get("display_name"))
                    .or_else(|| text_value(attributes.get("label")));
                if let Some(Value::Object(entry)) = attributes.get("entry_json") {
                    event.provider = str_field(entry, "modelProvider");
                    event.model = str_field(entry, "model");
                    event.channel = str_field(entry, "channel")
                        .or_else(|| str_field(entry, "lastChannel"))
                        .or_else(|| {
                            entry
                                .get("deliveryContext")
                                .and_then(|d| d.get("channel"))
                                .and_then(Value::as_str)
                                .map(str::to_string)
                        });
                    if event.text.is_none() {
                        event.text = str_field(entry, "displayName");
                    }
                }
            }
            event.locality = event.provider.as_deref().map(locality_of_provider);
            event.attributes = Some(text);
            self.events.push(event);
        }
        Ok(())
    }

    fn read_transcripts(&mut self) -> rusqlite::Result<()> {
        let columns = columns(self.conn, "transcript_events")?;
        let has = |c: &str| columns.iter().any(|x| x == c);
        if !has("session_id") || !has("seq") || !(has("event_json") || has("event_zstd")) {
            self.stats.notes.push(
                "table transcript_events lacks session_id, seq or event_json/event_zstd; skipped"
                    .into(),
            );
            return Ok(());
        }
        let pick = |c: &str| if has(c) { c.to_string() } else { "NULL".into() };
        let sql = format!(
            "SELECT session_id, seq, {}, {}, {}, {} FROM transcript_events ORDER BY session_id, seq",
            pick("event_json"),
            pick("event_zstd"),
            pick("event_utf8_bytes"),
            pick("created_at"),
        );
        let mut statement = self.conn.prepare(&sql)?;
        let mut rows = statement.query([])?;
        let mut current: Option<String> = None;
        let mut batch: Vec<TranscriptRow> = Vec::new();
        while let Some(row) = rows.next()? {
            let session_id = text_value(Some(&value_of(row.get_ref(0)?))).unwrap_or_default();
            let row = TranscriptRow {
                seq: int_value(Some(&value_of(row.get_ref(1)?))).unwrap_or(-1),
                json: bytes_of(row.get_ref(2)?),
                zstd: bytes_of(row.get_ref(3)?),
                utf8_bytes: int_value(Some(&value_of(row.get_ref(4)?))),
                created_at: int_value(Some(&value_of(row.get_ref(5)?))),
            };
            if current.as_deref() != Some(session_id.as_str()) {
                if let Some(previous) = current.take() {
                    self.read_transcript_session(&previous, std::mem::take(&mut batch));
                }
                current = Some(session_id);
            }
            batch.push(row);
        }
        if let Some(previous) = current {
            self.read_transcript_session(&previous, batch);
        }
        Ok(())
    }

    /// One session's rows, in `seq` order, through the transcript parser.
    fn read_transcript_session(&mut self, session_id: &str, rows: Vec<TranscriptRow>) {
        let context = SourceContext {
            source_uri: self.uri(&format!("transcript_events/{session_id}")),
            session_id_hint: Some(session_id.to_string()),
            ..self.context.clone()
        };
        let mut good = Vec::with_capacity(rows.len());
        let mut bad = Vec::new();
        for row in rows {
            let Ok(offset) = u64::try_from(row.seq) else {
                let line = row_line(
                    0,
                    0,
                    row.json.clone().or(row.zstd.clone()).unwrap_or_default(),
                );
                bad.push((line, format!("negative seq {}", row.seq), row));
                continue;
            };
            match decode_transcript_row(&row, context.max_line_bytes) {
                Ok(bytes) => good.push(Ok(row_line(offset, offset + 1, bytes))),
                Err(reason) => {
                    let line = row_line(
                        offset,
                        offset + 1,
                        row.zstd.clone().or(row.json.clone()).unwrap_or_default(),
                    );
                    bad.push((line, reason, row));
                }
            }
        }
        let mut parser = TranscriptParser::new(&context);
        let (mut events, stats) = match read_lines(good, &context, &mut parser) {
            Ok(read) => read,
            // The iterator yields no errors; keep the compiler honest anyway.
            Err(e) => {
                self.stats
                    .notes
                    .push(format!("session {session_id}: read error {e}"));
                return;
            }
        };
        for (line, reason, row) in bad {
            let ts = ms_time_i64(row.created_at).unwrap_or(self.context.ingested_at);
            let mut event = quarantined(
                &context,
                transcript::SOURCE,
                &line,
                &reason,
                Some(session_id.to_string()),
                ts,
            );
            if let Some(blob) = &row.zstd {
                event.raw = Some(
                    serde_json::json!({
                        "event_zstd_hex": hex::encode(blob),
                        "event_utf8_bytes": row.utf8_bytes,
                    })
                    .to_string(),
                );
            }
            events.push(event);
            self.stats.lines += 1;
            self.stats.quarantined += 1;
        }
        events.sort_by_key(|e| e.seq);
        self.merge(stats, Some(session_id));
        self.events.extend(events);
    }

    fn read_runtime_events(&mut self) -> rusqlite::Result<()> {
        let table = "trajectory_runtime_events";
        let columns = columns(self.conn, table)?;
        let has = |c: &str| columns.iter().any(|x| x == c);
        if !has("session_id") || !has("seq") || !has("event_json") {
            self.stats.notes.push(format!(
                "table {table} lacks session_id, seq or event_json; skipped"
            ));
            return Ok(());
        }
        let pick = |c: &str| if has(c) { c.to_string() } else { "NULL".into() };
        let sql = format!(
            "SELECT session_id, seq, {}, event_json, {} FROM {table} ORDER BY session_id, seq",
            pick("run_id"),
            pick("created_at"),
        );
        let mut statement = self.conn.prepare(&sql)?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            let session_id = text_value(Some(&value_of(row.get_ref(0)?))).unwrap_or_default();
            let seq = int_value(Some(&value_of(row.get_ref(1)?))).unwrap_or(-1);
            let run_id = text_value(Some(&value_of(row.get_ref(2)?)));
            let bytes = bytes_of(row.get_ref(3)?).unwrap_or_default();
            let created_at = int_value(Some(&value_of(row.get_ref(4)?)));
            self.stats.lines += 1;
            self.stats.bytes += bytes.len() as u64;
            let uri = self.uri(&format!("{table}/{session_id}"));
            match self.runtime_event(&session_id, seq, run_id, &bytes, created_at, &uri) {
                Ok(event) => self.events.push(event),
                Err(reason) => {
                    self.stats.quarantined += 1;
                    let ts = ms_time_i64(created_at).unwrap_or(self.context.ingested_at);
                    let index = u64::try_from(seq).unwrap_or(0);
                    self.events.push(quarantined_row(
                        self.context,
                        SOURCE_RUNTIME,
                        uri,
                        index,
                        &bytes,
                        &reason,
                        Some(session_id),
                        ts,
                    ));
                }
            }
        }
        Ok(())
    }

    /// One `openclaw-trajectory` v1 runtime event.
    fn runtime_event(
        &self,
        session_id: &str,
        seq: i64,
        run_id: Option<String>,
        bytes: &[u8],
        created_at: Option<i64>,
        uri: &str,
    ) -> Result<Event, String> {
        if bytes.len() > self.context.max_line_bytes {
            return Err(format!(
                "event_json of {} bytes exceeds the {}-byte cap",
                bytes.len(),
                self.context.max_line_bytes
            ));
        }
        let text = std::str::from_utf8(bytes)
            .map_err(|e| format!("invalid UTF-8 at byte {}", e.valid_up_to()))?;
        let value: Value =
            serde_json::from_str(text).map_err(|e| format!("malformed JSON: {e}"))?;
        let Value::Object(record) = value else {
            return Err("event_json is JSON but not an object".into());
        };
        let event_type = str_field(&record, "type").unwrap_or_default();
        let data = match record.get("data") {
            Some(Value::Object(data)) => data.clone(),
            _ => Map::new(),
        };
        let ts = record
            .get("ts")
            .and_then(parse_time)
            .or_else(|| ms_time_i64(created_at))
            .unwrap_or(self.context.ingested_at);
        let kind = if event_type == "model.fallback_step" {
            EventKind::FallbackDecision
        } else {
            EventKind::Custom
        };
        let sha256 = sha256_hex(bytes);
        let seq_text = seq.to_string();
        let mut event = Event::new(
            event_id(&[
                SOURCE_RUNTIME,
                self.agent(),
                "trajectory_runtime_events",
                session_id,
                &seq_text,
                &sha256,
            ]),
            ts,
            kind,
            SOURCE_RUNTIME,
            &self.context.ingest_id,
            self.context.ingested_at,
        );
        event.agent_id = self.context.agent_id.clone();
        event.session_id = Some(session_id.to_string());
        event.session_key = str_field(&record, "sessionKey");
        event.seq = Some(seq);
        event.role = Some(event_type.clone()).filter(|t| !t.is_empty());
        event.run_id = run_id.or_else(|| str_field(&record, "runId"));
        event.entry_id = str_field(&record, "entryId");
        event.parent_id = str_field(&record, "parentEntryId");
        event.provider = str_field(&record, "provider");
        event.model = str_field(&record, "modelId");
        event.api = str_field(&record, "modelApi");
        match event_type.as_str() {
            "model.completed" => fill_model_completed(&mut event, &data),
            "model.fallback_step" => fill_fallback_step(&mut event, &data),
            "tool.call" | "tool.result" => {
                event.tool_call_id = str_field(&data, "toolCallId");
                event.tool_name = str_field(&data, "name");
                if let Some(args) = data.get("args") {
                    event.tool_args = Some(match args {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    });
                }
                event.tool_is_error = data.get("success").and_then(Value::as_bool).map(|s| !s);
            }
            "session.ended" => {
                event.status = str_field(&data, "status");
                event.stop_reason = str_field(&data, "stopReason");
            }
            "trace.artifacts" => {
                event.status = str_field(&data, "finalStatus");
                event.stop_reason = str_field(&data, "stopReason");
            }
            _ => {}
        }
        event.locality = event.provider.as_deref().map(locality_of_provider);
        event.attributes = Some(without_image_bytes(&Value::Object(data)).to_string());
        event.source_uri = Some(uri.to_string());
        event.source_offset = Some(seq);
        event.source_line = Some(seq.saturating_add(1));
        event.line_sha256 = Some(sha256);
        event.raw = Some(text.to_string());
        Ok(event)
    }

    /// Archived transcripts kept as blobs: each is a whole JSONL file.
    fn read_archives(&mut self, table: &str) -> rusqlite::Result<()> {
        let columns = columns(self.conn, table)?;
        let has = |c: &str| columns.iter().any(|x| x == c);
        if !has("session_id") || !has("archive_blob") {
            self.stats.notes.push(format!(
                "table {table} lacks session_id or archive_blob; skipped"
            ));
            return Ok(());
        }
        let pick = |c: &str| if has(c) { c.to_string() } else { "NULL".into() };
        let sql = format!(
            "SELECT session_id, {}, {}, {}, archive_blob FROM {table} \
             WHERE archive_blob IS NOT NULL ORDER BY session_id, {}",
            pick("generation"),
            pick("encoding"),
            pick("archive_name"),
            pick("generation"),
        );
        let mut statement = self.conn.prepare(&sql)?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            let session_id = text_value(Some(&value_of(row.get_ref(0)?))).unwrap_or_default();
            let generation = text_value(Some(&value_of(row.get_ref(1)?))).unwrap_or_default();
            let encoding = text_value(Some(&value_of(row.get_ref(2)?)));
            let name = text_value(Some(&value_of(row.get_ref(3)?))).unwrap_or_default();
            let blob = bytes_of(row.get_ref(4)?).unwrap_or_default();
            let context = SourceContext {
                source_uri: self.uri(&format!("{table}/{session_id}/{generation}")),
                session_id_hint: Some(session_id.clone()),
                ..self.context.clone()
            };
            let zstd = encoding.as_deref() == Some("zstd")
                || (encoding.is_none() && blob.starts_with(&ZSTD_MAGIC));
            let mut parser = TranscriptParser::new(&context);
            let read = if zstd {
                zstd::stream::read::Decoder::new(&blob[..])
                    .and_then(|decoder| read_jsonl(BufReader::new(decoder), &context, &mut parser))
            } else {
                read_jsonl(&blob[..], &context, &mut parser)
            };
            match read {
                Ok((events, stats)) => {
                    self.merge(stats, Some(&session_id));
                    self.events.extend(events);
                }
                Err(e) => {
                    let reason = format!("archive {name:?} cannot be decompressed: {e}");
                    self.stats.notes.push(format!("{table}: {reason}"));
                    self.stats.lines += 1;
                    self.stats.quarantined += 1;
                    let mut event = quarantined_row(
                        self.context,
                        transcript::SOURCE,
                        context.source_uri.clone(),
                        0,
                        &blob,
                        &reason,
                        Some(session_id),
                        self.context.ingested_at,
                    );
                    event.raw = Some(
                        serde_json::json!({ "archive_name": name, "archive_bytes": blob.len() })
                            .to_string(),
                    );
                    self.events.push(event);
                }
            }
        }
        Ok(())
    }

    /// Adds one transcript's counts; its notes are prefixed with the session.
    fn merge(&mut self, stats: ReadStats, session_id: Option<&str>) {
        self.stats.lines += stats.lines;
        self.stats.bytes += stats.bytes;
        self.stats.quarantined += stats.quarantined;
        self.stats.unknown_entries += stats.unknown_entries;
        for note in stats.notes {
            let note = match session_id {
                Some(id) => format!("session {id}: {note}"),
                None => note,
            };
            if !self.stats.notes.contains(&note) {
                self.stats.notes.push(note);
            }
        }
    }
}

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// The text of one transcript row: `event_json`, else `event_zstd`
/// decompressed (at most `max + 1` bytes, so an oversized row is quarantined
/// by the line cap, not held in memory).
fn decode_transcript_row(row: &TranscriptRow, max: usize) -> Result<Vec<u8>, String> {
    if let Some(json) = &row.json {
        return Ok(json.clone());
    }
    let Some(blob) = &row.zstd else {
        return Err("row has neither event_json nor event_zstd".into());
    };
    let mut out = Vec::new();
    zstd::stream::read::Decoder::new(&blob[..])
        .and_then(|decoder| decoder.take(max as u64 + 1).read_to_end(&mut out))
        .map_err(|e| format!("event_zstd does not decompress: {e}"))?;
    if out.len() <= max {
        if let Some(expected) = row.utf8_bytes {
            if expected != out.len() as i64 {
                return Err(format!(
                    "event_zstd decompresses to {} bytes but event_utf8_bytes is {expected}",
                    out.len()
                ));
            }
        }
    }
    Ok(out)
}

/// `model.completed`: the run's outcome and total usage.
fn fill_model_completed(event: &mut Event, data: &Map<String, Value>) {
    let last_assistant = data
        .get("messagesSnapshot")
        .and_then(Value::as_array)
        .and_then(|messages| {
            messages
                .iter()
                .rev()
                .find(|m| m.get("role").and_then(Value::as_str) == Some("assistant"))
        })
        .and_then(Value::as_object);
    if let Some(message) = last_assistant {
        if event.provider.is_none() {
            event.provider = str_field(message, "provider");
        }
        if event.model.is_none() {
            event.model = str_field(message, "model");
        }
    }
    event.stop_reason = str_field(data, "stopReason");
    let failed = event.stop_reason.as_deref() == Some("error");
    event.error = last_assistant
        .filter(|_| failed)
        .and_then(|m| str_field(m, "errorMessage"))
        .or_else(|| str_field(data, "error"))
        .or_else(|| str_field(data, "promptError"));
    let flag = |key: &str| data.get(key).and_then(Value::as_bool).unwrap_or(false);
    let timed_out = data
        .iter()
        .any(|(key, value)| key.starts_with("timedOut") && value.as_bool() == Some(true))
        || flag("idleTimedOut");
    event.status = Some(
        if timed_out {
            "timeout"
        } else if flag("aborted") || flag("externalAbort") {
            "aborted"
        } else if failed || event.error.is_some() {
            "error"
        } else {
            "ok"
        }
        .to_string(),
    );
    if let Some(Value::Object(usage)) = data.get("usage") {
        event.input_tokens = int_field(usage, "input");
        event.output_tokens = int_field(usage, "output");
        event.cache_read_tokens = int_field(usage, "cacheRead");
        event.cache_write_tokens = int_field(usage, "cacheWrite");
        event.cost_usd = usage
            .get("cost")
            .and_then(|c| c.get("total"))
            .and_then(Value::as_f64);
    }
    if let Some(Value::Array(texts)) = data.get("assistantTexts") {
        let texts: Vec<&str> = texts.iter().filter_map(Value::as_str).collect();
        if !texts.is_empty() {
            event.text = Some(texts.join("\n"));
        }
    }
}

/// `model.fallback_step`: one step of the model fallback chain.
fn fill_fallback_step(event: &mut Event, data: &Map<String, Value>) {
    event.decision =
        str_field(data, "fallbackStepFinalOutcome").or_else(|| str_field(data, "decision"));
    event.status =
        str_field(data, "fallbackStepFromFailureReason").or_else(|| str_field(data, "status"));
    event.error =
        str_field(data, "fallbackStepFromFailureDetail").or_else(|| str_field(data, "error"));
    event.attempt =
        int_field(data, "fallbackStepChainPosition").or_else(|| int_field(data, "attempt"));
    if let Some((provider, model)) = str_field(data, "fallbackStepFromModel")
        .as_deref()
        .and_then(split_model_ref)
    {
        event.requested_provider = Some(provider);
        event.requested_model = Some(model);
    } else {
        event.requested_provider = str_field(data, "requestedProvider");
        event.requested_model = str_field(data, "requestedModel");
    }
    if let Some((provider, model)) = str_field(data, "fallbackStepToModel")
        .as_deref()
        .and_then(split_model_ref)
    {
        event.next_provider = Some(provider);
        event.next_model = Some(model);
    } else {
        event.next_provider = str_field(data, "nextProvider");
        event.next_model = str_field(data, "nextModel");
    }
}

/// `provider/model` → (provider, model), split at the first `/` (model ids
/// may contain more slashes, e.g. `openrouter/meta-llama/llama-3`).
fn split_model_ref(reference: &str) -> Option<(String, String)> {
    let (provider, model) = reference.split_once('/')?;
    (!provider.is_empty() && !model.is_empty()).then(|| (provider.to_string(), model.to_string()))
}

// ---------------------------------------------------------------------------
// SQLite plumbing shared with `state_store`.
// ---------------------------------------------------------------------------

/// Why [`Snapshot::open`] failed.
#[derive(Debug)]
pub(crate) enum OpenFailure {
    Io(io::Error),
    NotSqlite,
    Sqlite(rusqlite::Error),
}

/// A read-only connection to a store (or to a private copy of it).
pub(crate) struct Snapshot {
    /// Declared first so it is dropped before the private copy is deleted.
    pub(crate) conn: Connection,
    /// How the store had to be opened, when not the normal way.
    pub(crate) notes: Vec<String>,
    _copy: Option<PrivateCopy>,
}

impl Snapshot {
    /// Opens `path` read-only; see the module doc for the fallbacks.
    pub(crate) fn open(path: &Path) -> Result<Snapshot, OpenFailure> {
        let mut header = [0u8; 16];
        let mut file = File::open(path).map_err(OpenFailure::Io)?;
        match file.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(OpenFailure::NotSqlite)
            }
            Err(e) => return Err(OpenFailure::Io(e)),
        }
        if &header != b"SQLite format 3\0" {
            return Err(OpenFailure::NotSqlite);
        }
        drop(file);
        let path = path.canonicalize().map_err(OpenFailure::Io)?;
        let first_error = match open_read_only(&path, false) {
            Ok(conn) => {
                return Ok(Snapshot {
                    conn,
                    notes: Vec::new(),
                    _copy: None,
                })
            }
            Err(e) => e,
        };
        // The usual cause: a WAL database in a directory we cannot write, and
        // no `-shm` to share. Anything else fails the same way again below.
        if sibling(&path, "-shm").exists() {
            return Err(OpenFailure::Sqlite(first_error));
        }
        let wal = sibling(&path, "-wal");
        let wal_bytes = fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        if wal_bytes == 0 {
            let conn = open_read_only(&path, true).map_err(|_| OpenFailure::Sqlite(first_error))?;
            return Ok(Snapshot {
                conn,
                notes: vec![
                    "opened immutable (read-only directory, no -shm, empty or no -wal)".into(),
                ],
                _copy: None,
            });
        }
        let copy = PrivateCopy::new(&path, &wal).map_err(OpenFailure::Io)?;
        let conn = open_read_only(&copy.db, false).map_err(OpenFailure::Sqlite)?;
        Ok(Snapshot {
            conn,
            notes: vec![format!(
                "read a private copy of the database and its {wal_bytes}-byte -wal \
                 (read-only directory, no -shm): {first_error}"
            )],
            _copy: Some(copy),
        })
    }

    /// Opens a private copy of `path` and its `-wal` (the read-only-directory
    /// fallback), whatever the directory's permissions.
    #[cfg(test)]
    pub(crate) fn open_private_copy(path: &Path) -> Result<Snapshot, OpenFailure> {
        let path = path.canonicalize().map_err(OpenFailure::Io)?;
        let copy = PrivateCopy::new(&path, &sibling(&path, "-wal")).map_err(OpenFailure::Io)?;
        let conn = open_read_only(&copy.db, false).map_err(OpenFailure::Sqlite)?;
        Ok(Snapshot {
            conn,
            notes: Vec::new(),
            _copy: Some(copy),
        })
    }
}

/// `path` with `suffix` appended to its file name (`x.sqlite` → `x.sqlite-wal`).
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Opens read-only through a `file:` URI and makes SQLite read the schema
/// (opening is lazy, so errors would otherwise surface later).
fn open_read_only(path: &Path, immutable: bool) -> rusqlite::Result<Connection> {
    let mut uri = format!("file:{}?mode=ro", uri_path(path));
    if immutable {
        uri.push_str("&immutable=1");
    }
    let conn = Connection::open_with_flags(
        &uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.execute_batch("PRAGMA query_only = 1")?;
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })?;
    Ok(conn)
}

/// The path part of a SQLite `file:` URI: `%`, `?`, `#` and every byte that
/// is not plain ASCII percent-encoded.
fn uri_path(path: &Path) -> String {
    #[cfg(unix)]
    let bytes = {
        use std::os::unix::ffi::OsStrExt;
        path.as_os_str().as_bytes().to_vec()
    };
    #[cfg(not(unix))]
    let bytes = path.to_string_lossy().replace('\\', "/").into_bytes();
    let mut out = String::with_capacity(bytes.len());
    for byte in bytes {
        if byte.is_ascii_alphanumeric() || b"/-_.~+,;=:@!$&'()*".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A temporary directory holding a copy of a database and its `-wal`;
/// deleted on drop.
struct PrivateCopy {
    dir: PathBuf,
    db: PathBuf,
}

impl PrivateCopy {
    fn new(db: &Path, wal: &Path) -> io::Result<PrivateCopy> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = Utc::now().timestamp_nanos_opt().unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "trajectory-sqlite-{}-{nanos}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir(&dir)?;
        let copy = PrivateCopy {
            db: dir.join("store.sqlite"),
            dir,
        };
        fs::copy(db, &copy.db)?;
        if wal.exists() {
            fs::copy(wal, sibling(&copy.db, "-wal"))?;
        }
        Ok(copy)
    }
}

impl Drop for PrivateCopy {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Names of the tables and views.
pub(crate) fn table_names(conn: &Connection) -> rusqlite::Result<BTreeSet<String>> {
    let mut statement =
        conn.prepare("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")?;
    let names = statement.query_map([], |r| r.get::<_, String>(0))?;
    names.collect()
}

/// Column names of `table`, in declaration order.
pub(crate) fn columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut statement = conn.prepare("SELECT name FROM pragma_table_info(?1)")?;
    let names = statement.query_map([table], |r| r.get::<_, String>(0))?;
    names.collect()
}

/// `PRAGMA user_version`.
pub(crate) fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

/// The `schema_meta` row `meta_key = 'primary'`.
#[derive(Debug, Clone, Default)]
pub(crate) struct SchemaMeta {
    pub(crate) role: Option<String>,
    pub(crate) schema_version: Option<i64>,
    pub(crate) agent_id: Option<String>,
}

/// Reads the primary `schema_meta` row, if the table and row exist.
pub(crate) fn schema_meta(conn: &Connection, tables: &BTreeSet<String>) -> Option<SchemaMeta> {
    if !tables.contains("schema_meta") {
        return None;
    }
    let columns = columns(conn, "schema_meta").ok()?;
    if !columns.iter().any(|c| c == "meta_key") {
        return None;
    }
    let rows = read_rows(conn, "schema_meta", &["meta_key"]).ok()?;
    let row = rows
        .into_iter()
        .find(|r| text_value(r.get("meta_key")).as_deref() == Some("primary"))?;
    Some(SchemaMeta {
        role: text_value(row.get("role")),
        schema_version: int_value(row.get("schema_version")),
        agent_id: text_value(row.get("agent_id")),
    })
}

/// Every row of `table` as a JSON object of its columns (`SELECT *`, so the
/// columns a newer schema adds come along), ordered by `order_by` columns
/// that exist.
pub(crate) fn read_rows(
    conn: &Connection,
    table: &str,
    order_by: &[&str],
) -> rusqlite::Result<Vec<Map<String, Value>>> {
    let present = columns(conn, table)?;
    let order: Vec<String> = order_by
        .iter()
        .filter(|c| present.iter().any(|p| p == *c))
        .map(|c| format!("\"{c}\""))
        .collect();
    let mut sql = format!("SELECT * FROM \"{table}\"");
    if !order.is_empty() {
        sql.push_str(" ORDER BY ");
        sql.push_str(&order.join(", "));
    }
    let mut statement = conn.prepare(&sql)?;
    let names: Vec<String> = statement.column_names().map(str::to_string).collect();
    let mut rows = statement.query([])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut object = Map::with_capacity(names.len());
        for (index, name) in names.iter().enumerate() {
            object.insert(name.clone(), value_of(row.get_ref(index)?));
        }
        out.push(object);
    }
    Ok(out)
}

/// A SQLite value as JSON: text as a string (invalid UTF-8 replaced), blobs
/// as `{"blob_bytes": n, "sha256": …}`, non-finite reals as null.
pub(crate) fn value_of(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => serde_json::json!({ "blob_bytes": b.len(), "sha256": sha256_hex(b) }),
    }
}

/// The bytes of a text or blob value.
fn bytes_of(value: ValueRef<'_>) -> Option<Vec<u8>> {
    match value {
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(t.to_vec()),
        _ => None,
    }
}

/// A column value as text (strings as-is, numbers formatted).
pub(crate) fn text_value(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A column value as an integer (integers, whole-number text, floats truncated).
pub(crate) fn int_value(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A column of epoch milliseconds as a time.
pub(crate) fn ms_time(value: Option<&Value>) -> Option<DateTime<Utc>> {
    ms_time_i64(int_value(value))
}

/// Epoch milliseconds as a time.
pub(crate) fn ms_time_i64(ms: Option<i64>) -> Option<DateTime<Utc>> {
    ms.and_then(|ms| Utc.timestamp_millis_opt(ms).single())
}

/// Parses every `*_json` text column of a row into nested JSON. Returns the
/// row and its JSON text, or (the row's text, reason) when a column does not
/// parse.
pub(crate) fn expand_json_columns(
    mut row: Map<String, Value>,
) -> Result<(Map<String, Value>, String), (String, String)> {
    let mut failure = None;
    for (name, value) in row.iter_mut() {
        if !name.ends_with("_json") {
            continue;
        }
        if let Value::String(text) = value {
            match serde_json::from_str::<Value>(text) {
                Ok(parsed) => *value = parsed,
                Err(e) => {
                    failure.get_or_insert_with(|| format!("column {name} is not valid JSON: {e}"));
                }
            }
        }
    }
    let text = Value::Object(row.clone()).to_string();
    match failure {
        None => Ok((row, text)),
        Some(reason) => Err((text, reason)),
    }
}

/// An event for one table row, with its provenance: id = blake3 of
/// `id_parts` + sha256 of `row_text`, `source_uri` = `uri`, `source_offset`
/// = the row's index in the read order, `line_sha256` = sha256 of `row_text`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn row_event(
    context: &SourceContext,
    source: &'static str,
    uri: &str,
    id_parts: &[&str],
    index: u64,
    kind: EventKind,
    ts: DateTime<Utc>,
    row_text: &str,
) -> Event {
    let sha256 = sha256_hex(row_text.as_bytes());
    let mut parts: Vec<&str> = id_parts.to_vec();
    parts.push(&sha256);
    let mut event = Event::new(
        event_id(&parts),
        ts,
        kind,
        source,
        &context.ingest_id,
        context.ingested_at,
    );
    event.agent_id = context.agent_id.clone();
    event.source_uri = Some(uri.to_string());
    event.source_offset = Some(index as i64);
    event.source_line = Some(index as i64 + 1);
    event.line_sha256 = Some(sha256);
    event
}

/// A `quarantined` event for a row: `bytes` is what was stored, `index` its
/// position (`source_offset`, `source_line` = index + 1).
#[allow(clippy::too_many_arguments)]
pub(crate) fn quarantined_row(
    context: &SourceContext,
    source: &'static str,
    uri: String,
    index: u64,
    bytes: &[u8],
    reason: &str,
    session_id: Option<String>,
    ts: DateTime<Utc>,
) -> Event {
    let context = SourceContext {
        source_uri: uri,
        ..context.clone()
    };
    let line = row_line(index, index + 1, bytes.to_vec());
    quarantined(&context, source, &line, reason, session_id, ts)
}

/// A [`Line`] for a record that is a table row: complete (`terminated`),
/// and as long as it would be as a JSONL line with its newline.
fn row_line(offset: u64, number: u64, bytes: Vec<u8>) -> Line {
    Line {
        offset,
        number,
        len: bytes.len() as u64 + 1,
        bytes,
        terminated: true,
    }
}

/// `file://` URI of a path (absolute when it can be resolved).
pub(crate) fn file_uri(path: &Path) -> String {
    let absolute = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    format!("file://{}", absolute.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::collections::HashSet;

    use tempfile::TempDir;

    const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/sqlite");

    fn context(agent: Option<&str>) -> SourceContext {
        SourceContext {
            source_uri: String::new(),
            agent_id: agent.map(str::to_string),
            session_id_hint: None,
            ingest_id: "test-ingest".into(),
            ingested_at: Utc.timestamp_opt(1_800_000_000, 0).unwrap(),
            max_line_bytes: transcript::DEFAULT_MAX_LINE_BYTES,
        }
    }

    /// Decompresses `relative` (a `.zst` under tests/data/sqlite) to
    /// `dir/<target>`, creating parent directories.
    fn unpack(dir: &Path, relative: &str, target: &str) -> PathBuf {
        let data = fs::read(Path::new(DATA).join(relative)).unwrap();
        let bytes = zstd::decode_all(&data[..]).unwrap();
        let out = dir.join(target);
        fs::create_dir_all(out.parent().unwrap()).unwrap();
        fs::write(&out, bytes).unwrap();
        out
    }

    fn ops_store(dir: &TempDir) -> PathBuf {
        unpack(
            dir.path(),
            "openclaw-2026.9.6/agents/ops/agent/openclaw-agent.sqlite.zst",
            "agents/ops/agent/openclaw-agent.sqlite",
        )
    }

    fn main_store(dir: &TempDir) -> PathBuf {
        unpack(
            dir.path(),
            "openclaw-2026.9.6/agents/main/agent/openclaw-agent.sqlite.zst",
            "agents/main/agent/openclaw-agent.sqlite",
        )
    }

    fn count(path: &Path, sql: &str) -> u64 {
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap() as u64
    }

    /// Events a transcript row yields: one, plus one per `toolCall` block of
    /// an assistant message.
    fn expected_transcript_events(path: &Path, filter: &str) -> u64 {
        count(
            path,
            &format!("SELECT count(*) FROM transcript_events WHERE {filter}"),
        ) + count(
            path,
            &format!(
                "SELECT count(*) FROM transcript_events t, \
                 json_each(json_extract(t.event_json, '$.message.content')) b \
                 WHERE {filter} AND json_extract(t.event_json, '$.message.role') = 'assistant' \
                 AND json_extract(b.value, '$.type') = 'toolCall'"
            ),
        )
    }

    fn of_source<'e>(events: &'e [Event], source: &str) -> Vec<&'e Event> {
        events.iter().filter(|e| e.source == source).collect()
    }

    #[test]
    fn ops_store_yields_every_transcript_row_with_tool_calls_and_the_exit_3_result() {
        let dir = TempDir::new().unwrap();
        let path = ops_store(&dir);
        let (events, stats) = read_agent_store(&path, &context(None)).unwrap();
        assert_eq!(stats.format_version, Some(23));
        assert_eq!(stats.quarantined, 0, "{:?}", stats.notes);

        let transcript = of_source(&events, transcript::SOURCE);
        assert_eq!(
            transcript.len() as u64,
            expected_transcript_events(&path, "1")
        );
        let sessions: HashSet<_> = transcript
            .iter()
            .filter_map(|e| e.session_id.as_deref())
            .collect();
        assert_eq!(
            sessions.len() as u64,
            count(
                &path,
                "SELECT count(DISTINCT session_id) FROM transcript_events"
            )
        );
        assert!(transcript
            .iter()
            .all(|e| e.agent_id.as_deref() == Some("ops")));
        // seq is the SQLite seq; provenance names the table and session.
        let header = transcript
            .iter()
            .find(|e| e.kind == EventKind::SessionStart)
            .unwrap();
        assert_eq!(header.seq, Some(0));
        let session = header.session_id.as_deref().unwrap();
        assert!(header
            .source_uri
            .as_deref()
            .unwrap()
            .starts_with("file:///"));
        assert!(header.source_uri.as_deref().unwrap().ends_with(&format!(
            "openclaw-agent.sqlite#transcript_events/{session}"
        )));
        let max_seq = count(
            &path,
            &format!("SELECT max(seq) FROM transcript_events WHERE session_id = '{session}'"),
        ) as i64;
        let seqs: Vec<i64> = transcript
            .iter()
            .filter(|e| e.session_id.as_deref() == Some(session) && e.raw.is_some())
            .map(|e| e.seq.unwrap())
            .collect();
        assert_eq!(seqs, (0..=max_seq).collect::<Vec<_>>());

        let call = transcript
            .iter()
            .find(|e| e.kind == EventKind::ToolCall && e.tool_name.as_deref() == Some("exec"))
            .expect("exec tool call");
        assert!(call.tool_args.as_deref().unwrap().contains("exit 3"));
        let result = transcript
            .iter()
            .find(|e| e.kind == EventKind::ToolResult && e.tool_call_id == call.tool_call_id)
            .expect("exec tool result");
        assert!(result
            .text
            .as_deref()
            .unwrap()
            .contains("Command exited with code 3"));
        let raw: Value = serde_json::from_str(result.raw.as_deref().unwrap()).unwrap();
        assert_eq!(raw["message"]["details"]["exitCode"], 3);
        // OpenClaw 2026.9.6 reports this failure with isError:false and
        // details.status "completed": only the exit code tells.
        assert_eq!(raw["message"]["isError"], false);

        // Trajectory runtime events and session rows.
        let runtime = of_source(&events, SOURCE_RUNTIME);
        let runtime_rows = count(&path, "SELECT count(*) FROM trajectory_runtime_events");
        let session_rows = count(&path, "SELECT count(*) FROM session_windows")
            + count(&path, "SELECT count(*) FROM session_nodes");
        assert_eq!(runtime.len() as u64, runtime_rows + session_rows);
        assert_eq!(
            runtime
                .iter()
                .filter(|e| e.kind == EventKind::SessionInfo)
                .count() as u64,
            session_rows
        );
        let tool_call = runtime
            .iter()
            .find(|e| e.role.as_deref() == Some("tool.call"))
            .unwrap();
        assert_eq!(tool_call.tool_call_id, call.tool_call_id);
        assert!(tool_call.run_id.is_some());
        assert_eq!(
            tool_call.session_key.as_deref(),
            Some("agent:ops:ops-tools")
        );
        let window = runtime
            .iter()
            .find(|e| e.role.as_deref() == Some("session_windows"))
            .unwrap();
        assert!(window
            .session_key
            .as_deref()
            .unwrap()
            .starts_with("agent:ops:"));
        let attributes: Value =
            serde_json::from_str(window.attributes.as_deref().unwrap()).unwrap();
        assert_eq!(
            attributes["session_id"].as_str(),
            window.session_id.as_deref()
        );

        let ids: HashSet<_> = events.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(ids.len(), events.len(), "ids are unique");
        assert_eq!(stats.events, events.len() as u64);
    }

    #[test]
    fn reading_twice_gives_the_same_ids() {
        let dir = TempDir::new().unwrap();
        let path = ops_store(&dir);
        let (first, _) = read_agent_store(&path, &context(Some("ops"))).unwrap();
        let (second, _) = read_agent_store(&path, &context(None)).unwrap();
        let ids = |events: &[Event]| {
            events
                .iter()
                .map(|e| e.event_id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&first), ids(&second));
    }

    #[test]
    fn main_store_yields_the_fallback_session_failures_and_the_cloud_success() {
        let dir = TempDir::new().unwrap();
        let path = main_store(&dir);
        let (events, stats) = read_agent_store(&path, &context(Some("main"))).unwrap();
        assert_eq!(stats.quarantined, 0, "{:?}", stats.notes);
        let session = "dc7a1c1d-ec72-4516-81d9-7fdcf11f8a3c"; // agent:main:fallback-500
        let in_session: Vec<&Event> = events
            .iter()
            .filter(|e| e.session_id.as_deref() == Some(session))
            .collect();
        assert_eq!(
            in_session
                .iter()
                .filter(|e| e.source == transcript::SOURCE)
                .count() as u64,
            expected_transcript_events(&path, &format!("session_id = '{session}'"))
        );
        // The transcript holds the successful calls only.
        let llm_calls: Vec<_> = in_session
            .iter()
            .filter(|e| e.kind == EventKind::LlmCall)
            .collect();
        assert!(llm_calls
            .iter()
            .any(|e| e.provider.as_deref() == Some("cloudstub")
                && e.stop_reason.as_deref() == Some("stop")));
        assert!(llm_calls
            .iter()
            .all(|e| e.stop_reason.as_deref() == Some("stop")));
        // The failed ollama attempts are model.completed runtime events.
        let completed: Vec<_> = in_session
            .iter()
            .filter(|e| e.role.as_deref() == Some("model.completed"))
            .collect();
        assert_eq!(
            completed.len() as u64,
            count(
                &path,
                &format!(
                    "SELECT count(*) FROM trajectory_runtime_events WHERE session_id = '{session}' \
                     AND json_extract(event_json, '$.type') = 'model.completed'"
                )
            )
        );
        let failed: Vec<_> = completed
            .iter()
            .filter(|e| e.status.as_deref() == Some("error"))
            .collect();
        assert_eq!(
            failed.len() as u64,
            count(
                &path,
                &format!(
                    "SELECT count(*) FROM trajectory_runtime_events WHERE session_id = '{session}' \
                     AND json_extract(event_json, '$.type') = 'model.completed' \
                     AND json_extract(event_json, '$.data.stopReason') = 'error'"
                )
            )
        );
        assert!(!failed.is_empty());
        for event in &failed {
            assert_eq!(event.kind, EventKind::Custom);
            assert_eq!(event.provider.as_deref(), Some("ollama"));
            assert_eq!(event.stop_reason.as_deref(), Some("error"));
            assert!(
                event.error.as_deref().unwrap().starts_with("500 "),
                "{:?}",
                event.error
            );
            assert!(event.run_id.is_some());
        }
        let cloud = completed
            .iter()
            .find(|e| e.provider.as_deref() == Some("cloudstub"))
            .unwrap();
        assert_eq!(cloud.status.as_deref(), Some("ok"));
        assert!(cloud.input_tokens.unwrap() > 0);
        assert!(cloud.text.as_deref().unwrap().contains("cloud stub"));

        // The all-fail session's last failure is an llm_call of the transcript.
        assert!(events.iter().any(|e| e.kind == EventKind::LlmCall
            && e.stop_reason.as_deref() == Some("error")
            && e.error.as_deref().is_some_and(|m| m.starts_with("500 "))));
    }

    #[test]
    fn archived_session_gives_the_same_ids_as_the_deleted_jsonl_file() {
        let dir = TempDir::new().unwrap();
        let path = main_store(&dir);
        let (events, _) = read_agent_store(&path, &context(Some("main"))).unwrap();
        let session = "552236ed-33bc-4bfb-b20f-7bfb5057fbe1"; // deleted fallback-429
        let from_store: Vec<&Event> = events
            .iter()
            .filter(|e| e.session_id.as_deref() == Some(session))
            .collect();
        assert!(!from_store.is_empty());
        assert!(from_store[0]
            .source_uri
            .as_deref()
            .unwrap()
            .contains("#session_transcript_archives/"));

        let name = "552236ed-33bc-4bfb-b20f-7bfb5057fbe1.jsonl.deleted.2026-11-22T02-28-39.182Z.bdb047c4401f4b4aac3ebc9dcab404fe";
        let file = unpack(
            dir.path(),
            &format!("openclaw-2026.9.6/agents/main/sessions/{name}.zst"),
            &format!("agents/main/sessions/{name}"),
        );
        let file_context = SourceContext {
            source_uri: file_uri(&file),
            agent_id: crate::discover::agent_id_from_path(&file),
            session_id_hint: Some(crate::discover::session_id_from_file_name(&file)),
            ..context(None)
        };
        let (from_file, _) =
            transcript::read_transcript(&fs::read(&file).unwrap()[..], &file_context).unwrap();
        let store_ids: Vec<_> = from_store.iter().map(|e| e.event_id.as_str()).collect();
        let file_ids: Vec<_> = from_file.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(store_ids, file_ids);
        assert_eq!(from_store.len(), from_file.len());
        // The rows of that session are gone from transcript_events.
        assert_eq!(
            count(
                &path,
                &format!("SELECT count(*) FROM transcript_events WHERE session_id = '{session}'")
            ),
            0
        );
    }

    /// (seq, event_json, event_zstd, event_utf8_bytes)
    type SyntheticRow<'a> = (i64, Option<&'a [u8]>, Option<Vec<u8>>, Option<i64>);

    /// A minimal schema-23 store with the given transcript rows.
    fn synthetic_store(path: &Path, rows: &[SyntheticRow<'_>]) {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA user_version = 23;
             CREATE TABLE schema_meta (meta_key TEXT PRIMARY KEY, role TEXT NOT NULL,
               schema_version INTEGER NOT NULL, agent_id TEXT, app_version TEXT,
               created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
             INSERT INTO schema_meta VALUES ('primary', 'agent', 23, 'syn', '2026.9.6', 0, 0);
             CREATE TABLE transcript_events (session_id TEXT NOT NULL, seq INTEGER NOT NULL,
               event_json TEXT, created_at INTEGER NOT NULL, event_zstd BLOB,
               event_utf8_bytes INTEGER, navigation_json TEXT, PRIMARY KEY (session_id, seq));
             CREATE TABLE trajectory_runtime_events (session_id TEXT NOT NULL, seq INTEGER NOT NULL,
               run_id TEXT, event_json TEXT NOT NULL, created_at INTEGER NOT NULL,
               PRIMARY KEY (session_id, seq));",
        )
        .unwrap();
        for (seq, json, zstd, utf8) in rows {
            conn.execute(
                "INSERT INTO transcript_events (session_id, seq, event_json, created_at, event_zstd, event_utf8_bytes)
                 VALUES ('s1', ?1, ?2, 1795314479009, ?3, ?4)",
                rusqlite::params![seq, json.map(|j| String::from_utf8_lossy(j).into_owned()), zstd, utf8],
            )
            .unwrap();
        }
        conn.execute(
            "INSERT INTO trajectory_runtime_events VALUES ('s1', 0, 'r1', '{not json', 1795314479009)",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO trajectory_runtime_events VALUES ('s1', 1, NULL, ?1, 1795314479010)",
            [r#"{"traceSchema":"openclaw-trajectory","schemaVersion":1,"type":"model.fallback_step","ts":"2026-11-22T02:29:29.194Z","runId":"r2","provider":"ollama","modelId":"qwen3:8b","data":{"fallbackStepFromModel":"ollama/qwen3:8b","fallbackStepToModel":"openrouter/meta/llama-3","fallbackStepFromFailureReason":"rate_limit","fallbackStepFromFailureDetail":"429 slow down","fallbackStepChainPosition":1,"fallbackStepFinalOutcome":"next_fallback"}}"#],
        )
        .unwrap();
    }

    const HEADER: &[u8] = br#"{"type":"session","version":4,"id":"s1","timestamp":"2026-11-22T02:27:59.009Z","cwd":"/w"}"#;
    const USER: &[u8] = br#"{"type":"message","id":"u1","parentId":null,"timestamp":"2026-11-22T02:27:59.187Z","message":{"role":"user","content":"hi","timestamp":1795314476921}}"#;
    const LABEL: &[u8] = br#"{"type":"label","id":"l1","parentId":"u1","timestamp":"2026-11-22T02:28:00.000Z","label":"x"}"#;

    #[test]
    fn corrupt_zstd_and_invalid_json_rows_are_quarantined_and_reading_goes_on() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("agents/syn/agent/openclaw-agent.sqlite");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let good_zstd = zstd::encode_all(USER, 3).unwrap();
        synthetic_store(
            &path,
            &[
                (0, Some(HEADER), None, Some(HEADER.len() as i64)),
                (1, None, Some(good_zstd), Some(USER.len() as i64)),
                (2, None, Some(b"\x28\xb5\x2f\xfdgarbage".to_vec()), Some(10)),
                (3, Some(b"{\"type\":\"label\",".as_slice()), None, None),
                (4, None, Some(zstd::encode_all(LABEL, 3).unwrap()), Some(5)),
                (5, Some(LABEL), None, None),
            ],
        );
        let (events, stats) = read_agent_store(&path, &context(None)).unwrap();
        let transcript = of_source(&events, transcript::SOURCE);
        let kinds: Vec<_> = transcript
            .iter()
            .map(|e| (e.seq.unwrap(), e.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                (0, EventKind::SessionStart),
                (1, EventKind::UserMessage),
                (2, EventKind::Quarantined),
                (3, EventKind::Quarantined),
                (4, EventKind::Quarantined),
                (5, EventKind::Label),
            ]
        );
        let reason = |seq: i64| {
            transcript
                .iter()
                .find(|e| e.seq == Some(seq))
                .and_then(|e| e.error.clone())
                .unwrap()
        };
        assert!(
            reason(2).starts_with("event_zstd does not decompress"),
            "{}",
            reason(2)
        );
        assert!(reason(3).starts_with("malformed JSON"), "{}", reason(3));
        assert!(reason(4).contains("event_utf8_bytes is 5"), "{}", reason(4));
        let bad = transcript.iter().find(|e| e.seq == Some(2)).unwrap();
        assert!(bad.raw.as_deref().unwrap().contains("event_zstd_hex"));
        assert_eq!(bad.session_id.as_deref(), Some("s1"));
        assert_eq!(bad.agent_id.as_deref(), Some("syn"));
        assert_eq!(transcript[1].text.as_deref(), Some("hi"));

        // Runtime rows: the invalid one is quarantined, the fallback step mapped.
        let runtime = of_source(&events, SOURCE_RUNTIME);
        assert_eq!(runtime[0].kind, EventKind::Quarantined);
        assert!(runtime[0]
            .error
            .as_deref()
            .unwrap()
            .starts_with("malformed JSON"));
        let step = runtime[1];
        assert_eq!(step.kind, EventKind::FallbackDecision);
        assert_eq!(step.decision.as_deref(), Some("next_fallback"));
        assert_eq!(step.status.as_deref(), Some("rate_limit"));
        assert_eq!(step.error.as_deref(), Some("429 slow down"));
        assert_eq!(step.requested_provider.as_deref(), Some("ollama"));
        assert_eq!(step.requested_model.as_deref(), Some("qwen3:8b"));
        assert_eq!(step.next_provider.as_deref(), Some("openrouter"));
        assert_eq!(step.next_model.as_deref(), Some("meta/llama-3"));
        assert_eq!(step.attempt, Some(1));
        assert_eq!(
            step.run_id.as_deref(),
            Some("r2"),
            "runId when the column is NULL"
        );
        assert_eq!(step.ts.timestamp_millis(), 1795314569194);

        assert_eq!(stats.quarantined, 4);
        assert_eq!(stats.lines, 8);
        assert_eq!(
            events
                .iter()
                .filter(|e| e.kind == EventKind::Quarantined)
                .count(),
            4
        );
    }

    #[test]
    fn transcript_rows_give_the_ids_of_the_same_jsonl_lines() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("agents/syn/agent/openclaw-agent.sqlite");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        synthetic_store(
            &path,
            &[
                (0, Some(HEADER), None, None),
                (1, Some(USER), None, None),
                (2, Some(LABEL), None, None),
            ],
        );
        let (events, _) = read_agent_store(&path, &context(None)).unwrap();
        let from_rows: Vec<_> = of_source(&events, transcript::SOURCE)
            .iter()
            .map(|e| (e.event_id.clone(), e.seq))
            .collect();
        let jsonl = [HEADER, USER, LABEL].join(&b'\n');
        let file_context = SourceContext {
            source_uri: "file:///x/agents/syn/sessions/s1.jsonl".into(),
            agent_id: Some("syn".into()),
            session_id_hint: Some("s1".into()),
            ..context(None)
        };
        let (from_file, _) = transcript::read_transcript(&jsonl[..], &file_context).unwrap();
        let from_file: Vec<_> = from_file
            .iter()
            .map(|e| (e.event_id.clone(), e.seq))
            .collect();
        assert_eq!(from_rows, from_file);
    }

    #[test]
    fn files_that_are_not_agent_stores_are_refused() {
        let dir = TempDir::new().unwrap();
        let text = dir.path().join("notes.sqlite");
        fs::write(&text, "this is not a database, just text long enough").unwrap();
        assert!(matches!(
            read_agent_store(&text, &context(None)),
            Err(AgentStoreError::NotSqlite { .. })
        ));
        let empty = dir.path().join("empty.sqlite");
        fs::write(&empty, "").unwrap();
        assert!(matches!(
            read_agent_store(&empty, &context(None)),
            Err(AgentStoreError::NotSqlite { .. })
        ));
        assert!(matches!(
            read_agent_store(&dir.path().join("missing.sqlite"), &context(None)),
            Err(AgentStoreError::Io { .. })
        ));
        let other = dir.path().join("other.sqlite");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE t (x INTEGER)")
            .unwrap();
        let error = read_agent_store(&other, &context(None)).unwrap_err();
        assert!(matches!(error, AgentStoreError::NotAgentStore { .. }));
        assert!(error.to_string().contains("not an OpenClaw agent store"));
    }

    #[test]
    fn newer_schema_versions_are_read_and_reported() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("agents/syn/agent/openclaw-agent.sqlite");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        synthetic_store(&path, &[(0, Some(HEADER), None, None)]);
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "PRAGMA user_version = 31;
                 UPDATE schema_meta SET schema_version = 31;
                 ALTER TABLE transcript_events ADD COLUMN event_hologram BLOB;",
            )
            .unwrap();
        }
        let (events, stats) = read_agent_store(&path, &context(None)).unwrap();
        assert_eq!(stats.format_version, Some(31));
        assert!(
            stats.notes.iter().any(|n| n.contains("newer")),
            "{:?}",
            stats.notes
        );
        assert!(events.iter().any(|e| e.kind == EventKind::SessionStart));
    }

    #[test]
    fn read_only_fallback_reads_the_wal_without_touching_the_source_directory() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("agents/syn/agent/openclaw-agent.sqlite");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        synthetic_store(&path, &[(0, Some(HEADER), None, None)]);
        // A writer keeps the WAL un-checkpointed while we copy the files away,
        // as a gateway stopped mid-run leaves them.
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch("PRAGMA wal_autocheckpoint = 0;")
            .unwrap();
        writer
            .execute(
                "INSERT INTO transcript_events (session_id, seq, event_json, created_at) VALUES ('s1', 1, ?1, 0)",
                [String::from_utf8_lossy(USER)],
            )
            .unwrap();
        let frozen = dir.path().join("frozen");
        fs::create_dir_all(&frozen).unwrap();
        let copy = frozen.join("openclaw-agent.sqlite");
        fs::copy(&path, &copy).unwrap();
        fs::copy(sibling(&path, "-wal"), sibling(&copy, "-wal")).unwrap();
        drop(writer);
        assert!(fs::metadata(sibling(&copy, "-wal")).unwrap().len() > 0);

        let snapshot = Snapshot::open_private_copy(&copy).unwrap();
        let rows: i64 = snapshot
            .conn
            .query_row("SELECT count(*) FROM transcript_events", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 2, "the row only in the WAL is read");
        drop(snapshot);
        let names: HashSet<String> = fs::read_dir(&frozen)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.contains("openclaw-agent.sqlite-shm"), "{names:?}");
    }

    #[cfg(unix)]
    #[test]
    fn a_store_without_wal_in_a_read_only_directory_is_read() {
        use std::os::unix::fs::PermissionsExt;

        let dir = TempDir::new().unwrap();
        let path = ops_store(&dir);
        // Count on a copy: opening the original here would leave a -shm.
        let probe_dir = TempDir::new().unwrap();
        let expected = expected_transcript_events(&ops_store(&probe_dir), "1");
        let agent_dir = path.parent().unwrap().to_path_buf();
        let original = fs::metadata(&agent_dir).unwrap().permissions();
        fs::set_permissions(&agent_dir, fs::Permissions::from_mode(0o555)).unwrap();
        // Root may write anyway; the checks on created files need a directory
        // that really refuses writes (run the tests as another user to cover it).
        let refuses_writes = fs::write(agent_dir.join("probe"), b"").is_err();
        let read = read_agent_store(&path, &context(None));
        fs::set_permissions(&agent_dir, original).unwrap();
        let (events, stats) = read.unwrap();
        assert_eq!(
            of_source(&events, transcript::SOURCE).len() as u64,
            expected,
            "{:?}",
            stats.notes
        );
        if refuses_writes {
            assert!(
                stats.notes.iter().any(|n| n.contains("immutable")),
                "{:?}",
                stats.notes
            );
            assert!(!sibling(&path, "-shm").exists());
        }
    }

    #[test]
    fn uri_paths_escape_query_and_fragment_characters() {
        assert_eq!(uri_path(Path::new("/a b/c?d#e%f")), "/a%20b/c%3Fd%23e%25f");
        let dir = TempDir::new().unwrap();
        let odd = dir.path().join("we?ird #dir");
        fs::create_dir_all(&odd).unwrap();
        let path = odd.join("openclaw-agent.sqlite");
        synthetic_store(&path, &[(0, Some(HEADER), None, None)]);
        let (events, _) = read_agent_store(&path, &context(Some("syn"))).unwrap();
        assert!(events.iter().any(|e| e.kind == EventKind::SessionStart));
    }

    #[test]
    fn agent_ids_come_from_the_store_path() {
        let path = Path::new("/h/.openclaw/agents/ops/agent/openclaw-agent.sqlite");
        assert_eq!(agent_id_from_store_path(path).as_deref(), Some("ops"));
        assert_eq!(
            agent_id_from_store_path(Path::new("/x/openclaw-agent.sqlite")),
            None
        );
    }
}
