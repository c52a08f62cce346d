//! Rebuilding a session's conversation on its active branch from events.
//!
//! The active branch is the path from the last entry in file order up to the
//! root (see [`trajectory_schema::tree`]). On it, messages map to the
//! Chat-Completions-style roles trainers expect:
//!
//! | event | message |
//! |---|---|
//! | `user_message` | `user` (a verbatim re-send right after another user message, as OpenClaw does on fallback, is dropped) |
//! | `llm_call`, not failed | `assistant` with `content` and `tool_calls` (`arguments` as a JSON string) |
//! | `llm_call` failed (error/aborted) | dropped: nothing was generated |
//! | `injected_message` | dropped: the gateway wrote it, not a model |
//! | `tool_result` | `tool` with `name` and `tool_call_id` |
//! | `bash_execution` | `user`: ``Ran `cmd` `` and its output, as pi puts it in context |
//! | `custom_message`, `branch_summary` | `user`, as pi puts them in context |
//! | anything else | not a message |

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use serde_json::{json, Value};
use trajectory_schema::tree::{active_branch, TreeNode};

/// One event of a session as the exporter reads it (a projection of `events`).
#[derive(Debug, Clone, Default)]
pub struct ConversationEvent {
    pub event_id: String,
    pub kind: String,
    pub entry_id: Option<String>,
    pub parent_id: Option<String>,
    pub seq: i64,
    pub text: Option<String>,
    pub content: Option<String>,
    pub tool_call_id: Option<String>,
    pub tool_name: Option<String>,
    pub tool_args: Option<String>,
    pub stop_reason: Option<String>,
    pub error: Option<String>,
}

/// A tool call of an assistant message (Chat Completions shape).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolCall {
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: ToolFunction,
}

/// The function of a [`ToolCall`]; `arguments` is a JSON object as text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolFunction {
    pub name: String,
    pub arguments: String,
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    pub role: &'static str,
    pub content: Option<String>,
    pub name: Option<String>,
    pub tool_call_id: Option<String>,
    pub tool_calls: Option<Vec<ToolCall>>,
}

impl Message {
    fn text(role: &'static str, content: String) -> Message {
        Message {
            role,
            content: Some(content),
            name: None,
            tool_call_id: None,
            tool_calls: None,
        }
    }
}

/// A session's conversation on its active branch.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    pub messages: Vec<Message>,
    /// The events the messages came from (lineage).
    pub event_ids: Vec<String>,
}

impl Conversation {
    /// Whether it can train anything: at least one user and one assistant message.
    pub fn is_trainable(&self) -> bool {
        self.messages.iter().any(|m| m.role == "user")
            && self.messages.iter().any(|m| m.role == "assistant")
    }

    /// JSON-schema function specs for the tools the conversation calls, sorted
    /// by name. Parameters are inferred from the arguments seen: each property's
    /// JSON type, `required` = properties present in every call.
    pub fn tools(&self) -> Vec<Value> {
        let mut seen: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        for call in self
            .messages
            .iter()
            .flat_map(|m| m.tool_calls.iter().flatten())
        {
            let args = serde_json::from_str(&call.function.arguments).unwrap_or(Value::Null);
            seen.entry(call.function.name.as_str())
                .or_default()
                .push(args);
        }
        seen.into_iter()
            .map(|(name, calls)| {
                json!({
                    "type": "function",
                    "function": {
                        "name": name,
                        "description": "",
                        "parameters": infer_parameters(&calls),
                    }
                })
            })
            .collect()
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

pub(crate) fn infer_parameters(calls: &[Value]) -> Value {
    let objects: Vec<&serde_json::Map<String, Value>> =
        calls.iter().filter_map(Value::as_object).collect();
    let mut properties: BTreeMap<&str, &'static str> = BTreeMap::new();
    for object in &objects {
        for (key, value) in *object {
            let entry = properties.entry(key.as_str()).or_insert("null");
            if *entry == "null" {
                *entry = json_type(value);
            }
        }
    }
    let required: Vec<&str> = properties
        .keys()
        .copied()
        .filter(|key| objects.iter().all(|o| o.contains_key(*key)))
        .collect();
    let properties: serde_json::Map<String, Value> = properties
        .into_iter()
        .map(|(key, ty)| {
            let schema = if ty == "null" {
                json!({})
            } else {
                json!({ "type": ty })
            };
            (key.to_string(), schema)
        })
        .collect();
    json!({ "type": "object", "properties": properties, "required": required })
}

fn is_failed(event: &ConversationEvent) -> bool {
    matches!(
        event.stop_reason.as_deref(),
        Some("error") | Some("aborted")
    ) || event.error.is_some()
}

fn tool_calls_of(content: Option<&str>) -> Vec<ToolCall> {
    let Some(Value::Array(blocks)) = content.and_then(|c| serde_json::from_str(c).ok()) else {
        return Vec::new();
    };
    blocks
        .iter()
        .filter(|b| b.get("type").and_then(Value::as_str) == Some("toolCall"))
        .map(|b| ToolCall {
            id: b.get("id").and_then(Value::as_str).map(str::to_string),
            kind: "function",
            function: ToolFunction {
                name: b
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                arguments: match b.get("arguments") {
                    Some(Value::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                    None => "{}".to_string(),
                },
            },
        })
        .collect()
}

/// Builds the conversation of one session from its events (any order).
pub fn conversation(events: &[ConversationEvent]) -> Conversation {
    let tree: Vec<TreeNode<'_>> = events
        .iter()
        .filter(|e| e.kind != "tool_call" && e.kind != "quarantined")
        .filter_map(|e| {
            Some(TreeNode {
                entry_id: e.entry_id.as_deref()?,
                parent_id: e.parent_id.as_deref(),
                seq: e.seq,
            })
        })
        .collect();
    let branch: HashSet<&str> = active_branch(&tree);
    let mut on_branch: Vec<&ConversationEvent> = events
        .iter()
        .filter(|e| e.kind != "tool_call")
        .filter(|e| e.entry_id.as_deref().is_some_and(|id| branch.contains(id)))
        .collect();
    on_branch.sort_by(|a, b| a.seq.cmp(&b.seq).then_with(|| a.event_id.cmp(&b.event_id)));

    let mut messages: Vec<Message> = Vec::new();
    let mut event_ids = Vec::new();
    for event in on_branch {
        let text = event.text.clone().unwrap_or_default();
        let message = match event.kind.as_str() {
            "user_message" => {
                let resent = messages
                    .last()
                    .is_some_and(|m| m.role == "user" && m.content.as_deref() == Some(text.as_str()));
                if resent {
                    event_ids.push(event.event_id.clone());
                    continue;
                }
                Message::text("user", text)
            }
            "llm_call" if !is_failed(event) => {
                let calls = tool_calls_of(event.content.as_deref());
                Message {
                    role: "assistant",
                    content: (!text.is_empty()).then_some(text),
                    name: None,
                    tool_call_id: None,
                    tool_calls: (!calls.is_empty()).then_some(calls),
                }
            }
            "tool_result" => Message {
                role: "tool",
                content: Some(text),
                name: event.tool_name.clone(),
                tool_call_id: event.tool_call_id.clone(),
                tool_calls: None,
            },
            "bash_execution" => {
                let command = event
                    .tool_args
                    .as_deref()
                    .and_then(|a| serde_json::from_str::<Value>(a).ok())
                    .and_then(|a| a.get("command").and_then(Value::as_str).map(str::to_string))
                    .unwrap_or_default();
                Message::text("user", format!("Ran `{command}`\n```\n{text}\n```"))
            }
            "custom_message" if !text.is_empty() => Message::text("user", text),
            "branch_summary" if !text.is_empty() => Message::text(
                "user",
                format!("The following is a summary of a branch that this conversation came back from:\n\n{text}"),
            ),
            _ => continue,
        };
        messages.push(message);
        event_ids.push(event.event_id.clone());
    }
    Conversation {
        messages,
        event_ids,
    }
}

/// Groups events by session id, keeping each session's events in input order.
pub fn by_session(
    events: Vec<(String, ConversationEvent)>,
) -> BTreeMap<String, Vec<ConversationEvent>> {
    let mut sessions: BTreeMap<String, Vec<ConversationEvent>> = BTreeMap::new();
    for (session, event) in events {
        sessions.entry(session).or_default().push(event);
    }
    sessions
}

/// Counts messages per role (for summaries).
pub fn role_counts(conversation: &Conversation) -> HashMap<&'static str, usize> {
    let mut counts = HashMap::new();
    for m in &conversation.messages {
        *counts.entry(m.role).or_insert(0) += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(
        id: &str,
        kind: &str,
        entry: &str,
        parent: Option<&str>,
        seq: i64,
        text: &str,
    ) -> ConversationEvent {
        ConversationEvent {
            event_id: id.into(),
            kind: kind.into(),
            entry_id: Some(entry.into()),
            parent_id: parent.map(str::to_string),
            seq,
            text: Some(text.into()),
            ..Default::default()
        }
    }

    #[test]
    fn active_branch_failed_calls_and_resends() {
        let mut failed = ev("e3", "llm_call", "c", Some("b"), 3, "");
        failed.stop_reason = Some("error".into());
        let mut call = ev("e5", "llm_call", "e", Some("d"), 5, "Reading.");
        call.content = Some(
            r#"[{"type":"text","text":"Reading."},{"type":"toolCall","id":"t1","name":"read","arguments":{"path":"a"}}]"#.into(),
        );
        let mut result = ev("e6", "tool_result", "f", Some("e"), 6, "file body");
        result.tool_call_id = Some("t1".into());
        result.tool_name = Some("read".into());
        let events = vec![
            ev("e1", "session_start", "session", None, 0, ""),
            ev("e2", "user_message", "b", None, 1, "hi"),
            failed,
            ev("e4", "user_message", "d", Some("c"), 4, "hi"),
            call,
            result,
            ev("e7", "llm_call", "g", Some("f"), 7, "Done."),
            // an abandoned sibling of g, written earlier in the file
            ev("e0", "llm_call", "x", Some("f"), 2, "abandoned"),
            ev("e8", "injected_message", "h", Some("g"), 8, "delivered"),
        ];
        let conv = conversation(&events);
        let roles: Vec<_> = conv.messages.iter().map(|m| m.role).collect();
        assert_eq!(roles, ["user", "assistant", "tool", "assistant"]);
        assert_eq!(
            conv.messages[1].tool_calls.as_ref().unwrap()[0]
                .function
                .arguments,
            r#"{"path":"a"}"#
        );
        assert_eq!(conv.messages[2].tool_call_id.as_deref(), Some("t1"));
        assert!(!conv.event_ids.contains(&"e0".to_string()));
        assert!(conv.is_trainable());
        let tools = conv.tools();
        assert_eq!(tools[0]["function"]["name"], "read");
        assert_eq!(
            tools[0]["function"]["parameters"]["properties"]["path"]["type"],
            "string"
        );
        assert_eq!(tools[0]["function"]["parameters"]["required"][0], "path");
    }
}
