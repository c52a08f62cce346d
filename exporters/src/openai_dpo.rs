//! `openai-dpo`: OpenAI preference fine-tuning rows, one per pair.
//!
//! Format: OpenAI "Direct preference optimization"
//! (<https://platform.openai.com/docs/guides/direct-preference-optimization>,
//! `FineTunePreferenceRequestInput` in
//! <https://platform.openai.com/docs/api-reference/fine-tuning/preference-input>;
//! `shared/docs/training-formats.md` §2.2): `{"input": {"messages", "tools"},
//! "preferred_output": [one assistant message], "non_preferred_output": [one
//! assistant message]}`.
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `input` | struct<messages: list<OpenAI message>, tools: utf8 (JSON array)> | the chosen turn's context, user message and the responses both sides share |
//! | `preferred_output`, `non_preferred_output` | list<OpenAI message> | exactly one assistant message each: the first message where the two turns differ (tool-call `arguments` as JSON strings) |
//! | `pair_source` | utf8 | `branch_sibling` or `reward_difference` |
//! | `session_id`, `chosen_turn_id`, `rejected_turn_id` | utf8 | where the row came from |
//!
//! Pairs are those of [`crate::preference::pairs`]. `train.jsonl` /
//! `validation.jsonl` hold `input`, `preferred_output` and
//! `non_preferred_output` only, `tools` as an array.

use std::sync::{Arc, OnceLock};

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use serde_json::{json, Value};

use crate::messages::{openai_list_type, openai_message, tools_of};
use crate::preference::Pair;
use crate::training::Row;

/// The `--target` name.
pub const TARGET: &str = "openai-dpo";

pub(crate) const DESCRIPTION: &str = "Preference pairs in OpenAI's preference fine-tuning format: \
    input messages, one preferred and one non-preferred assistant message, from branch siblings \
    and reward differences.";

/// Arrow schema of an `openai-dpo` shard.
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let input = DataType::Struct(Fields::from(vec![
                Field::new("messages", openai_list_type(), false),
                Field::new("tools", DataType::Utf8, false),
            ]));
            Arc::new(Schema::new(vec![
                Field::new("input", input, false),
                Field::new("preferred_output", openai_list_type(), false),
                Field::new("non_preferred_output", openai_list_type(), false),
                Field::new("pair_source", DataType::Utf8, false),
                Field::new("session_id", DataType::Utf8, false),
                Field::new("chosen_turn_id", DataType::Utf8, false),
                Field::new("rejected_turn_id", DataType::Utf8, false),
            ]))
        })
        .clone()
}

/// One row per pair (each output the first differing assistant message).
pub fn rows(pairs: &[Pair<'_>]) -> Vec<Row> {
    pairs
        .iter()
        .filter_map(|p| {
            let preferred = openai_message(p.chosen_messages().first()?, None);
            let non_preferred = openai_message(p.rejected_messages().first()?, None);
            let messages: Vec<Value> = p
                .prompt_messages()
                .iter()
                .map(|m| openai_message(m, None))
                .collect();
            let mut all = messages.clone();
            all.push(preferred.clone());
            all.push(non_preferred.clone());
            let tools = Value::Array(tools_of(&all)).to_string();
            Some(p.row(json!({
                "input": {"messages": messages, "tools": tools},
                "preferred_output": [preferred], "non_preferred_output": [non_preferred],
                "pair_source": p.source, "session_id": p.chosen.session_id,
                "chosen_turn_id": p.chosen.turn_id, "rejected_turn_id": p.rejected.turn_id})))
        })
        .collect()
}
