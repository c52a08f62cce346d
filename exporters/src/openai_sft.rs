//! `openai-sft`: OpenAI chat fine-tuning rows, one per turn.
//!
//! Format: OpenAI "Supervised fine-tuning" chat input
//! (<https://platform.openai.com/docs/guides/supervised-fine-tuning>,
//! `FineTuneChatRequestInput` in
//! <https://platform.openai.com/docs/api-reference/fine-tuning/chat-input>;
//! summary in `shared/docs/training-formats.md` §2.2):
//! `{"messages": [...], "tools": [...]}`, assistant `tool_calls` with
//! `arguments` as a JSON **string**, `weight` 0/1 on assistant messages.
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `messages` | list<struct<role, content, name, tool_call_id, tool_calls, weight: int64>> | the turn's context (assistant `weight` 0), its user message, its responses (assistant `weight` 1) |
//! | `tools` | utf8 (JSON array) | function specs of the tools called in the row, parameters inferred from the calls |
//! | `session_id`, `turn_id`, `agent_id` | utf8 | where the row came from |
//! | `reward` | float64 | the turn's reward (mean combined step reward), null without one |
//!
//! Turns without an assistant response are left out (nothing to train). The
//! export also writes `train.jsonl` / `validation.jsonl`: the `messages` and
//! `tools` only, nulls dropped, `tools` an array — upload-ready.

use std::sync::{Arc, OnceLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde_json::{json, Value};

use crate::messages::{has_assistant, openai_list_type, openai_message, tools_of};
use crate::training::{Row, Turn};

/// The `--target` name.
pub const TARGET: &str = "openai-sft";

pub(crate) const DESCRIPTION: &str = "One row per turn in OpenAI's chat fine-tuning format: the \
    context (assistant weight 0), the user message and the turn's responses (assistant weight 1); \
    tool-call arguments are JSON strings.";

/// Arrow schema of an `openai-sft` shard.
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new("messages", openai_list_type(), false),
                Field::new("tools", DataType::Utf8, false),
                Field::new("session_id", DataType::Utf8, false),
                Field::new("turn_id", DataType::Utf8, false),
                Field::new("agent_id", DataType::Utf8, true),
                Field::new("reward", DataType::Float64, true),
            ]))
        })
        .clone()
}

/// The rows of `turns` (in order; turns without an assistant response skipped).
pub fn rows(turns: &[Turn]) -> Vec<Row> {
    turns
        .iter()
        .filter(|t| has_assistant(&t.responses))
        .map(|t| {
            let mut messages: Vec<Value> = t
                .context
                .iter()
                .map(|m| openai_message(m, Some(0)))
                .collect();
            messages.push(openai_message(&crate::messages::user(&t.prompt), None));
            messages.extend(t.responses.iter().map(|m| openai_message(m, Some(1))));
            let tools = Value::Array(tools_of(&messages)).to_string();
            Row::of_turn(
                t,
                json!({"messages": messages, "tools": tools, "session_id": t.session_id,
                       "turn_id": t.turn_id, "agent_id": t.agent_id, "reward": t.reward}),
            )
        })
        .collect()
}
