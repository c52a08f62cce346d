//! `kto`: unpaired preference rows for TRL's `KTOTrainer` (and `BCOTrainer`).
//!
//! Format: TRL "unpaired preference", conversational
//! (<https://huggingface.co/docs/trl/dataset_formats#unpaired-preference>;
//! `shared/docs/training-formats.md` §2.1): `prompt` (messages), `completion`
//! (the assistant's messages), `label` (bool).
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `prompt` | list<struct<role, content>> | the turn's context and user message |
//! | `completion` | list<struct<role, content>> | the turn's responses (tool calls as `<tool_call>` text, tool results as `tool` messages) |
//! | `label` | bool | reward > 0 (desirable); reward < 0 → false |
//! | `reward` | float64 | the turn's reward (mean combined step reward) |
//! | `session_id`, `turn_id` | utf8 | where the row came from |
//!
//! Turns with reward 0 or none, or without an assistant response, are left
//! out: they carry no label.

use std::sync::{Arc, OnceLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde_json::json;

use crate::messages::{has_assistant, plain, plain_list_type};
use crate::training::{Row, Turn};

/// The `--target` name.
pub const TARGET: &str = "kto";

pub(crate) const DESCRIPTION: &str = "One row per rewarded turn in TRL's unpaired preference \
    format (KTOTrainer): conversational prompt and completion, label = reward > 0.";

/// Arrow schema of a `kto` shard.
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new("prompt", plain_list_type(), false),
                Field::new("completion", plain_list_type(), false),
                Field::new("label", DataType::Boolean, false),
                Field::new("reward", DataType::Float64, false),
                Field::new("session_id", DataType::Utf8, false),
                Field::new("turn_id", DataType::Utf8, false),
            ]))
        })
        .clone()
}

/// The rows of `turns` with a non-zero reward and an assistant response.
pub fn rows(turns: &[Turn]) -> Vec<Row> {
    turns
        .iter()
        .filter(|t| has_assistant(&t.responses))
        .filter_map(|t| {
            let reward = t.reward.filter(|r| *r != 0.0)?;
            Some(Row::of_turn(
                t,
                json!({"prompt": plain(&t.prompt_messages()), "completion": plain(&t.responses),
                       "label": reward > 0.0, "reward": reward,
                       "session_id": t.session_id, "turn_id": t.turn_id}),
            ))
        })
        .collect()
}
