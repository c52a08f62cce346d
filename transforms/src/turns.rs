//! The `turns` table: one row per turn, from a user message to the next user
//! message on a branch of a session's transcript tree.
//!
//! A session's entries form a tree (`parent_id`). Every leaf defines a branch
//! (the path from the root to it); the **active** branch ends at the last
//! entry in file order ([`trajectory_schema::tree`]). Each branch is cut into
//! turns at its user messages. A turn found on several branches (their shared
//! prefix) is emitted once: its id hashes the session, its user message and
//! its last event, so the same span always gets the same id. Branches are
//! visited active first, then by leaf `seq`; a turn takes its
//! `branch_leaf_entry_id` and next state from the first branch it is found on,
//! and `on_active_branch` is true when that is the active branch.
//!
//! Entries before the first user message are context only (no turn).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde_json::{json, Value};
use trajectory_schema::tree::{active_branch, TreeNode};

use crate::columns::{
    boolean, event_ids_field, float64, int64, stable_id, string_lists, timestamp_type, timestamps,
    utf8,
};
use crate::transcript::{Session, TranscriptEvent};
use crate::user_text::prompt_hash;
use crate::DeriveError;

/// Version of the turn segmentation; bumped when the same events give other rows.
pub const TURNS_JOB_VERSION: &str = "turns-v3";

/// Kinds the agent's side of a turn is made of.
const AGENT_KINDS: &[&str] = &["llm_call", "tool_call", "tool_result", "injected_message"];

/// Messages that lead into the next turn when they follow a turn's last
/// agent event on the branch: they, and what follows them up to the next
/// user message, are the next turn's context, not this turn's response
/// (turns-v1 kept them, so a branch summary was a user message at the end
/// of the responses). Entries right after the agent's last event that are
/// no message (a fallback notice, a model change) stay in the turn: the
/// fallback detector reads them.
const LEADING_KINDS: &[&str] = &[
    "branch_summary",
    "compaction",
    "custom_message",
    "bash_execution",
];

/// Kinds that are messages in a model's context (the `messages` view's kinds).
const MESSAGE_KINDS: &[&str] = &[
    "user_message",
    "llm_call",
    "injected_message",
    "tool_result",
    "bash_execution",
    "custom_message",
    "branch_summary",
    "compaction",
];

/// One turn of one session. Event positions index [`Session::events`].
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    /// 32 hex chars: blake3 of (session, user message event id, last event id).
    pub turn_id: String,
    /// Number of user messages before this one on its branch (0-based).
    pub turn_index: i64,
    /// Whether the turn was found on the active branch.
    pub on_active_branch: bool,
    /// Leaf entry of the branch the turn was taken from.
    pub branch_leaf_entry_id: String,
    /// Parent entry of the user message: turns (and trajectories) with the
    /// same parent are siblings (the user edited, or the agent regenerated).
    pub parent_entry_id: Option<String>,
    /// The user message first, then every event up to the next user message,
    /// in branch order (tool calls right after their LLM call).
    pub events: Vec<usize>,
    /// Conversational events before the user message on the branch, from the
    /// latest compaction on (what the model saw, approximately).
    pub context: Vec<usize>,
    /// The turn (index into [`SessionTurns::turns`], always an earlier one)
    /// whose `context` is the first part of this one's: the previous turn on
    /// the branch, unless a compaction restarted the context in between.
    /// The `turns` table stores a context as that turn's id plus the
    /// messages after it (`context_prefix_turn_id`, `context_tail`).
    pub context_prefix: Option<usize>,
    /// The next user message on the branch, if any.
    pub next_user: Option<usize>,
}

impl Turn {
    /// Position of the user message.
    pub fn user(&self) -> usize {
        self.events[0]
    }

    /// Positions of the turn's LLM calls, in order.
    pub fn llm_calls<'a>(&'a self, session: &'a Session) -> impl Iterator<Item = usize> + 'a {
        self.events
            .iter()
            .copied()
            .filter(|&i| session.events[i].kind == "llm_call")
    }

    /// Positions of the tool calls made by the LLM call at `call`.
    pub fn tool_calls_of(&self, session: &Session, call: usize) -> Vec<usize> {
        let entry = &session.events[call].entry_id;
        self.events
            .iter()
            .copied()
            .filter(|&i| {
                session.events[i].kind == "tool_call" && &session.events[i].entry_id == entry
            })
            .collect()
    }

    /// The tool result answering the tool call at `tool_call`: the one in this
    /// turn with the same `tool_call_id`, else the first in the session with
    /// it (as the `tool_calls` view joins; excerpts can cut the result's
    /// parent link).
    pub fn result_of(&self, session: &Session, tool_call: usize) -> Option<usize> {
        let id = session.events[tool_call].tool_call_id.as_deref()?;
        let answers = |i: &usize| {
            session.events[*i].kind == "tool_result"
                && session.events[*i].tool_call_id.as_deref() == Some(id)
        };
        self.events
            .iter()
            .copied()
            .find(answers)
            .or_else(|| (0..session.events.len()).find(answers))
    }

    /// The next state of the turn: the next user message (role `user`), else
    /// the turn's last event when it is a tool result (role `tool`), else none.
    pub fn next_state(&self, session: &Session) -> Option<(usize, &'static str)> {
        if let Some(next) = self.next_user {
            return Some((next, "user"));
        }
        let last = *self.events.last()?;
        (session.events[last].kind == "tool_result").then_some((last, "tool"))
    }
}

/// A session cut into turns, and the order of turns on every branch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionTurns {
    pub turns: Vec<Turn>,
    /// Turn positions (into `turns`) in order along each branch; the active
    /// branch first.
    pub branches: Vec<Vec<usize>>,
}

/// Cuts a session into turns (see the module docs).
pub fn segment(session: &Session) -> SessionTurns {
    let events = &session.events;
    // Every event of an entry (an assistant line gives an llm_call and its tool_calls).
    let mut by_entry: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, event) in events.iter().enumerate() {
        by_entry.entry(event.entry_id.as_str()).or_default().push(i);
    }
    for positions in by_entry.values_mut() {
        positions.sort_by_key(|&i| (events[i].seq, events[i].kind == "tool_call", i));
    }
    let nodes: Vec<TreeNode<'_>> = events
        .iter()
        .filter(|e| e.kind != "tool_call")
        .map(|e| TreeNode {
            entry_id: &e.entry_id,
            parent_id: e.parent_id.as_deref(),
            seq: e.seq,
        })
        .collect();
    let mut parent_of: HashMap<&str, Option<&str>> = HashMap::new();
    let mut seq_of: HashMap<&str, i64> = HashMap::new();
    for node in &nodes {
        parent_of.entry(node.entry_id).or_insert(node.parent_id);
        let seq = seq_of.entry(node.entry_id).or_insert(node.seq);
        *seq = (*seq).max(node.seq);
    }
    let with_children: HashSet<&str> = nodes
        .iter()
        .filter_map(|n| n.parent_id)
        .filter(|p| parent_of.contains_key(p))
        .collect();
    let active = active_branch(&nodes);
    let active_leaf = nodes.iter().max_by_key(|n| n.seq).map(|n| n.entry_id);
    let mut leaves: Vec<&str> = parent_of
        .keys()
        .copied()
        .filter(|id| !with_children.contains(id) && Some(*id) != active_leaf)
        .collect();
    leaves.sort_by_key(|id| (seq_of.get(id).copied().unwrap_or_default(), *id));
    let leaves: Vec<&str> = active_leaf.into_iter().chain(leaves).collect();

    let mut result = SessionTurns::default();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (branch_number, leaf) in leaves.iter().enumerate() {
        // Root-to-leaf entries (a missing parent or a cycle ends the walk).
        let mut path = Vec::new();
        let mut visited = HashSet::new();
        let mut current = Some(*leaf);
        while let Some(id) = current {
            if !parent_of.contains_key(id) || !visited.insert(id) {
                break;
            }
            path.push(id);
            current = parent_of.get(id).copied().flatten();
        }
        path.reverse();
        let path_events: Vec<usize> = path
            .iter()
            .flat_map(|id| by_entry.get(id).into_iter().flatten().copied())
            .collect();
        let on_active = branch_number == 0 && path.iter().all(|id| active.contains(id));
        let mut order = Vec::new();
        let user_positions: Vec<usize> = path_events
            .iter()
            .enumerate()
            .filter(|(_, &i)| events[i].kind == "user_message")
            .map(|(p, _)| p)
            .collect();
        let mut context_start = 0;
        let mut scanned = 0;
        let mut previous: Option<usize> = None;
        for (turn_index, &start) in user_positions.iter().enumerate() {
            for p in scanned..start {
                if events[path_events[p]].kind == "compaction" {
                    context_start = p;
                }
            }
            scanned = start;
            let end = user_positions
                .get(turn_index + 1)
                .copied()
                .unwrap_or(path_events.len());
            let kind = |p: usize| events[path_events[p]].kind.as_str();
            let mut agent_end = end;
            while agent_end > start + 1 && !AGENT_KINDS.contains(&kind(agent_end - 1)) {
                agent_end -= 1;
            }
            let span_end = (agent_end..end)
                .find(|&p| LEADING_KINDS.contains(&kind(p)))
                .unwrap_or(end);
            let span: Vec<usize> = path_events[start..span_end].to_vec();
            let user = &events[span[0]];
            let last = &events[span[span.len() - 1]];
            let turn_id = stable_id(&["turn", &session.session_id, &user.event_id, &last.event_id]);
            if let Some(&known) = seen.get(&turn_id) {
                order.push(known);
                previous = Some(known);
                continue;
            }
            let context: Vec<usize> = path_events[context_start..start]
                .iter()
                .copied()
                .filter(|&i| MESSAGE_KINDS.contains(&events[i].kind.as_str()))
                .collect();
            let context_prefix = previous.filter(|&p| {
                let before = &result.turns[p].context;
                !before.is_empty() && context.starts_with(before)
            });
            previous = Some(result.turns.len());
            seen.insert(turn_id.clone(), result.turns.len());
            order.push(result.turns.len());
            result.turns.push(Turn {
                turn_id,
                turn_index: turn_index as i64,
                on_active_branch: on_active,
                branch_leaf_entry_id: leaf.to_string(),
                parent_entry_id: user.parent_id.clone(),
                events: span,
                context,
                context_prefix,
                next_user: (end < path_events.len()).then(|| path_events[end]),
            });
        }
        result.branches.push(order);
    }
    result
}

/// The OpenAI-style message of the event at `i`, or `None` when it is not
/// one (a failed call that generated nothing, a gateway-injected message, a
/// tool call, a non-message entry). Tool calls of an assistant message are
/// taken from `tool_calls` (positions of its `tool_call` events).
pub fn message_of(session: &Session, i: usize, tool_calls: &[usize]) -> Option<Value> {
    let event = &session.events[i];
    let text = event.text_or_empty();
    match event.kind.as_str() {
        "user_message" | "custom_message" | "branch_summary" | "compaction" => {
            Some(json!({"role": "user", "content": text}))
        }
        "bash_execution" => {
            let command = event
                .tool_args
                .as_deref()
                .and_then(|a| serde_json::from_str::<Value>(a).ok())
                .and_then(|v| v.get("command").and_then(Value::as_str).map(str::to_string))
                .unwrap_or_default();
            Some(json!({"role": "user", "content": format!("Ran `{command}`\n{text}")}))
        }
        "llm_call" => {
            if tool_calls.is_empty() && text.is_empty() && event.is_failed_call() {
                return None;
            }
            let calls: Vec<Value> = tool_calls
                .iter()
                .map(|&c| {
                    let call = &session.events[c];
                    json!({
                        "id": call.tool_call_id,
                        "type": "function",
                        "function": {
                            "name": call.tool_name.as_deref().unwrap_or(""),
                            "arguments": call.tool_args.as_deref().unwrap_or("{}"),
                        }
                    })
                })
                .collect();
            let mut message = json!({
                "role": "assistant",
                "content": if text.is_empty() { Value::Null } else { json!(text) },
            });
            if !calls.is_empty() {
                message["tool_calls"] = Value::Array(calls);
            }
            Some(message)
        }
        "tool_result" => Some(json!({
            "role": "tool",
            "tool_call_id": event.tool_call_id,
            "name": event.tool_name,
            "content": text,
        })),
        _ => None,
    }
}

/// Messages of the events at `positions`, tool calls folded into their
/// assistant message.
pub fn messages_of(session: &Session, positions: &[usize]) -> Vec<Value> {
    positioned_messages(session, positions)
        .into_iter()
        .map(|(_, message)| message)
        .collect()
}

/// [`messages_of`], each message with the index in `positions` of the event
/// it came from.
pub fn positioned_messages(session: &Session, positions: &[usize]) -> Vec<(usize, Value)> {
    let tool_calls = ToolCallIndex::new(session, positions);
    positions
        .iter()
        .enumerate()
        .filter(|(_, &i)| session.events[i].kind != "tool_call")
        .filter_map(|(k, &i)| message_of(session, i, tool_calls.of(i)).map(|m| (k, m)))
        .collect()
}

/// The tool calls among a list of positions, by entry, in list order: an
/// assistant message's calls found in one pass over the list, so a long
/// context costs linear time, not quadratic.
struct ToolCallIndex<'a> {
    session: &'a Session,
    by_entry: HashMap<&'a str, Vec<usize>>,
}

impl<'a> ToolCallIndex<'a> {
    fn new(session: &'a Session, positions: &[usize]) -> ToolCallIndex<'a> {
        let mut by_entry: HashMap<&str, Vec<usize>> = HashMap::new();
        for &c in positions {
            let event = &session.events[c];
            if event.kind == "tool_call" {
                by_entry.entry(event.entry_id.as_str()).or_default().push(c);
            }
        }
        ToolCallIndex { session, by_entry }
    }

    /// The tool calls of the event at `i` (an LLM call's; none otherwise).
    fn of(&self, i: usize) -> &[usize] {
        let event = &self.session.events[i];
        if event.kind != "llm_call" {
            return &[];
        }
        self.by_entry
            .get(event.entry_id.as_str())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

/// The messages of one session serialised once each: a turn's context
/// repeats every message before it on its branch, so serialising each
/// turn's context afresh costs the square of the session's length in JSON
/// work; concatenating the cached texts costs only the copy.
pub struct SessionMessages<'a> {
    session: &'a Session,
    /// By event index: the tool calls the message was built with, and its
    /// JSON text (`None`: the event gives no message).
    texts: HashMap<usize, (Vec<usize>, Option<String>)>,
}

impl<'a> SessionMessages<'a> {
    /// An empty cache for `session`.
    pub fn new(session: &'a Session) -> SessionMessages<'a> {
        SessionMessages {
            session,
            texts: HashMap::new(),
        }
    }

    /// [`messages_of`]`(session, positions)` as compact JSON array text
    /// (byte for byte what serde_json writes for it), and its length.
    pub fn json_array(&mut self, positions: &[usize]) -> (String, usize) {
        self.json_array_from(positions, 0)
    }

    /// The messages of `positions[from..]` as [`SessionMessages::json_array`]
    /// writes them, and their count. Where `from` does not fall between an
    /// LLM call and its tool calls (a context cut at a turn's user message),
    /// the whole list's array is the array of `positions[..from]` followed
    /// by this one's elements.
    pub fn json_array_from(&mut self, positions: &[usize], from: usize) -> (String, usize) {
        let session = self.session;
        // An LLM call's tool calls are its entry's, right after it: a list
        // cut before a user message (a context prefix) never splits them.
        let tool_calls = ToolCallIndex::new(session, &positions[from.min(positions.len())..]);
        let mut out = String::from("[");
        let mut count = 0;
        for &i in positions.iter().skip(from) {
            if session.events[i].kind == "tool_call" {
                continue;
            }
            let calls = tool_calls.of(i);
            let fresh = match self.texts.get(&i) {
                Some((built_with, _)) => built_with.as_slice() != calls,
                None => true,
            };
            if fresh {
                let text = message_of(session, i, calls).map(|m| m.to_string());
                self.texts.insert(i, (calls.to_vec(), text));
            }
            if let Some((_, Some(text))) = self.texts.get(&i) {
                if count > 0 {
                    out.push(',');
                }
                out.push_str(text);
                count += 1;
            }
        }
        out.push(']');
        (out, count)
    }
}

/// Schema of the `turns` table (columns documented in `docs/datasets.md`).
pub fn turns_schema() -> SchemaRef {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        text("turn_id", false),
        text("session_id", false),
        text("agent_id", true),
        Field::new("turn_index", DataType::Int64, false),
        Field::new("on_active_branch", DataType::Boolean, false),
        text("branch_leaf_entry_id", false),
        text("parent_entry_id", true),
        text("user_event_id", false),
        Field::new("started_at", timestamp_type(), false),
        Field::new("ended_at", timestamp_type(), false),
        text("prompt", false),
        text("prompt_hash", false),
        text("context_prefix_turn_id", true),
        text("context_tail", false),
        Field::new("context_messages", DataType::Int64, false),
        text("responses", false),
        text("next_state", true),
        text("next_state_role", true),
        text("next_state_event_id", true),
        text("provider", true),
        text("model", true),
        text("locality", true),
        Field::new("llm_call_count", DataType::Int64, false),
        Field::new("failed_llm_call_count", DataType::Int64, false),
        Field::new("tool_call_count", DataType::Int64, false),
        Field::new("tool_error_count", DataType::Int64, false),
        Field::new("input_tokens", DataType::Int64, false),
        Field::new("output_tokens", DataType::Int64, false),
        Field::new("cost_usd", DataType::Float64, false),
        event_ids_field(),
        Field::new("events_version", DataType::Int64, false),
    ]))
}

/// The turn's row values that are computed rather than copied.
struct TurnRow<'a> {
    session: &'a Session,
    turn: &'a Turn,
    context_prefix_turn_id: Option<&'a str>,
    context_tail: String,
    context_messages: i64,
    responses: String,
    last_call: Option<&'a TranscriptEvent>,
    llm_calls: i64,
    failed_calls: i64,
    tool_calls: i64,
    tool_errors: i64,
    input_tokens: i64,
    output_tokens: i64,
    cost_usd: f64,
}

impl<'a> TurnRow<'a> {
    fn event(&self, i: usize) -> &'a TranscriptEvent {
        &self.session.events[i]
    }

    /// The row of `turn`; `prefix_messages` is the `context_messages` of
    /// its context prefix turn (0 without one).
    fn new(
        session: &'a Session,
        turns: &'a SessionTurns,
        turn: &'a Turn,
        prefix_messages: i64,
        messages: &mut SessionMessages<'a>,
    ) -> TurnRow<'a> {
        let prefix = turn.context_prefix.map(|p| &turns.turns[p]);
        let from = prefix.map_or(0, |p| p.context.len());
        let (context_tail, tail_messages) = messages.json_array_from(&turn.context, from);
        let context_messages = prefix_messages + tail_messages as i64;
        let (responses, _) = messages.json_array(&turn.events[1..]);
        let of_kind = |kind: &'a str| {
            turn.events
                .iter()
                .map(|&i| &session.events[i])
                .filter(move |e| e.kind == kind)
        };
        TurnRow {
            session,
            turn,
            context_messages,
            context_prefix_turn_id: prefix.map(|p| p.turn_id.as_str()),
            context_tail,
            responses,
            last_call: of_kind("llm_call").next_back(),
            llm_calls: of_kind("llm_call").count() as i64,
            failed_calls: of_kind("llm_call").filter(|e| e.is_failed_call()).count() as i64,
            tool_calls: of_kind("tool_call").count() as i64,
            tool_errors: of_kind("tool_result")
                .filter(|e| crate::rewards::tool_failure(e).is_some())
                .count() as i64,
            input_tokens: of_kind("llm_call").filter_map(|e| e.input_tokens).sum(),
            output_tokens: of_kind("llm_call").filter_map(|e| e.output_tokens).sum(),
            cost_usd: of_kind("llm_call").filter_map(|e| e.cost_usd).sum(),
        }
    }
}

/// Builds the `turns` rows of `sessions` (pairs of a session and its turns)
/// as one batch of [`turns_schema`].
///
/// Errors: [`DeriveError::Arrow`] if the columns do not fit the schema.
pub fn turns_batch(
    sessions: &[(&Session, &SessionTurns)],
    events_version: u64,
) -> Result<RecordBatch, DeriveError> {
    let mut rows: Vec<TurnRow<'_>> = Vec::new();
    for (session, turns) in sessions {
        let mut messages = SessionMessages::new(session);
        let first = rows.len();
        for turn in &turns.turns {
            let prefix_messages = turn
                .context_prefix
                .map_or(0, |p| rows[first + p].context_messages);
            rows.push(TurnRow::new(
                session,
                turns,
                turn,
                prefix_messages,
                &mut messages,
            ));
        }
    }
    let next = |r: &TurnRow<'_>| r.turn.next_state(r.session);
    let columns = vec![
        utf8(rows.iter().map(|r| Some(r.turn.turn_id.as_str()))),
        utf8(rows.iter().map(|r| Some(r.session.session_id.as_str()))),
        utf8(rows.iter().map(|r| r.session.agent_id.as_deref())),
        int64(rows.iter().map(|r| Some(r.turn.turn_index))),
        boolean(rows.iter().map(|r| Some(r.turn.on_active_branch))),
        utf8(
            rows.iter()
                .map(|r| Some(r.turn.branch_leaf_entry_id.as_str())),
        ),
        utf8(rows.iter().map(|r| r.turn.parent_entry_id.as_deref())),
        utf8(
            rows.iter()
                .map(|r| Some(r.event(r.turn.user()).event_id.as_str())),
        ),
        timestamps(rows.iter().map(|r| Some(r.event(r.turn.user()).ts_us))),
        timestamps(
            rows.iter()
                .map(|r| r.turn.events.iter().map(|&i| r.event(i).ts_us).max()),
        ),
        utf8(
            rows.iter()
                .map(|r| Some(r.event(r.turn.user()).text_or_empty())),
        ),
        utf8(
            rows.iter()
                .map(|r| prompt_hash(r.event(r.turn.user()).text_or_empty()))
                .collect::<Vec<_>>()
                .iter()
                .map(|h| Some(h.as_str())),
        ),
        utf8(rows.iter().map(|r| r.context_prefix_turn_id)),
        utf8(rows.iter().map(|r| Some(r.context_tail.as_str()))),
        int64(rows.iter().map(|r| Some(r.context_messages))),
        utf8(rows.iter().map(|r| Some(r.responses.as_str()))),
        utf8(
            rows.iter()
                .map(|r| next(r).map(|(i, _)| r.event(i).text_or_empty())),
        ),
        utf8(rows.iter().map(|r| next(r).map(|(_, role)| role))),
        utf8(
            rows.iter()
                .map(|r| next(r).map(|(i, _)| r.event(i).event_id.as_str())),
        ),
        utf8(
            rows.iter()
                .map(|r| r.last_call.and_then(|c| c.provider.as_deref())),
        ),
        utf8(
            rows.iter()
                .map(|r| r.last_call.and_then(|c| c.model.as_deref())),
        ),
        utf8(
            rows.iter()
                .map(|r| r.last_call.and_then(|c| c.locality.as_deref())),
        ),
        int64(rows.iter().map(|r| Some(r.llm_calls))),
        int64(rows.iter().map(|r| Some(r.failed_calls))),
        int64(rows.iter().map(|r| Some(r.tool_calls))),
        int64(rows.iter().map(|r| Some(r.tool_errors))),
        int64(rows.iter().map(|r| Some(r.input_tokens))),
        int64(rows.iter().map(|r| Some(r.output_tokens))),
        float64(rows.iter().map(|r| Some(r.cost_usd))),
        string_lists(rows.iter().map(|r| {
            r.turn
                .events
                .iter()
                .map(|&i| r.event(i).event_id.as_str())
                .collect::<Vec<_>>()
        })),
        int64(rows.iter().map(|_| Some(events_version as i64))),
    ];
    Ok(RecordBatch::try_new(turns_schema(), columns)?)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};

    /// A transcript event for tests: `kind`, entry `id`, `parent`, `seq`, text.
    pub(crate) fn ev(
        kind: &str,
        id: &str,
        parent: Option<&str>,
        seq: i64,
        text: &str,
    ) -> TranscriptEvent {
        TranscriptEvent {
            event_id: format!("e-{id}-{kind}"),
            ts_us: seq * 1_000_000,
            kind: kind.to_string(),
            entry_id: id.to_string(),
            parent_id: parent.map(str::to_string),
            seq,
            text: (!text.is_empty()).then(|| text.to_string()),
            stop_reason: (kind == "llm_call").then(|| "stop".to_string()),
            ..TranscriptEvent::default()
        }
    }

    pub(crate) fn session(events: Vec<TranscriptEvent>) -> Session {
        Session {
            session_id: "s1".into(),
            agent_id: Some("main".into()),
            events,
        }
    }

    fn prompts(s: &Session, t: &SessionTurns) -> Vec<(String, bool)> {
        t.turns
            .iter()
            .map(|turn| {
                (
                    s.events[turn.user()].text_or_empty().to_string(),
                    turn.on_active_branch,
                )
            })
            .collect()
    }

    #[test]
    fn cached_message_texts_equal_serialising_each_context_afresh() {
        let mut call = ev("tool_call", "a1", Some("u1"), 3, "");
        call.tool_call_id = Some("c1".into());
        call.tool_name = Some("exec".into());
        call.tool_args = Some("{\"command\":\"ls\"}".into());
        let mut result = ev("tool_result", "r1", Some("a1"), 4, "a.txt");
        result.tool_call_id = Some("c1".into());
        let s = session(vec![
            ev("session_start", "h", None, 0, ""),
            ev("user_message", "u1", Some("h"), 1, "list \"files\""),
            ev("llm_call", "a1", Some("u1"), 2, ""),
            call,
            result,
            ev("llm_call", "a2", Some("r1"), 5, "one file"),
            ev("user_message", "u2", Some("a2"), 6, "thanks ✓"),
            ev("llm_call", "a3", Some("u2"), 7, "welcome"),
            ev("user_message", "u3", Some("a2"), 8, "edited"),
        ]);
        let t = segment(&s);
        let mut cache = SessionMessages::new(&s);
        let afresh = |positions: &[usize]| {
            let messages = messages_of(&s, positions);
            (Value::Array(messages.clone()).to_string(), messages.len())
        };
        for turn in &t.turns {
            assert_eq!(cache.json_array(&turn.context), afresh(&turn.context));
            assert_eq!(
                cache.json_array(&turn.events[1..]),
                afresh(&turn.events[1..])
            );
        }
        // The assistant message with its tool call is in the cache; a list
        // without the call gets the message without it, then with it again.
        let with_call = cache.json_array(&[1, 2, 3, 4]);
        assert!(with_call.0.contains("tool_calls"), "{}", with_call.0);
        assert_eq!(cache.json_array(&[1, 2]), afresh(&[1, 2]));
        assert_eq!(cache.json_array(&[1, 2, 3, 4]), with_call);
        assert_eq!(with_call, afresh(&[1, 2, 3, 4]));
    }

    #[test]
    fn a_context_is_its_prefix_turns_context_then_its_tail() {
        // h - u1 - a1 - u2 - a2 - u3 - a3 - compaction - u4 - a4
        //                   \- u5 - a5 (an edit of u3: a second branch)
        let s = session(vec![
            ev("session_start", "h", None, 0, ""),
            ev("user_message", "u1", Some("h"), 1, "first"),
            ev("llm_call", "a1", Some("u1"), 2, "one"),
            ev("user_message", "u2", Some("a1"), 3, "second"),
            ev("llm_call", "a2", Some("u2"), 4, "two"),
            ev("user_message", "u3", Some("a2"), 5, "third"),
            ev("llm_call", "a3", Some("u3"), 6, "three"),
            ev("compaction", "c", Some("a3"), 7, "summary so far"),
            ev("user_message", "u4", Some("c"), 8, "fourth"),
            ev("llm_call", "a4", Some("u4"), 9, "four"),
            ev("user_message", "u5", Some("a2"), 10, "third, edited"),
            ev("llm_call", "a5", Some("u5"), 11, "five"),
        ]);
        let t = segment(&s);
        let batch = turns_batch(&[(&s, &t)], 1).unwrap();
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .unwrap()
                .as_string::<i32>()
                .clone()
        };
        let (ids, prefixes, tails) = (
            column("turn_id"),
            column("context_prefix_turn_id"),
            column("context_tail"),
        );
        let counts = batch
            .column_by_name("context_messages")
            .unwrap()
            .as_primitive::<arrow::datatypes::Int64Type>()
            .clone();
        let mut rebuilt: HashMap<String, Vec<Value>> = HashMap::new();
        for (k, turn) in t.turns.iter().enumerate() {
            let mut context = match prefixes.is_valid(k) {
                true => rebuilt[prefixes.value(k)].clone(),
                false => Vec::new(),
            };
            let tail: Vec<Value> = serde_json::from_str(tails.value(k)).unwrap();
            context.extend(tail);
            assert_eq!(context, messages_of(&s, &turn.context), "turn {k}");
            assert_eq!(counts.value(k), context.len() as i64);
            rebuilt.insert(ids.value(k).to_string(), context);
        }
        let text = |k: usize| s.events[t.turns[k].user()].text_or_empty().to_string();
        let by_text = |x: &str| (0..t.turns.len()).find(|&k| text(k) == x).unwrap();
        let prefix_of = |x: &str| t.turns[by_text(x)].context_prefix.map(text);
        assert_eq!(prefix_of("first"), None, "nothing before the first turn");
        assert_eq!(
            prefix_of("second"),
            None,
            "the first turn's context is empty"
        );
        assert_eq!(prefix_of("third").as_deref(), Some("second"));
        assert_eq!(
            prefix_of("fourth"),
            None,
            "the compaction restarted the context"
        );
        assert_eq!(prefix_of("third, edited").as_deref(), Some("second"));
        // A tail holds only what is new: the previous exchange.
        let tail: Vec<Value> = serde_json::from_str(tails.value(by_text("third"))).unwrap();
        assert_eq!(tail.len(), 2, "{tail:?}");
    }

    #[test]
    fn a_branch_summary_after_a_turn_leads_into_the_next_turn_not_the_response() {
        // h - u1 - a1 - u2 - a2                 (abandoned)
        //          \- summary - label - u3 - a3 (active: pi's tree navigation)
        let s = session(vec![
            ev("session_start", "h", None, 0, ""),
            ev("user_message", "u1", Some("h"), 1, "first"),
            ev("llm_call", "a1", Some("u1"), 2, "answer one"),
            ev("user_message", "u2", Some("a1"), 3, "second"),
            ev("llm_call", "a2", Some("u2"), 4, "answer two"),
            ev(
                "branch_summary",
                "b",
                Some("a1"),
                5,
                "The user explored u2.",
            ),
            ev("label", "l", Some("b"), 6, "retry"),
            ev("user_message", "u3", Some("l"), 7, "third"),
            ev("llm_call", "a3", Some("u3"), 8, "answer three"),
        ]);
        let t = segment(&s);
        // The first turn is the same on both branches: stored once.
        assert_eq!(
            prompts(&s, &t),
            vec![
                ("first".into(), true),
                ("third".into(), true),
                ("second".into(), false)
            ]
        );
        assert_eq!(t.turns[0].events, vec![1, 2]);
        assert_eq!(
            messages_of(&s, &t.turns[0].events[1..]),
            vec![json!({"role": "assistant", "content": "answer one"})]
        );
        // The summary is the next turn's context, after the first exchange.
        assert_eq!(t.turns[1].context, vec![1, 2, 5]);
        assert_eq!(t.turns[0].next_user, Some(7));
    }

    #[test]
    fn a_linear_session_gives_one_turn_per_user_message() {
        let s = session(vec![
            ev("session_start", "h", None, 0, ""),
            ev("user_message", "u1", Some("h"), 1, "first"),
            ev("llm_call", "a1", Some("u1"), 2, "answer one"),
            ev("user_message", "u2", Some("a1"), 3, "second"),
            ev("llm_call", "a2", Some("u2"), 4, "answer two"),
        ]);
        let t = segment(&s);
        assert_eq!(
            prompts(&s, &t),
            vec![("first".into(), true), ("second".into(), true)]
        );
        assert_eq!(t.branches, vec![vec![0, 1]]);
        assert_eq!(t.turns[0].events, vec![1, 2]);
        assert_eq!(t.turns[0].next_user, Some(3));
        assert_eq!(t.turns[1].next_user, None);
        assert_eq!(t.turns[1].turn_index, 1);
        // Context of turn 2: the first exchange (the header is not a message).
        assert_eq!(t.turns[1].context, vec![1, 2]);
        assert_eq!(t.turns[0].next_state(&s), Some((3, "user")));
    }

    #[test]
    fn abandoned_branches_give_their_own_turns_once() {
        // h - u1 - a1 - u2 - a2          (abandoned: the user went back to a1)
        //               \- u3 - a3       (active: written last)
        let s = session(vec![
            ev("session_start", "h", None, 0, ""),
            ev("user_message", "u1", Some("h"), 1, "first"),
            ev("llm_call", "a1", Some("u1"), 2, "answer one"),
            ev("user_message", "u2", Some("a1"), 3, "second"),
            ev("llm_call", "a2", Some("u2"), 4, "answer two"),
            ev("user_message", "u3", Some("a1"), 5, "second, edited"),
            ev("llm_call", "a3", Some("u3"), 6, "answer three"),
        ]);
        let t = segment(&s);
        assert_eq!(
            prompts(&s, &t),
            vec![
                ("first".into(), true),
                ("second, edited".into(), true),
                ("second".into(), false)
            ]
        );
        // The shared first turn appears on both branches, stored once.
        assert_eq!(t.branches, vec![vec![0, 1], vec![0, 2]]);
        assert_eq!(t.turns[1].parent_entry_id.as_deref(), Some("a1"));
        assert_eq!(t.turns[2].parent_entry_id.as_deref(), Some("a1"));
        // On the active branch the first turn's next state is the edited message.
        assert_eq!(t.turns[0].next_user, Some(5));
    }

    #[test]
    fn a_regenerated_answer_is_a_second_turn_with_the_same_prompt() {
        let s = session(vec![
            ev("user_message", "u1", None, 1, "question"),
            ev("llm_call", "a1", Some("u1"), 2, "first try"),
            ev("llm_call", "a2", Some("u1"), 3, "second try"),
        ]);
        let t = segment(&s);
        assert_eq!(t.turns.len(), 2);
        assert_eq!(t.turns[0].events, vec![0, 2]);
        assert!(t.turns[0].on_active_branch);
        assert_eq!(t.turns[1].events, vec![0, 1]);
        assert!(!t.turns[1].on_active_branch);
        assert_ne!(t.turns[0].turn_id, t.turns[1].turn_id);
    }

    #[test]
    fn tool_calls_follow_their_call_and_context_restarts_at_compaction() {
        let mut call = ev("tool_call", "a1", Some("u1"), 2, "");
        call.tool_call_id = Some("c1".into());
        call.tool_name = Some("read".into());
        call.tool_args = Some(r#"{"path":"a"}"#.into());
        call.event_id = "e-a1-call".into();
        let mut result = ev("tool_result", "r1", Some("a1"), 3, "contents");
        result.tool_call_id = Some("c1".into());
        let s = session(vec![
            ev("user_message", "u0", None, 0, "old"),
            ev("compaction", "c", Some("u0"), 1, "summary"),
            ev("user_message", "u1", Some("c"), 1, "read a"),
            call,
            ev("llm_call", "a1", Some("u1"), 2, ""),
            result,
            ev("llm_call", "a2", Some("r1"), 4, "done"),
        ]);
        let t = segment(&s);
        let turn = &t.turns[1];
        // The llm_call sorts before its tool_call although read after it.
        assert_eq!(turn.events, vec![2, 4, 3, 5, 6]);
        assert_eq!(turn.context, vec![1]);
        assert_eq!(turn.tool_calls_of(&s, 4), vec![3]);
        assert_eq!(turn.result_of(&s, 3), Some(5));
        let messages = messages_of(&s, &turn.events[1..]);
        assert_eq!(messages.len(), 3);
        assert_eq!(messages[0]["tool_calls"][0]["function"]["name"], "read");
        assert_eq!(
            messages[0]["tool_calls"][0]["function"]["arguments"],
            r#"{"path":"a"}"#
        );
        assert_eq!(messages[1]["role"], "tool");
        assert_eq!(messages[2]["content"], "done");
    }

    #[test]
    fn cycles_and_orphans_do_not_hang_or_panic() {
        let s = session(vec![
            ev("user_message", "a", Some("b"), 1, "x"),
            ev("llm_call", "b", Some("a"), 2, "y"),
            ev("user_message", "o", Some("missing"), 3, "orphan"),
        ]);
        let t = segment(&s);
        assert!(t
            .turns
            .iter()
            .any(|turn| s.events[turn.user()].text_or_empty() == "orphan"));
    }
}
