//! Content blocks of pi messages (`text`, `thinking`, `toolCall`, `image`):
//! the plain text of a content value and its image-free copy, shared by every
//! reader that stores message content (transcripts, SQLite rows, cache traces,
//! trajectory events). Block shapes: pi-ai `types.ts`, summarised in
//! `shared/docs/openclaw-formats.md` §1.7.

use serde::ser::{Serialize, SerializeMap, Serializer};
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

/// [`plain_text`] of a content value the caller is done with, moving the
/// text out instead of copying it when there is a single piece of it (a
/// string, or one `text` block: most messages and tool results). The moved
/// strings are left empty in `content`; serialise it first.
pub fn take_plain_text(content: &mut Value) -> Option<String> {
    match content {
        Value::String(s) => Some(std::mem::take(s)),
        Value::Array(blocks) => {
            let mut texts: Vec<&mut String> = blocks
                .iter_mut()
                .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|b| match b.get_mut("text") {
                    Some(Value::String(text)) => Some(text),
                    _ => None,
                })
                .collect();
            match texts.len() {
                0 => None,
                1 => Some(std::mem::take(texts[0])),
                _ => Some(
                    texts
                        .iter()
                        .map(|t| t.as_str())
                        .collect::<Vec<_>>()
                        .join("\n"),
                ),
            }
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
            let is_image = is_image_block(object);
            let mut copy = Map::with_capacity(object.len());
            for (key, item) in object {
                match (is_image, key.as_str(), item) {
                    (true, "data", Value::String(data)) => {
                        copy.insert("data".into(), image_reference(data));
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

/// `value` as compact JSON with image bytes replaced as in
/// [`without_image_bytes`], serialised straight from the parsed value (no
/// copy of the tree). Byte for byte the same as
/// `without_image_bytes(value).to_string()`.
pub fn image_free_json(value: &Value) -> String {
    compact_json(&ImageFree(value)).unwrap_or_else(|| without_image_bytes(value).to_string())
}

/// Compact JSON of `value`; `None` only if serialising fails, which a
/// `serde_json::Value` never does (string keys, finite numbers).
fn compact_json<T: Serialize>(value: &T) -> Option<String> {
    serde_json::to_string(value).ok()
}

/// Serialises a JSON value with image bytes replaced (see [`image_free_json`]).
pub struct ImageFree<'a>(pub &'a Value);

impl Serialize for ImageFree<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Array(items) => serializer.collect_seq(items.iter().map(ImageFree)),
            Value::Object(object) => ImageFreeObject(object).serialize(serializer),
            other => other.serialize(serializer),
        }
    }
}

/// An object serialised like [`ImageFree`] (for callers holding a `Map`).
pub struct ImageFreeObject<'a>(pub &'a Map<String, Value>);

impl Serialize for ImageFreeObject<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let object = self.0;
        let is_image = is_image_block(object);
        let mut map = serializer.serialize_map(Some(object.len()))?;
        for (key, item) in object {
            match (is_image, key.as_str(), item) {
                (true, "data", Value::String(data)) => {
                    map.serialize_entry(key, &image_reference(data))?;
                }
                _ => map.serialize_entry(key, &ImageFree(item))?,
            }
        }
        map.end()
    }
}

/// [`image_free_json`] of an object.
pub fn image_free_object_json(object: &Map<String, Value>) -> String {
    compact_json(&ImageFreeObject(object))
        .unwrap_or_else(|| without_image_bytes(&Value::Object(object.clone())).to_string())
}

fn is_image_block(object: &Map<String, Value>) -> bool {
    object.get("type").and_then(Value::as_str) == Some("image")
}

/// `{"sha256": <hex of the base64 text>, "bytes": <its length>}`.
fn image_reference(data: &str) -> Value {
    serde_json::json!({
        "sha256": sha256_hex(data.as_bytes()),
        "bytes": data.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taken_text_is_the_plain_text() {
        let contents = [
            serde_json::json!("just a string"),
            serde_json::json!([{"type": "text", "text": "one block"}]),
            serde_json::json!([
                {"type": "thinking", "thinking": "hmm"},
                {"type": "text", "text": "first"},
                {"type": "image", "data": "aGk=", "mimeType": "image/png"},
                {"type": "text", "text": "second"},
                {"type": "toolCall", "id": "c1", "name": "ls", "arguments": {}}
            ]),
            serde_json::json!([{"type": "text", "text": 7}, {"type": "image", "data": "aGk="}]),
            serde_json::json!([]),
            serde_json::json!({"type": "text", "text": "an object is not content"}),
            Value::Null,
        ];
        for content in contents {
            let expected = plain_text(&content);
            let mut taken = content.clone();
            assert_eq!(take_plain_text(&mut taken), expected, "{content}");
        }
        let mut one = serde_json::json!([{"type": "text", "text": "moved"}]);
        take_plain_text(&mut one);
        assert_eq!(one, serde_json::json!([{"type": "text", "text": ""}]));
    }

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
    fn image_free_json_matches_the_copy_byte_for_byte() {
        let value: Value = serde_json::json!({
            "role": "toolResult",
            "content": [
                {"type": "text", "text": "a \"quoted\" line\n\u{7}"},
                {"type": "image", "data": "aGVsbG8=", "mimeType": "image/png"},
                {"type": "image", "data": 7},
                {"nested": [{"type": "image", "data": "d29ybGQ="}]},
            ],
            "n": 1.5e300,
        });
        let json = image_free_json(&value);
        assert_eq!(json, without_image_bytes(&value).to_string());
        assert!(!json.contains("aGVsbG8="), "{json}");
        assert!(
            json.contains("\"data\":7"),
            "non-string data is kept: {json}"
        );
    }

    #[test]
    fn plain_text_joins_text_blocks_only() {
        let value = serde_json::json!([{"type":"thinking","thinking":"x"},{"type":"text","text":"a"},{"type":"text","text":"b"}]);
        assert_eq!(plain_text(&value).as_deref(), Some("a\nb"));
        assert_eq!(plain_text(&serde_json::json!("s")).as_deref(), Some("s"));
        assert_eq!(plain_text(&serde_json::json!([])), None);
    }
}
