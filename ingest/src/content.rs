//! Content blocks of pi messages (`text`, `thinking`, `toolCall`, `image`):
//! the plain text of a content value and its image-free copy, shared by every
//! reader that stores message content (transcripts, SQLite rows, cache traces,
//! trajectory events). Block shapes: pi-ai `types.ts`, summarised in
//! `shared/docs/openclaw-formats.md` §1.7.

use serde_json::{Map, Value};

use crate::jsonl::sha256_hex;

/// Plain text of a content value: a string, or the `text` blocks of an array
/// joined by newlines (thinking, tool calls and images excluded). `None` when
/// there is no text.
pub fn plain_text(content: &Value) -> Option<String> {
    match content {
        Value::String(s) => Some(s.clone()),
        Value::Array(blocks) => {
            let texts: Vec<&str> = blocks
                .iter()
                .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|b| b.get("text").and_then(Value::as_str))
                .collect();
            (!texts.is_empty()).then(|| texts.join("\n"))
        }
        _ => None,
    }
}

/// A copy of `value` where every `{"type":"image","data":<base64>}` object
/// (at any depth) has its `data` replaced by `{"sha256": …, "bytes": …}` of
/// the base64 text, so the image can be joined on but is not stored.
pub fn without_image_bytes(value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(without_image_bytes).collect()),
        Value::Object(object) => {
            let is_image = object.get("type").and_then(Value::as_str) == Some("image");
            let mut copy = Map::with_capacity(object.len());
            for (key, item) in object {
                match (is_image, key.as_str(), item) {
                    (true, "data", Value::String(data)) => {
                        copy.insert(
                            "data".into(),
                            serde_json::json!({
                                "sha256": sha256_hex(data.as_bytes()),
                                "bytes": data.len(),
                            }),
                        );
                    }
                    _ => {
                        copy.insert(key.clone(), without_image_bytes(item));
                    }
                }
            }
            Value::Object(copy)
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_bytes_are_replaced_by_a_reference() {
        let value: Value =
            serde_json::json!([{"type":"image","data":"aGVsbG8=","mimeType":"image/png"}]);
        let clean = without_image_bytes(&value);
        assert_eq!(clean[0]["data"]["bytes"], 8);
        assert_eq!(clean[0]["data"]["sha256"].as_str().unwrap().len(), 64);
        assert_eq!(clean[0]["mimeType"], "image/png");
    }

    #[test]
    fn plain_text_joins_text_blocks_only() {
        let value = serde_json::json!([{"type":"thinking","thinking":"x"},{"type":"text","text":"a"},{"type":"text","text":"b"}]);
        assert_eq!(plain_text(&value).as_deref(), Some("a\nb"));
        assert_eq!(plain_text(&serde_json::json!("s")).as_deref(), Some("s"));
        assert_eq!(plain_text(&serde_json::json!([])), None);
    }
}
