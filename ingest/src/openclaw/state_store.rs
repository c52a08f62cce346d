//! Reader for OpenClaw's global state store (`~/.openclaw/state/openclaw.sqlite`,
//! OpenClaw ≥ 2026.9, `user_version` 18, `schema_meta` role `global`) and the
//! legacy task registry (`~/.openclaw/tasks/runs.sqlite`, OpenClaw 2026.5.x,
//! `user_version` 0, `task_runs` only).
//!
//! Format source: `shared/docs/openclaw-formats.md` §8.1 (the global "control
//! plane" database) and §9 (cron runs are no longer JSONL in 2026.9: they are
//! `cron_run_receipts` and `task_runs` rows); §3.6 for the `CronRunLogEntry`
//! shape that `task_runs.detail_json` of a cron run repeats (snake_case
//! `usage`). The test fixtures were written by openclaw 2026.9.6 and 2026.5.28
//! (`tests/data/sqlite/SOURCES.md`); the columns below are those of the DDL
//! found there.
//!
//! Mapping (one row → one event, source `openclaw_state_store`):
//!
//! | table | event |
//! |---|---|
//! | `cron_jobs` | `custom`, `role` `cron_job`: `text` = `name`, `agent_id` = `agent_id` (else `owner_agent_id`), `status`/`error` = `state_json.lastRunStatus`/`lastError`, `subsystem` `cron`, `ts` = `updated_at` |
//! | `cron_run_receipts` | `cron_run`, `role` `cron_run_receipt`: `status`, `error` = `error_text`, `run_id` = `request_run_id` (the id `openclaw cron runs` shows), `latency_ms` = `finished_at_ms − started_at_ms`, `ts` = `started_at_ms`, `agent_id`; from the linked cron `task_runs` row: `session_id` = `detail_json.sessionId`, `session_key` = `child_session_key`, `provider`/`model`, tokens from `detail_json.usage` (`input_tokens`, `output_tokens`, `cache_read_tokens`, `cache_write_tokens`), `text` = `detail_json.summary`. `attributes` = the receipt row plus `"task_run"`: the linked row |
//! | `task_runs`, `runtime = 'cron'` **without** a receipt in the same file (the legacy registry, or receipts pruned) | `cron_run`, `role` `task_run`, filled as above from the row and its `detail_json` |
//! | every other `task_runs` row (`cli`, `subagent`, …, and cron runs that have a receipt) | `custom`, `role` `task_run` |
//! | a row whose `*_json` column is not valid JSON | `quarantined` |
//!
//! Every `task_runs` event: `status`, `error`, `run_id` (for `cli` runs the
//! agent run id, the `run_id` of the trajectory events), `session_key` =
//! `child_session_key` (else `requester_session_key`), `agent_id`,
//! `subsystem` = `runtime`, `text` = `task` (the prompt) for `custom` and the
//! run summary for `cron_run`, `latency_ms` = `ended_at − started_at`, `ts` =
//! `started_at` (else `created_at`), `channel` = `task_delivery_state.
//! requester_origin_json.channel` when present.
//!
//! A cron run is thus one `cron_run` event (the receipt) plus one `task_run`
//! custom event; linked by the receipt id inside `task_runs.run_id`
//! (`cron:<jobId>:<startedAtMs>:<receiptId>:<requestRunId>`), else by
//! `detail_json.runId = request_run_id` and `source_id = job_id`.
//!
//! Ids: blake3(source, agent, table, primary key, sha256 of `attributes`), so
//! a changed row (a running receipt that finishes) is a new event.
//! `attributes` = the row as a JSON object with `*_json` columns nested.
//! Opening follows the rules of [`crate::openclaw::agent_store`]: read-only,
//! one read transaction, WAL content read even from a read-only directory.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use thiserror::Error;
use trajectory_schema::{Event, EventKind};

use crate::jsonl::{int_field, str_field, ReadStats, SourceContext};
use crate::locality::locality_of_provider;
use crate::openclaw::agent_store::{
    columns, expand_json_columns, file_uri, int_value, ms_time, quarantined_row, read_rows,
    row_event, schema_meta, table_names, text_value, user_version, OpenFailure, Snapshot,
};

/// The `source` column of this reader's events.
pub const SOURCE: &str = "openclaw_state_store";

/// The newest global state schema version this reader has seen (openclaw 2026.9.6).
pub const NEWEST_KNOWN_VERSION: i64 = 18;

/// Columns a `task_runs` table must have to be read.
const TASK_RUN_COLUMNS: [&str; 5] = ["task_id", "runtime", "task", "status", "created_at"];

/// Why a store could not be read at all. Bad rows never fail a read.
#[derive(Debug, Error)]
pub enum StateStoreError {
    /// The file cannot be opened or read.
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
    /// A SQLite database, but neither the global state store nor the legacy
    /// task registry.
    #[error("{} is not a recognised OpenClaw state store: {reason}", path.display())]
    NotRecognised { path: PathBuf, reason: String },
}

/// Which kind of store was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// `state/openclaw.sqlite`.
    Global,
    /// `tasks/runs.sqlite` (task_runs only).
    LegacyTasks,
}

/// Reads the cron jobs, cron run receipts and task runs of a global state
/// store, or the task runs of a legacy task registry.
///
/// `context.source_uri` is the store's `file://` URI (computed from `path`
/// when empty); events get `<uri>#<table>/<key>`. `context.agent_id` is used
/// for rows that name no agent. `stats.format_version` is `PRAGMA
/// user_version` (else `schema_meta.schema_version`; `None` for the legacy
/// registry, which has neither); `stats.lines` counts rows read.
///
/// Errors: only when the file cannot be opened, is not SQLite, or is not one
/// of the two recognised stores. A table that fails half-way is reported in
/// `stats.notes` and reading goes on.
pub fn read_state_store(
    path: &Path,
    context: &SourceContext,
) -> Result<(Vec<Event>, ReadStats), StateStoreError> {
    let snapshot = Snapshot::open(path).map_err(|failure| match failure {
        OpenFailure::Io(source) => StateStoreError::Io {
            path: path.to_path_buf(),
            source,
        },
        OpenFailure::NotSqlite => StateStoreError::NotSqlite {
            path: path.to_path_buf(),
        },
        OpenFailure::Sqlite(source) => StateStoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        },
    })?;
    let sql_error = |source| StateStoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    let conn = &snapshot.conn;
    conn.execute_batch("BEGIN DEFERRED").map_err(sql_error)?;
    let tables = table_names(conn).map_err(sql_error)?;
    let user_version = user_version(conn).map_err(sql_error)?;
    let meta = schema_meta(conn, &tables);
    let has_task_runs = tables.contains("task_runs") && {
        let present = columns(conn, "task_runs").map_err(sql_error)?;
        TASK_RUN_COLUMNS
            .iter()
            .all(|c| present.iter().any(|p| p == c))
    };
    let role = meta.as_ref().and_then(|m| m.role.as_deref());
    let layout = match role {
        Some("global") => Layout::Global,
        Some(role) => {
            return Err(StateStoreError::NotRecognised {
                path: path.to_path_buf(),
                reason: format!(
                    "schema_meta role is {role:?}, not \"global\"{}",
                    if role == "agent" {
                        " (a per-agent store: read it with agent_store)"
                    } else {
                        ""
                    }
                ),
            })
        }
        None if tables.contains("cron_run_receipts") || tables.contains("cron_jobs") => {
            Layout::Global
        }
        None if has_task_runs => Layout::LegacyTasks,
        None => {
            return Err(StateStoreError::NotRecognised {
                path: path.to_path_buf(),
                reason: format!(
                    "no schema_meta row with role \"global\", no cron tables, and no task_runs \
                     table with the columns {}",
                    TASK_RUN_COLUMNS.join(", ")
                ),
            })
        }
    };

    let mut stats = ReadStats::default();
    stats.notes.extend(snapshot.notes.iter().cloned());
    let meta_version = meta.as_ref().and_then(|m| m.schema_version);
    stats.format_version = if user_version > 0 {
        Some(user_version)
    } else {
        meta_version
    };
    match (layout, stats.format_version) {
        (Layout::LegacyTasks, _) => stats.notes.push(
            "legacy task registry (tasks/runs.sqlite of OpenClaw 2026.5): task_runs only".into(),
        ),
        (Layout::Global, Some(v)) if v > NEWEST_KNOWN_VERSION => stats.notes.push(format!(
            "state schema version {v} is newer than {NEWEST_KNOWN_VERSION}; read the tables and columns that are present"
        )),
        _ => {}
    }
    if tables.contains("task_runs") && !has_task_runs {
        stats.notes.push(format!(
            "table task_runs lacks one of {}; skipped",
            TASK_RUN_COLUMNS.join(", ")
        ));
    }

    let mut context = context.clone();
    if context.source_uri.is_empty() {
        context.source_uri = file_uri(path);
    }
    let mut reader = StateReader {
        context: &context,
        stats,
        events: Vec::new(),
    };
    let tasks = if has_task_runs {
        reader.load_tasks(conn, &tables)
    } else {
        Vec::new()
    };
    let mut linked = vec![false; tasks.len()];
    if tables.contains("cron_jobs") {
        match read_rows(conn, "cron_jobs", &["sort_order", "store_key", "job_id"]) {
            Ok(rows) => reader.read_cron_jobs(rows),
            Err(e) => reader.note_table_error("cron_jobs", &e),
        }
    }
    if tables.contains("cron_run_receipts") {
        match read_rows(conn, "cron_run_receipts", &["started_at_ms", "receipt_id"]) {
            Ok(rows) => reader.read_receipts(rows, &tasks, &mut linked),
            Err(e) => reader.note_table_error("cron_run_receipts", &e),
        }
    }
    reader.read_tasks(&tasks, &linked);
    let StateReader {
        mut stats, events, ..
    } = reader;
    let _ = conn.execute_batch("COMMIT");
    stats.events = events.len() as u64;
    Ok((events, stats))
}

/// A `task_runs` row as read: its expanded JSON (or the failure) and the
/// delivery state row of the same task.
struct TaskRow {
    index: usize,
    task_id: String,
    row: Result<(Map<String, Value>, String), (String, String)>,
    delivery: Option<Map<String, Value>>,
}

impl TaskRow {
    fn fields(&self) -> Option<&Map<String, Value>> {
        self.row.as_ref().ok().map(|(row, _)| row)
    }

    /// The `CronRunLogEntry` in `detail_json`, if any.
    fn detail(&self) -> Option<&Map<String, Value>> {
        self.fields()?.get("detail_json")?.as_object()
    }

    fn is_cron(&self) -> bool {
        self.fields()
            .and_then(|r| text_value(r.get("runtime")))
            .as_deref()
            == Some("cron")
    }
}

struct StateReader<'a> {
    context: &'a SourceContext,
    stats: ReadStats,
    events: Vec<Event>,
}

impl StateReader<'_> {
    fn note_table_error(&mut self, table: &str, error: &rusqlite::Error) {
        self.stats
            .notes
            .push(format!("table {table} could not be read: {error}"));
    }

    fn uri(&self, fragment: &str) -> String {
        format!("{}#{fragment}", self.context.source_uri)
    }

    fn agent_of(&self, row: &Map<String, Value>, columns: &[&str]) -> Option<String> {
        columns
            .iter()
            .find_map(|c| text_value(row.get(*c)))
            .or_else(|| self.context.agent_id.clone())
    }

    fn load_tasks(
        &mut self,
        conn: &rusqlite::Connection,
        tables: &BTreeSet<String>,
    ) -> Vec<TaskRow> {
        let rows = match read_rows(conn, "task_runs", &["created_at", "task_id"]) {
            Ok(rows) => rows,
            Err(e) => {
                self.note_table_error("task_runs", &e);
                return Vec::new();
            }
        };
        let mut deliveries: HashMap<String, Map<String, Value>> = HashMap::new();
        if tables.contains("task_delivery_state") {
            match read_rows(conn, "task_delivery_state", &["task_id"]) {
                Ok(rows) => {
                    for row in rows {
                        if let (Some(id), Ok((row, _))) =
                            (text_value(row.get("task_id")), expand_json_columns(row))
                        {
                            deliveries.insert(id, row);
                        }
                    }
                }
                Err(e) => self.note_table_error("task_delivery_state", &e),
            }
        }
        rows.into_iter()
            .enumerate()
            .map(|(index, row)| {
                let task_id = text_value(row.get("task_id")).unwrap_or_default();
                TaskRow {
                    index,
                    delivery: deliveries.remove(&task_id),
                    task_id,
                    row: expand_json_columns(row),
                }
            })
            .collect()
    }

    /// Quarantines a row whose JSON columns do not parse.
    fn quarantine(
        &mut self,
        table: &str,
        key: &str,
        index: usize,
        text: &str,
        reason: &str,
        ts: Option<DateTime<Utc>>,
    ) {
        self.stats.quarantined += 1;
        self.events.push(quarantined_row(
            self.context,
            SOURCE,
            self.uri(&format!("{table}/{key}")),
            index as u64,
            text.as_bytes(),
            reason,
            None,
            ts.unwrap_or(self.context.ingested_at),
        ));
    }

    fn read_cron_jobs(&mut self, rows: Vec<Map<String, Value>>) {
        for (index, row) in rows.into_iter().enumerate() {
            self.stats.lines += 1;
            let store_key = text_value(row.get("store_key")).unwrap_or_default();
            let job_id = text_value(row.get("job_id")).unwrap_or_default();
            let updated = ms_time(row.get("updated_at"));
            let (row, text) = match expand_json_columns(row) {
                Ok(expanded) => expanded,
                Err((text, reason)) => {
                    self.stats.bytes += text.len() as u64;
                    self.quarantine("cron_jobs", &job_id, index, &text, &reason, updated);
                    continue;
                }
            };
            self.stats.bytes += text.len() as u64;
            let created = row
                .get("job_json")
                .and_then(|j| j.get("createdAtMs"))
                .and_then(|v| ms_time(Some(v)));
            let ts = updated.or(created).unwrap_or(self.context.ingested_at);
            let mut event = row_event(
                self.context,
                SOURCE,
                &self.uri(&format!("cron_jobs/{job_id}")),
                &[SOURCE, "", "cron_jobs", &store_key, &job_id],
                index as u64,
                EventKind::Custom,
                ts,
                &text,
            );
            event.role = Some("cron_job".into());
            event.subsystem = Some("cron".into());
            event.agent_id = self.agent_of(&row, &["agent_id", "owner_agent_id"]);
            event.text = text_value(row.get("name"));
            if let Some(Value::Object(state)) = row.get("state_json") {
                event.status =
                    str_field(state, "lastRunStatus").or_else(|| str_field(state, "lastStatus"));
                event.error = str_field(state, "lastError");
            }
            event.attributes = Some(text);
            self.events.push(event);
        }
    }

    fn read_receipts(
        &mut self,
        rows: Vec<Map<String, Value>>,
        tasks: &[TaskRow],
        linked: &mut [bool],
    ) {
        for (index, row) in rows.into_iter().enumerate() {
            self.stats.lines += 1;
            let receipt_id = text_value(row.get("receipt_id")).unwrap_or_default();
            let started = ms_time(row.get("started_at_ms"));
            let (mut row, text) = match expand_json_columns(row) {
                Ok(expanded) => expanded,
                Err((text, reason)) => {
                    self.stats.bytes += text.len() as u64;
                    self.quarantine(
                        "cron_run_receipts",
                        &receipt_id,
                        index,
                        &text,
                        &reason,
                        started,
                    );
                    continue;
                }
            };
            self.stats.bytes += text.len() as u64;
            let request_run_id = text_value(row.get("request_run_id"));
            let job_id = text_value(row.get("job_id"));
            let task = tasks.iter().position(|task| {
                task.is_cron()
                    && links(
                        task,
                        &receipt_id,
                        request_run_id.as_deref(),
                        job_id.as_deref(),
                    )
            });
            if let Some(position) = task {
                linked[position] = true;
                if let Some(fields) = tasks[position].fields() {
                    row.insert("task_run".into(), Value::Object(fields.clone()));
                }
            }
            let attributes = Value::Object(row.clone()).to_string();
            let mut event = row_event(
                self.context,
                SOURCE,
                &self.uri(&format!("cron_run_receipts/{receipt_id}")),
                &[SOURCE, "", "cron_run_receipts", &receipt_id],
                index as u64,
                EventKind::CronRun,
                started.unwrap_or(self.context.ingested_at),
                &attributes,
            );
            event.role = Some("cron_run_receipt".into());
            event.subsystem = Some("cron".into());
            event.agent_id = self.agent_of(&row, &["agent_id"]);
            event.status = text_value(row.get("status"));
            event.error = text_value(row.get("error_text"));
            event.run_id = request_run_id.or_else(|| Some(receipt_id.clone()));
            event.latency_ms = duration(
                int_value(row.get("started_at_ms")),
                int_value(row.get("finished_at_ms")),
            );
            if let Some(task) = task.map(|p| &tasks[p]) {
                if let Some(fields) = task.fields() {
                    event.session_key = text_value(fields.get("child_session_key"));
                    if event.agent_id.is_none() {
                        event.agent_id = text_value(fields.get("agent_id"));
                    }
                }
                if let Some(detail) = task.detail() {
                    fill_from_run_detail(&mut event, detail);
                }
            }
            event.attributes = Some(attributes);
            self.events.push(event);
        }
    }

    fn read_tasks(&mut self, tasks: &[TaskRow], linked: &[bool]) {
        for (task, &has_receipt) in tasks.iter().zip(linked) {
            self.stats.lines += 1;
            let (row, text) = match &task.row {
                Ok(expanded) => expanded,
                Err((text, reason)) => {
                    self.stats.bytes += text.len() as u64;
                    let (text, reason) = (text.clone(), reason.clone());
                    self.quarantine("task_runs", &task.task_id, task.index, &text, &reason, None);
                    continue;
                }
            };
            let mut attributes = row.clone();
            if let Some(delivery) = &task.delivery {
                attributes.insert("delivery_state".into(), Value::Object(delivery.clone()));
            }
            let attributes_text = if task.delivery.is_some() {
                Value::Object(attributes).to_string()
            } else {
                text.clone()
            };
            self.stats.bytes += attributes_text.len() as u64;
            let cron_run = task.is_cron() && !has_receipt;
            let ts = ms_time(row.get("started_at"))
                .or_else(|| ms_time(row.get("created_at")))
                .unwrap_or(self.context.ingested_at);
            let mut event = row_event(
                self.context,
                SOURCE,
                &self.uri(&format!("task_runs/{}", task.task_id)),
                &[SOURCE, "", "task_runs", &task.task_id],
                task.index as u64,
                if cron_run {
                    EventKind::CronRun
                } else {
                    EventKind::Custom
                },
                ts,
                &attributes_text,
            );
            event.role = Some("task_run".into());
            event.subsystem = text_value(row.get("runtime"));
            event.agent_id = self.agent_of(row, &["agent_id", "requester_agent_id"]);
            event.status = text_value(row.get("status"));
            event.error = text_value(row.get("error"));
            event.run_id = text_value(row.get("run_id"));
            event.session_key = text_value(row.get("child_session_key"))
                .or_else(|| text_value(row.get("requester_session_key")));
            event.latency_ms = duration(
                int_value(row.get("started_at")),
                int_value(row.get("ended_at")),
            );
            event.channel = task
                .delivery
                .as_ref()
                .and_then(|d| d.get("requester_origin_json"))
                .and_then(|o| o.get("channel"))
                .and_then(Value::as_str)
                .map(str::to_string);
            if cron_run {
                event.text = text_value(row.get("terminal_summary"))
                    .or_else(|| text_value(row.get("progress_summary")));
                if let Some(detail) = task.detail() {
                    fill_from_run_detail(&mut event, detail);
                }
            } else {
                event.text = text_value(row.get("task"));
            }
            event.attributes = Some(attributes_text);
            self.events.push(event);
        }
    }
}

/// Whether a cron `task_runs` row belongs to the receipt: its `run_id`
/// (`cron:<jobId>:<startedAtMs>:<receiptId>:…`) names the receipt, or its
/// `detail_json.runId` and `source_id` match the receipt's request run and job.
fn links(
    task: &TaskRow,
    receipt_id: &str,
    request_run_id: Option<&str>,
    job_id: Option<&str>,
) -> bool {
    let Some(fields) = task.fields() else {
        return false;
    };
    if !receipt_id.is_empty()
        && text_value(fields.get("run_id"))
            .is_some_and(|run| run.split(':').any(|part| part == receipt_id))
    {
        return true;
    }
    let detail_run = task.detail().and_then(|d| str_field(d, "runId"));
    request_run_id.is_some()
        && detail_run.as_deref() == request_run_id
        && text_value(fields.get("source_id")).as_deref() == job_id
}

/// Fills a cron run from its `CronRunLogEntry` (`task_runs.detail_json`):
/// session, model, snake_case usage, summary, and duration/error when the
/// row has none.
fn fill_from_run_detail(event: &mut Event, detail: &Map<String, Value>) {
    event.session_id = event
        .session_id
        .take()
        .or_else(|| str_field(detail, "sessionId"));
    if event.session_key.is_none() {
        event.session_key = str_field(detail, "sessionKey");
    }
    event.provider = str_field(detail, "provider");
    event.model = str_field(detail, "model");
    event.locality = event.provider.as_deref().map(locality_of_provider);
    if let Some(Value::Object(usage)) = detail.get("usage") {
        event.input_tokens = int_field(usage, "input_tokens").or_else(|| int_field(usage, "input"));
        event.output_tokens =
            int_field(usage, "output_tokens").or_else(|| int_field(usage, "output"));
        event.cache_read_tokens =
            int_field(usage, "cache_read_tokens").or_else(|| int_field(usage, "cacheRead"));
        event.cache_write_tokens =
            int_field(usage, "cache_write_tokens").or_else(|| int_field(usage, "cacheWrite"));
    }
    if event.latency_ms.is_none() {
        event.latency_ms = int_field(detail, "durationMs");
    }
    if event.text.is_none() {
        event.text = str_field(detail, "summary");
    }
    if event.error.is_none() {
        event.error = str_field(detail, "error");
    }
}

/// `end − start` in ms when both are known and not negative.
fn duration(start: Option<i64>, end: Option<i64>) -> Option<i64> {
    let (start, end) = (start?, end?);
    end.checked_sub(start).filter(|d| *d >= 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::fs;

    use chrono::TimeZone;
    use rusqlite::{Connection, OpenFlags};
    use tempfile::TempDir;

    const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/sqlite");

    fn context() -> SourceContext {
        SourceContext {
            source_uri: String::new(),
            agent_id: None,
            session_id_hint: None,
            ingest_id: "test-ingest".into(),
            ingested_at: Utc.timestamp_opt(1_800_000_000, 0).unwrap(),
            max_line_bytes: 1 << 20,
        }
    }

    /// Decompresses `<relative>.zst` (and `<relative>-wal.zst` when present)
    /// into `dir`, returning the database path.
    fn unpack(dir: &Path, relative: &str) -> PathBuf {
        let name = Path::new(relative).file_name().unwrap();
        let out = dir.join(name);
        for suffix in ["", "-wal"] {
            let source = Path::new(DATA).join(format!("{relative}{suffix}.zst"));
            if source.exists() {
                let bytes = zstd::decode_all(&fs::read(&source).unwrap()[..]).unwrap();
                let mut target = out.as_os_str().to_owned();
                target.push(suffix);
                fs::write(target, bytes).unwrap();
            }
        }
        out
    }

    fn count(path: &Path, sql: &str) -> usize {
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap() as usize
    }

    fn with_role<'e>(events: &'e [Event], role: &str) -> Vec<&'e Event> {
        events
            .iter()
            .filter(|e| e.role.as_deref() == Some(role))
            .collect()
    }

    #[test]
    fn global_store_yields_jobs_receipts_and_task_runs() {
        let dir = TempDir::new().unwrap();
        let path = unpack(dir.path(), "openclaw-2026.9.6/state/openclaw.sqlite");
        let (events, stats) = read_state_store(&path, &context()).unwrap();
        assert_eq!(stats.format_version, Some(18));
        assert_eq!(stats.quarantined, 0, "{:?}", stats.notes);

        let jobs = with_role(&events, "cron_job");
        assert_eq!(jobs.len(), count(&path, "SELECT count(*) FROM cron_jobs"));
        assert!(jobs.iter().all(|e| e.kind == EventKind::Custom));
        let broken_job = jobs
            .iter()
            .find(|e| e.text.as_deref() == Some("broken-report"))
            .unwrap();
        assert_eq!(broken_job.status.as_deref(), Some("error"));
        let attributes: Value =
            serde_json::from_str(broken_job.attributes.as_deref().unwrap()).unwrap();
        assert!(
            attributes["job_json"]["schedule"].is_object(),
            "JSON columns are nested"
        );

        let receipts = with_role(&events, "cron_run_receipt");
        assert_eq!(
            receipts.len(),
            count(&path, "SELECT count(*) FROM cron_run_receipts")
        );
        assert!(receipts.iter().all(|e| e.kind == EventKind::CronRun));
        let runs: Vec<_> = events
            .iter()
            .filter(|e| e.kind == EventKind::CronRun)
            .collect();
        assert_eq!(runs.len(), receipts.len(), "one cron_run per run");
        let failed = receipts
            .iter()
            .find(|e| e.status.as_deref() == Some("error"))
            .unwrap();
        assert!(failed
            .error
            .as_deref()
            .unwrap()
            .starts_with("All models failed (3)"));
        assert_eq!(
            failed.session_id.as_deref(),
            Some("512378a2-565d-4c51-a8ac-05544aabbfa3")
        );
        let ok_agent_run = receipts
            .iter()
            .find(|e| e.status.as_deref() == Some("ok") && e.input_tokens.is_some())
            .unwrap();
        assert_eq!(ok_agent_run.provider.as_deref(), Some("ollama"));
        assert!(ok_agent_run.output_tokens.unwrap() > 0);
        assert!(ok_agent_run
            .session_key
            .as_deref()
            .unwrap()
            .starts_with("agent:main:cron:"));
        assert!(ok_agent_run
            .run_id
            .as_deref()
            .unwrap()
            .starts_with("manual:"));
        let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let (started, finished): (i64, i64) = conn
            .query_row(
                "SELECT started_at_ms, finished_at_ms FROM cron_run_receipts WHERE request_run_id = ?1",
                [ok_agent_run.run_id.as_deref().unwrap()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(ok_agent_run.latency_ms, Some(finished - started));
        assert_eq!(ok_agent_run.ts.timestamp_millis(), started);
        assert!(receipts
            .iter()
            .all(|e| e.agent_id.as_deref() == Some("main")));

        let tasks = with_role(&events, "task_run");
        assert_eq!(tasks.len(), count(&path, "SELECT count(*) FROM task_runs"));
        assert!(
            tasks.iter().all(|e| e.kind == EventKind::Custom),
            "cron runs have receipts"
        );
        assert_eq!(
            tasks
                .iter()
                .filter(|e| e.subsystem.as_deref() == Some("cron"))
                .count(),
            count(
                &path,
                "SELECT count(*) FROM task_runs WHERE runtime = 'cron'"
            )
        );
        let all_fail = tasks
            .iter()
            .find(|e| e.session_key.as_deref() == Some("agent:main:all-fail"))
            .unwrap();
        assert_eq!(all_fail.status.as_deref(), Some("failed"));
        assert!(all_fail.error.is_some());
        assert!(all_fail.run_id.is_some());

        assert_eq!(
            stats.lines as usize,
            jobs.len() + receipts.len() + tasks.len()
        );
        let ids: std::collections::HashSet<_> = events.iter().map(|e| &e.event_id).collect();
        assert_eq!(ids.len(), events.len());
    }

    #[test]
    fn legacy_task_registry_is_read_with_its_wal() {
        let dir = TempDir::new().unwrap();
        let path = unpack(dir.path(), "openclaw-2026.5.28/tasks/runs.sqlite");
        let (events, stats) = read_state_store(&path, &context()).unwrap();
        assert_eq!(stats.format_version, None);
        assert!(
            stats.notes.iter().any(|n| n.contains("legacy")),
            "{:?}",
            stats.notes
        );
        let rows = count(&path, "SELECT count(*) FROM task_runs");
        assert_eq!(events.len(), rows);
        // The main file alone (WAL ignored) has fewer rows: the WAL was read.
        let immutable = Connection::open_with_flags(
            format!("file:{}?mode=ro&immutable=1", path.display()),
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI,
        )
        .unwrap();
        let without_wal: i64 = immutable
            .query_row("SELECT count(*) FROM task_runs", [], |r| r.get(0))
            .unwrap();
        assert!((without_wal as usize) < rows);
        // No receipts here: cron task runs are the cron runs.
        let cron: Vec<_> = events
            .iter()
            .filter(|e| e.kind == EventKind::CronRun)
            .collect();
        assert_eq!(
            cron.len(),
            count(
                &path,
                "SELECT count(*) FROM task_runs WHERE runtime = 'cron'"
            )
        );
        assert!(cron.iter().any(|e| e.status.as_deref() == Some("failed")
            && e.error
                .as_deref()
                .is_some_and(|m| m.contains("All models failed"))));
        assert!(events
            .iter()
            .filter(|e| e.subsystem.as_deref() == Some("cli"))
            .all(|e| e.channel.as_deref() == Some("webchat")));
    }

    #[cfg(unix)]
    #[test]
    fn a_store_in_a_read_only_directory_is_read_with_its_wal() {
        use std::os::unix::fs::PermissionsExt;

        let dir = TempDir::new().unwrap();
        let frozen = dir.path().join("frozen");
        fs::create_dir(&frozen).unwrap();
        let path = unpack(&frozen, "openclaw-2026.5.28/tasks/runs.sqlite");
        let rows = {
            // Count on a copy: opening the original here would leave a -shm.
            let probe = unpack(dir.path(), "openclaw-2026.5.28/tasks/runs.sqlite");
            count(&probe, "SELECT count(*) FROM task_runs")
        };
        let original = fs::metadata(&frozen).unwrap().permissions();
        fs::set_permissions(&frozen, fs::Permissions::from_mode(0o555)).unwrap();
        // Root may write anyway; the no-shm check needs a directory that
        // really refuses writes (run the tests as another user to cover it).
        let refuses_writes = fs::write(frozen.join("probe"), b"").is_err();
        let read = read_state_store(&path, &context());
        fs::set_permissions(&frozen, original).unwrap();
        let (events, stats) = read.unwrap();
        assert_eq!(events.len(), rows, "{:?}", stats.notes);
        if refuses_writes {
            assert!(!frozen.join("runs.sqlite-shm").exists());
            assert!(
                stats.notes.iter().any(|n| n.contains("private copy")),
                "{:?}",
                stats.notes
            );
        }
    }

    #[test]
    fn other_files_are_refused_with_a_clear_error() {
        let dir = TempDir::new().unwrap();
        let text = dir.path().join("openclaw.sqlite");
        fs::write(&text, "SQLite? no. Just some text that is long enough.").unwrap();
        assert!(matches!(
            read_state_store(&text, &context()),
            Err(StateStoreError::NotSqlite { .. })
        ));
        let other = dir.path().join("other.sqlite");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE task_runs (task_id TEXT PRIMARY KEY, x INTEGER)")
            .unwrap();
        let error = read_state_store(&other, &context()).unwrap_err();
        assert!(matches!(error, StateStoreError::NotRecognised { .. }));
        assert!(
            error
                .to_string()
                .contains("not a recognised OpenClaw state store"),
            "{error}"
        );
        let agent = dir.path().join("agent.sqlite");
        Connection::open(&agent)
            .unwrap()
            .execute_batch(
                "CREATE TABLE schema_meta (meta_key TEXT PRIMARY KEY, role TEXT, schema_version INTEGER);
                 INSERT INTO schema_meta VALUES ('primary', 'agent', 23);",
            )
            .unwrap();
        let error = read_state_store(&agent, &context()).unwrap_err();
        assert!(error.to_string().contains("agent_store"), "{error}");
    }

    #[test]
    fn rows_with_invalid_json_columns_are_quarantined() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("openclaw.sqlite");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA user_version = 18;
             CREATE TABLE schema_meta (meta_key TEXT PRIMARY KEY, role TEXT NOT NULL,
               schema_version INTEGER NOT NULL, agent_id TEXT, app_version TEXT,
               created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
             INSERT INTO schema_meta VALUES ('primary', 'global', 18, NULL, '2026.9.6', 0, 0);
             CREATE TABLE cron_jobs (store_key TEXT NOT NULL, job_id TEXT NOT NULL, name TEXT NOT NULL,
               agent_id TEXT, job_json TEXT NOT NULL, state_json TEXT NOT NULL DEFAULT '{}',
               updated_at INTEGER NOT NULL, PRIMARY KEY (store_key, job_id));
             INSERT INTO cron_jobs VALUES ('s', 'j1', 'good', 'main', '{\"id\":\"j1\"}', '{}', 1795314442222);
             INSERT INTO cron_jobs VALUES ('s', 'j2', 'bad', 'main', '{\"id\":', '{}', 1795314442223);",
        )
        .unwrap();
        drop(conn);
        let (events, stats) = read_state_store(&path, &context()).unwrap();
        assert_eq!(stats.quarantined, 1);
        assert_eq!(events.len(), 2);
        let bad = events
            .iter()
            .find(|e| e.kind == EventKind::Quarantined)
            .unwrap();
        assert!(bad
            .error
            .as_deref()
            .unwrap()
            .contains("job_json is not valid JSON"));
        assert!(bad
            .source_uri
            .as_deref()
            .unwrap()
            .ends_with("#cron_jobs/j2"));
        assert_eq!(bad.ts.timestamp_millis(), 1795314442223);
        assert!(events.iter().any(|e| e.text.as_deref() == Some("good")));
    }
}
