//! Message shapes shared by the derived-table targets.
//!
//! The `turns` table stores `context` and `responses` as JSON arrays of
//! OpenAI chat messages (`{"role", "content", "tool_calls": [{"id", "type",
//! "function": {"name", "arguments"}}], "tool_call_id", "name"}`, see
//! `docs/datasets.md`, section turns). This module turns them into:
//!
//! - [`openai_message`]: the OpenAI chat fine-tuning shape
//!   (<https://platform.openai.com/docs/api-reference/fine-tuning/chat-input>):
//!   `arguments` always a JSON **string**, `content` a string (or null on an
//!   assistant message that only calls tools), `weight` 0/1 on assistant
//!   messages when asked;
//! - [`plain`]: TRL's conversational shape `{role, content}` with text content
//!   (<https://huggingface.co/docs/trl/dataset_formats>), tool calls rendered as
//!   `<tool_call>{"name": …, "arguments": …}</tool_call>` (the Hermes / Qwen
//!   chat-template convention), one Parquet schema for every row.
//!
//! And the Arrow types of both, so every target has a fixed schema (an empty
//! or all-null export keeps its columns and types).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields};
use serde_json::{json, Map, Value};

use crate::conversation::infer_parameters;

/// Arrow type of a [`plain`] message list: `list<struct<role: utf8, content: utf8>>`.
pub fn plain_list_type() -> DataType {
    let message = DataType::Struct(Fields::from(vec![
        Field::new("role", DataType::Utf8, false),
        Field::new("content", DataType::Utf8, true),
    ]));
    DataType::List(Arc::new(Field::new("item", message, true)))
}

/// Arrow type of an [`openai_message`] list: `list<struct<role, content,
/// name, tool_call_id, tool_calls: list<struct<id, type, function:
/// struct<name, arguments>>>, weight: int64>>` (all utf8 but `weight`).
pub fn openai_list_type() -> DataType {
    chat_message_list_type(true)
}

/// Arrow type of a list of OpenAI-style chat messages with tool calls,
/// with a `weight: int64` field when `with_weight` (OpenAI fine-tuning) and
/// without it for TRL.
pub fn chat_message_list_type(with_weight: bool) -> DataType {
    let function = DataType::Struct(Fields::from(vec![
        Field::new("name", DataType::Utf8, true),
        Field::new("arguments", DataType::Utf8, true),
    ]));
    let tool_call = DataType::Struct(Fields::from(vec![
        Field::new("id", DataType::Utf8, true),
        Field::new("type", DataType::Utf8, true),
        Field::new("function", function, true),
    ]));
    let mut fields = vec![
        Field::new("role", DataType::Utf8, false),
        Field::new("content", DataType::Utf8, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("tool_call_id", DataType::Utf8, true),
        Field::new(
            "tool_calls",
            DataType::List(Arc::new(Field::new("item", tool_call, true))),
            true,
        ),
    ];
    if with_weight {
        fields.push(Field::new("weight", DataType::Int64, true));
    }
    let message = DataType::Struct(Fields::from(fields));
    DataType::List(Arc::new(Field::new("item", message, true)))
}

fn role_of(message: &Value) -> &'static str {
    match message["role"].as_str().unwrap_or("user") {
        "assistant" => "assistant",
        "tool" | "toolResult" => "tool",
        "system" => "system",
        "developer" => "developer",
        _ => "user",
    }
}

fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        // Content-part arrays: their text parts joined.
        Value::Array(parts) => Some(
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        other => Some(other.to_string()),
    }
}

/// Tool calls of a message as `(id, name, arguments as JSON text)`.
fn calls_of(message: &Value) -> Vec<(Option<String>, String, String)> {
    message["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|call| {
            let function = &call["function"];
            let arguments = match &function["arguments"] {
                Value::String(s) => s.clone(),
                Value::Null => "{}".to_string(),
                other => other.to_string(),
            };
            (
                call["id"].as_str().map(str::to_string),
                function["name"].as_str().unwrap_or_default().to_string(),
                arguments,
            )
        })
        .collect()
}

/// One message in OpenAI's chat fine-tuning shape. `weight` is set on
/// assistant messages only (OpenAI rejects it elsewhere). Null fields are kept
/// here (one Parquet schema) and dropped in the JSONL ([`strip_nulls`]).
pub fn openai_message(message: &Value, weight: Option<u8>) -> Value {
    let role = role_of(message);
    let calls = calls_of(message);
    let mut content = text_of(&message["content"]);
    let only_calls = role == "assistant" && !calls.is_empty();
    if content.is_none() && !only_calls {
        content = Some(String::new());
    }
    let mut out = json!({"role": role, "content": content});
    if role == "tool" {
        out["tool_call_id"] = message["tool_call_id"].clone();
        out["name"] = message["name"].clone();
    }
    if !calls.is_empty() {
        out["tool_calls"] = Value::Array(
            calls
                .into_iter()
                .map(|(id, name, arguments)| {
                    json!({"id": id, "type": "function",
                           "function": {"name": name, "arguments": arguments}})
                })
                .collect(),
        );
    }
    if role == "assistant" {
        if let Some(w) = weight {
            out["weight"] = json!(w);
        }
    }
    out
}

/// Messages in TRL's `{role, content}` shape, tool calls rendered into the
/// assistant's text as `<tool_call>{"name": …, "arguments": {…}}</tool_call>`.
pub fn plain(messages: &[Value]) -> Vec<Value> {
    messages
        .iter()
        .map(|m| {
            let role = match role_of(m) {
                "developer" => "system",
                r => r,
            };
            let mut content = text_of(&m["content"]).unwrap_or_default();
            for (_, name, arguments) in calls_of(m) {
                let arguments: Value =
                    serde_json::from_str(&arguments).unwrap_or(Value::String(arguments));
                if !content.is_empty() {
                    content.push('\n');
                }
                let call = json!({"name": name, "arguments": arguments});
                content.push_str(&format!("<tool_call>{call}</tool_call>"));
            }
            json!({"role": role, "content": content})
        })
        .collect()
}

/// A user message with `text`.
pub fn user(text: &str) -> Value {
    json!({"role": "user", "content": text})
}

/// Whether `messages` hold an assistant message (something to train on).
pub fn has_assistant(messages: &[Value]) -> bool {
    messages.iter().any(|m| role_of(m) == "assistant")
}

/// Number of leading messages two lists share (equal as JSON).
pub fn common_prefix(a: &[Value], b: &[Value]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// JSON-schema function specs (`{"type": "function", "function": {name,
/// description, parameters}}`) for the tools called in `messages`, sorted by
/// name; parameters inferred from the arguments seen (transcripts do not hold
/// the agent's tool schemas).
pub fn tools_of(messages: &[Value]) -> Vec<Value> {
    let mut seen: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for m in messages {
        for (_, name, arguments) in calls_of(m) {
            let args = serde_json::from_str(&arguments).unwrap_or(Value::Null);
            seen.entry(name).or_default().push(args);
        }
    }
    seen.into_iter()
        .map(|(name, calls)| {
            json!({"type": "function", "function": {
                "name": name, "description": "", "parameters": infer_parameters(&calls)}})
        })
        .collect()
}

/// `value` without null object members, recursively (OpenAI's validator
/// rejects `"name": null` and the like).
pub fn strip_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_nulls).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_arguments_are_strings_and_weights_only_on_assistant() {
        let m = json!({"role": "assistant", "content": null,
            "tool_calls": [{"id": "c1", "type": "function",
                            "function": {"name": "read", "arguments": {"path": "a"}}}]});
        let o = openai_message(&m, Some(1));
        assert_eq!(
            o["tool_calls"][0]["function"]["arguments"],
            "{\"path\":\"a\"}"
        );
        assert_eq!(o["weight"], 1);
        assert!(o["content"].is_null());
        let u = openai_message(&json!({"role": "user", "content": null}), Some(1));
        assert_eq!(u["content"], "");
        assert!(u.get("weight").is_none());
        let t = openai_message(
            &json!({"role": "tool", "tool_call_id": "c1", "name": "read", "content": "x"}),
            Some(0),
        );
        assert_eq!(
            strip_nulls(&t),
            json!({"role": "tool", "content": "x", "tool_call_id": "c1", "name": "read"})
        );
    }

    #[test]
    fn plain_renders_tool_calls_as_text() {
        let m = json!({"role": "assistant", "content": "Reading.",
            "tool_calls": [{"function": {"name": "read", "arguments": "{\"path\":\"a\"}"}}]});
        assert_eq!(
            plain(&[m])[0]["content"],
            "Reading.\n<tool_call>{\"name\":\"read\",\"arguments\":{\"path\":\"a\"}}</tool_call>"
        );
    }

    #[test]
    fn tools_are_inferred_from_calls() {
        let m = json!({"role": "assistant", "tool_calls": [
            {"function": {"name": "b", "arguments": "{\"n\": 1}"}},
            {"function": {"name": "a", "arguments": "{}"}}]});
        let tools = tools_of(&[m]);
        assert_eq!(tools[0]["function"]["name"], "a");
        assert_eq!(
            tools[1]["function"]["parameters"]["properties"]["n"]["type"],
            "integer"
        );
    }
}
