//! Reading what the jobs need from the event log: every transcript event of
//! every session (sorted by `seq`), and the side events that feed rewards
//! (cron runs, fallback decisions, annotations).
//!
//! Only `source = 'openclaw_transcript'` events with an `entry_id` form the
//! transcript tree; quarantined lines are never read.

use std::collections::BTreeMap;

use trajectory_query::QueryEngine;

use crate::columns::Columns;
use crate::DeriveError;

/// One transcript event (a projection of an `events` row).
///
/// Units: `ts_us` is microseconds since the Unix epoch (UTC); tokens are
/// tokens; `cost_usd` is US dollars.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TranscriptEvent {
    pub event_id: String,
    pub ts_us: i64,
    pub kind: String,
    pub entry_id: String,
    pub parent_id: Option<String>,
    pub seq: i64,
    pub role: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub locality: Option<String>,
    pub text: Option<String>,
    pub tool_call_id: Option<String>,
    pub tool_name: Option<String>,
    pub tool_args: Option<String>,
    pub tool_status: Option<String>,
    pub tool_is_error: Option<bool>,
    pub stop_reason: Option<String>,
    pub error: Option<String>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub cost_usd: Option<f64>,
}

impl TranscriptEvent {
    /// Whether this is an LLM call that failed: `stop_reason` `error` or
    /// `aborted`, or an error message (the `failed` column of `llm_calls`).
    pub fn is_failed_call(&self) -> bool {
        self.kind == "llm_call"
            && (matches!(self.stop_reason.as_deref(), Some("error" | "aborted"))
                || self.error.is_some())
    }

    /// The text, or the empty string.
    pub fn text_or_empty(&self) -> &str {
        self.text.as_deref().unwrap_or("")
    }
}

/// One session's transcript events, sorted by (`seq`, `event_id`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Session {
    pub session_id: String,
    pub agent_id: Option<String>,
    pub events: Vec<TranscriptEvent>,
}

/// A non-transcript event that feeds rewards (cron run, fallback decision,
/// annotation), with the columns the reward rules read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SideEvent {
    pub event_id: String,
    pub ts_us: i64,
    pub kind: String,
    pub session_id: Option<String>,
    pub status: Option<String>,
    pub decision: Option<String>,
    pub requested_provider: Option<String>,
    pub requested_model: Option<String>,
    pub next_provider: Option<String>,
    pub next_model: Option<String>,
    /// The `attributes` JSON text (annotations keep their payload there).
    pub attributes: Option<String>,
}

/// Everything the derive jobs read from one version of the log.
#[derive(Debug, Clone, Default)]
pub struct EventLog {
    /// Sessions ordered by `session_id`.
    pub sessions: Vec<Session>,
    /// Cron runs, fallback decisions and annotations, ordered by (`ts`, `event_id`).
    pub side_events: Vec<SideEvent>,
}

const TRANSCRIPT_SQL: &str = "SELECT event_id, CAST(ts AS BIGINT) AS ts_us, kind, agent_id, \
    session_id, entry_id, parent_id, seq, role, provider, model, locality, text, tool_call_id, \
    tool_name, tool_args, tool_status, tool_is_error, stop_reason, error, input_tokens, \
    output_tokens, cost_usd FROM events \
    WHERE source = 'openclaw_transcript' AND kind <> 'quarantined' \
    AND session_id IS NOT NULL AND entry_id IS NOT NULL \
    ORDER BY session_id, seq, event_id";

const SIDE_SQL: &str = "SELECT event_id, CAST(ts AS BIGINT) AS ts_us, kind, session_id, status, \
    decision, requested_provider, requested_model, next_provider, next_model, attributes \
    FROM events WHERE kind IN ('cron_run', 'fallback_decision', 'annotation') \
    ORDER BY ts, event_id";

/// Reads every session's transcript events and the side events from `engine`.
///
/// Errors: [`DeriveError::Query`] when the SQL fails; [`DeriveError::Column`]
/// when a column has an unexpected type.
pub async fn read_event_log(engine: &QueryEngine) -> Result<EventLog, DeriveError> {
    let mut sessions: BTreeMap<String, Session> = BTreeMap::new();
    for batch in engine.collect(TRANSCRIPT_SQL).await? {
        let c = Columns::new(&batch);
        let (event_id, kind, agent, session, entry, parent) = (
            c.strings("event_id")?,
            c.strings("kind")?,
            c.strings("agent_id")?,
            c.strings("session_id")?,
            c.strings("entry_id")?,
            c.strings("parent_id")?,
        );
        let (role, provider, model, locality, text) = (
            c.strings("role")?,
            c.strings("provider")?,
            c.strings("model")?,
            c.strings("locality")?,
            c.strings("text")?,
        );
        let (call_id, tool_name, tool_args, tool_status, tool_is_error) = (
            c.strings("tool_call_id")?,
            c.strings("tool_name")?,
            c.strings("tool_args")?,
            c.strings("tool_status")?,
            c.bools("tool_is_error")?,
        );
        let (stop_reason, error) = (c.strings("stop_reason")?, c.strings("error")?);
        let (ts, seq, input, output, cost) = (
            c.ints("ts_us")?,
            c.ints("seq")?,
            c.ints("input_tokens")?,
            c.ints("output_tokens")?,
            c.floats("cost_usd")?,
        );
        for i in 0..batch.num_rows() {
            let (Some(session_id), Some(entry_id)) = (session[i].clone(), entry[i].clone()) else {
                continue;
            };
            let entry_session = sessions
                .entry(session_id.clone())
                .or_insert_with(|| Session {
                    session_id,
                    ..Session::default()
                });
            if entry_session.agent_id.is_none() {
                entry_session.agent_id = agent[i].clone();
            }
            entry_session.events.push(TranscriptEvent {
                event_id: event_id[i].clone().unwrap_or_default(),
                ts_us: ts[i].unwrap_or_default(),
                kind: kind[i].clone().unwrap_or_default(),
                entry_id,
                parent_id: parent[i].clone(),
                seq: seq[i].unwrap_or_default(),
                role: role[i].clone(),
                provider: provider[i].clone(),
                model: model[i].clone(),
                locality: locality[i].clone(),
                text: text[i].clone(),
                tool_call_id: call_id[i].clone(),
                tool_name: tool_name[i].clone(),
                tool_args: tool_args[i].clone(),
                tool_status: tool_status[i].clone(),
                tool_is_error: tool_is_error[i],
                stop_reason: stop_reason[i].clone(),
                error: error[i].clone(),
                input_tokens: input[i],
                output_tokens: output[i],
                cost_usd: cost[i],
            });
        }
    }
    let mut side_events = Vec::new();
    for batch in engine.collect(SIDE_SQL).await? {
        let c = Columns::new(&batch);
        let (event_id, ts, kind, session, status, decision) = (
            c.strings("event_id")?,
            c.ints("ts_us")?,
            c.strings("kind")?,
            c.strings("session_id")?,
            c.strings("status")?,
            c.strings("decision")?,
        );
        let (req_p, req_m, next_p, next_m, attributes) = (
            c.strings("requested_provider")?,
            c.strings("requested_model")?,
            c.strings("next_provider")?,
            c.strings("next_model")?,
            c.strings("attributes")?,
        );
        for i in 0..batch.num_rows() {
            side_events.push(SideEvent {
                event_id: event_id[i].clone().unwrap_or_default(),
                ts_us: ts[i].unwrap_or_default(),
                kind: kind[i].clone().unwrap_or_default(),
                session_id: session[i].clone(),
                status: status[i].clone(),
                decision: decision[i].clone(),
                requested_provider: req_p[i].clone(),
                requested_model: req_m[i].clone(),
                next_provider: next_p[i].clone(),
                next_model: next_m[i].clone(),
                attributes: attributes[i].clone(),
            });
        }
    }
    Ok(EventLog {
        sessions: sessions.into_values().collect(),
        side_events,
    })
}
