//! Byte spans of values inside a JSON text, for readers that copy a value's
//! own bytes instead of parsing it into a tree and serialising it again.
//!
//! The functions assume the text is valid JSON (RFC 8259), which the caller
//! has established with a full parse of the same text (serde_json checks
//! every string, escape and bracket): on such a text they never look past a
//! value's end. On any other text they return `None` or a wrong span, never
//! panic. [`serialises_unchanged`] tells whether serde_json's compact output
//! of a value would be byte for byte its input text.

use std::ops::Range;

/// Index of the first byte at or after `at` that is not JSON whitespace.
fn skip_whitespace(text: &[u8], mut at: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = text.get(at) {
        at += 1;
    }
    at
}

/// End (exclusive) of the string whose opening quote is at `start`.
fn string_end(text: &[u8], start: usize) -> Option<usize> {
    // A backslash and the character it escapes (`\uXXXX`'s hex digits are
    // never a quote or a backslash).
    checked_string_end(text, start, |_, _| Some(2))
}

/// End (exclusive) of the string whose opening quote is at `start`, asking
/// `escape(text, at)` about each escape (its backslash at `at`) for the
/// escape's length in bytes, or `None` to refuse the string.
fn checked_string_end(
    text: &[u8],
    start: usize,
    escape: impl Fn(&[u8], usize) -> Option<usize>,
) -> Option<usize> {
    let mut at = start + 1;
    loop {
        at += memchr::memchr2(b'"', b'\\', text.get(at..)?)?;
        if text[at] == b'"' {
            return Some(at + 1);
        }
        at += escape(text, at)?;
    }
}

/// End (exclusive) of the object or array whose bracket is at `start`.
fn container_end(text: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut at = start;
    loop {
        match *text.get(at)? {
            b'"' => {
                at = string_end(text, at)?;
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(at + 1);
                }
            }
            _ => {}
        }
        at += 1;
    }
}

/// End (exclusive) of the value that starts at `start` (no whitespace before it).
fn value_end(text: &[u8], start: usize) -> Option<usize> {
    match *text.get(start)? {
        b'"' => string_end(text, start),
        b'{' | b'[' => container_end(text, start),
        _ => {
            let length = text[start..]
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                .unwrap_or(text.len() - start);
            (length > 0).then_some(start + length)
        }
    }
}

/// Span of the value of member `key` of the object spanning `object`, the
/// first member whose key is `key` byte for byte (a key written with
/// escapes, `"\u0069d"`, is not found).
pub fn member(text: &str, object: Range<usize>, key: &str) -> Option<Range<usize>> {
    let bytes = text.as_bytes().get(..object.end)?;
    if bytes.get(object.start) != Some(&b'{') {
        return None;
    }
    let mut at = skip_whitespace(bytes, object.start + 1);
    if bytes.get(at) == Some(&b'}') {
        return None;
    }
    loop {
        let key_end = string_end(bytes, at)?;
        let name = &bytes[at + 1..key_end - 1];
        at = skip_whitespace(bytes, key_end);
        if bytes.get(at) != Some(&b':') {
            return None;
        }
        let value_start = skip_whitespace(bytes, at + 1);
        let end = value_end(bytes, value_start)?;
        if name == key.as_bytes() {
            return Some(value_start..end);
        }
        at = skip_whitespace(bytes, end);
        match bytes.get(at) {
            Some(b',') => at = skip_whitespace(bytes, at + 1),
            _ => return None,
        }
    }
}

/// Spans of the elements of the array spanning `array`, in order.
pub fn elements(text: &str, array: Range<usize>) -> Option<Vec<Range<usize>>> {
    let bytes = text.as_bytes().get(..array.end)?;
    if bytes.get(array.start) != Some(&b'[') {
        return None;
    }
    let mut spans = Vec::new();
    let mut at = skip_whitespace(bytes, array.start + 1);
    if bytes.get(at) == Some(&b']') {
        return Some(spans);
    }
    loop {
        let end = value_end(bytes, at)?;
        spans.push(at..end);
        at = skip_whitespace(bytes, end);
        match bytes.get(at) {
            Some(b',') => at = skip_whitespace(bytes, at + 1),
            Some(b']') => return Some(spans),
            _ => return None,
        }
    }
}

/// Whether serde_json's compact serialisation of the value `json` parses to
/// is `json` itself, byte for byte, assuming `json` is valid and its objects
/// have no repeated keys (serde_json keeps the last of repeated keys).
///
/// serde_json writes no whitespace, strings with only `\"`, `\\`, `\b`,
/// `\f`, `\n`, `\r`, `\t` and lower-case `\u00xx` for the other control
/// characters escaped (everything else raw, `/` and non-ASCII included),
/// integers as written, and floats in its own shortest form. So the answer
/// is no for any whitespace between tokens, any other escape (`\/`,
/// `\u00e9`, `\u001F`), any number with a fraction or an exponent, `-0`,
/// and integers of more than 18 digits (which may not fit 64 bits). That is
/// what JSON.stringify writes, e.g. pi's transcripts, except for fractions.
pub fn serialises_unchanged(json: &str) -> bool {
    serialises_unchanged_without(json, None)
}

/// [`serialises_unchanged`], and no string in `json` (key or value) is
/// `string`, written without escapes: one pass for a reader that copies a
/// value unless it holds, say, an `"image"` block.
pub fn serialises_unchanged_without(json: &str, string: Option<&str>) -> bool {
    let bytes = json.as_bytes();
    let refused = string.map(|s| s.as_bytes());
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b'"' => match canonical_string_end(bytes, at) {
                Some(end) if refused != Some(&bytes[at + 1..end - 1]) => at = end,
                _ => return false,
            },
            b'{' | b'}' | b'[' | b']' | b',' | b':' => at += 1,
            b't' | b'n' => at += 4,
            b'f' => at += 5,
            b'-' | b'0'..=b'9' => {
                let digits_start = at + usize::from(byte == b'-');
                let digits = bytes[digits_start..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                let end = digits_start + digits;
                let negative_zero = byte == b'-' && bytes.get(digits_start) == Some(&b'0');
                if digits == 0
                    || digits > 18
                    || negative_zero
                    || matches!(bytes.get(end), Some(b'.' | b'e' | b'E'))
                {
                    return false;
                }
                at = end;
            }
            _ => return false,
        }
    }
    true
}

/// Whether a text that serde_json skips without complaint (`IgnoredAny`,
/// which checks syntax only) would also parse into a `serde_json::Value`,
/// judged conservatively: `false` for any `\uD800`–`\uDFFF` escape (a lone
/// surrogate fails the tree parse; pairs are refused too), nesting deeper
/// than 100 (the tree parse stops at 128), and any number of more than 300
/// characters or with an exponent of 3 or more digits (out of `f64`'s
/// range fails it). A reader that skips parts of a line uses this to leave
/// such lines to the tree parse, which quarantines what it cannot read.
pub fn within_tree_limits(json: &str) -> bool {
    let bytes = json.as_bytes();
    let mut depth = 0usize;
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b'"' => {
                let surrogate = |text: &[u8], at: usize| {
                    text.get(at + 1) == Some(&b'u')
                        && matches!(text.get(at + 2), Some(b'd' | b'D'))
                        && matches!(
                            text.get(at + 3),
                            Some(b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F')
                        )
                };
                match checked_string_end(bytes, at, |text, at| (!surrogate(text, at)).then_some(2))
                {
                    Some(end) => at = end,
                    None => return false,
                }
                continue;
            }
            b'{' | b'[' => {
                depth += 1;
                if depth > 100 {
                    return false;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b'-' | b'0'..=b'9' => {
                let length = bytes[at..]
                    .iter()
                    .take_while(|b| matches!(b, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'))
                    .count();
                let number = &bytes[at..at + length];
                let exponent_digits =
                    number
                        .iter()
                        .position(|b| matches!(b, b'e' | b'E'))
                        .map_or(0, |e| {
                            number[e + 1..]
                                .iter()
                                .filter(|b| b.is_ascii_digit())
                                .count()
                        });
                if length > 300 || exponent_digits >= 3 {
                    return false;
                }
                at += length;
                continue;
            }
            _ => {}
        }
        at += 1;
    }
    true
}

/// End of the string at `start` if every escape in it is one serde_json
/// writes itself.
fn canonical_string_end(bytes: &[u8], start: usize) -> Option<usize> {
    checked_string_end(bytes, start, |bytes, at| match *bytes.get(at + 1)? {
        b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => Some(2),
        b'u' => {
            let hex = bytes.get(at + 2..at + 6)?;
            let low = match hex[3] {
                digit @ b'0'..=b'9' => digit - b'0',
                letter @ b'a'..=b'f' => letter - b'a' + 10,
                _ => return None,
            };
            let code = match &hex[..3] {
                b"000" => low,
                b"001" => 16 + low,
                _ => return None,
            };
            // serde_json writes these five with their short escapes.
            (!matches!(code, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d)).then_some(6)
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::Value;

    fn whole(text: &str) -> Range<usize> {
        0..text.len()
    }

    #[test]
    fn members_and_elements_are_found_past_nested_values_and_tricky_strings() {
        let text = r#"{"a\"}":"x]}\\","b" : [1,{"c":[2,3]},"]"] ,"n":-1.5e3,"t":true,"m":{"content":[{"k":null}]}}"#;
        let b = member(text, whole(text), "b").unwrap();
        assert_eq!(&text[b.clone()], r#"[1,{"c":[2,3]},"]"]"#);
        let items: Vec<&str> = elements(text, b)
            .unwrap()
            .into_iter()
            .map(|r| &text[r])
            .collect();
        assert_eq!(items, ["1", r#"{"c":[2,3]}"#, r#""]""#]);
        assert_eq!(&text[member(text, whole(text), "n").unwrap()], "-1.5e3");
        assert_eq!(&text[member(text, whole(text), "t").unwrap()], "true");
        let m = member(text, whole(text), "m").unwrap();
        let content = member(text, m, "content").unwrap();
        assert_eq!(&text[content], r#"[{"k":null}]"#);
        assert_eq!(
            member(text, whole(text), "content"),
            None,
            "only direct members"
        );
        assert_eq!(
            member(text, whole(text), "a\\\"}").map(|r| &text[r]),
            Some(r#""x]}\\""#)
        );
        assert_eq!(elements("[ ]", 0..3), Some(vec![]));
        assert_eq!(member("{}", 0..2, "a"), None);
    }

    #[test]
    fn spans_of_broken_text_are_none_not_a_panic() {
        for text in [
            "{\"a\":",
            "{\"a\"",
            "[1,",
            "{\"a\":[1,2}",
            "\"abc",
            "[\"\\",
            "{\"a\":1 2}",
        ] {
            let _ = member(text, whole(text), "a");
            let _ = elements(text, whole(text));
            let _ = serialises_unchanged(text);
        }
        assert_eq!(member("{\"a\":", 0..5, "a"), None);
        assert_eq!(elements("[1,", 0..3), None);
    }

    #[test]
    fn serialises_unchanged_agrees_with_serde_json() {
        let samples = [
            r#"[{"type":"text","text":"a \"q\" \\ line\nnext\ttab\u0007bell\u001f"}]"#,
            r#"{"a":[1,-2,true,false,null,"é/ü",{"b":{}}],"c":[]}"#,
            r#"{"a":1.5}"#,
            r#"{"a":1e3}"#,
            r#"{"a":-0}"#,
            r#"{"a": 1}"#,
            "[1,\n2]",
            r#""a\/b""#,
            r#""\u00e9""#,
            r#""\u001F""#,
            r#""\u0008""#,
            r#""\b\f""#,
            r#"123456789012345678"#,
            r#"1234567890123456789012"#,
            r#"-9223372036854775808"#,
            r#"{"text":"\ud83d\ude00"}"#,
            r#""""#,
        ];
        for json in samples {
            let value: Value = serde_json::from_str(json).unwrap();
            let again = value.to_string();
            if serialises_unchanged(json) {
                assert_eq!(again, json, "claimed unchanged: {json}");
            }
        }
        assert!(serialises_unchanged(samples[0]));
        assert!(serialises_unchanged(samples[1]));
        assert!(serialises_unchanged(samples[12]));
        assert!(
            !serialises_unchanged(samples[2]),
            "fractions may be rewritten"
        );
        assert!(!serialises_unchanged(samples[5]), "whitespace is dropped");
        assert!(!serialises_unchanged(samples[7]), "\\/ is written as /");
        let image = r#"[{"type":"image","data":"aGk="}]"#;
        assert!(serialises_unchanged(image));
        assert!(!serialises_unchanged_without(image, Some("image")));
        assert!(serialises_unchanged_without(
            r#"["images","imag"]"#,
            Some("image")
        ));
    }

    #[test]
    fn within_tree_limits_agrees_with_serde_json_where_it_says_yes() {
        let deep = format!("{}1{}", "[".repeat(129), "]".repeat(129));
        let fine = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        let long = format!("[{}]", "9".repeat(400));
        let samples = [
            (r#"{"a":"\ud800","b":1}"#, false),
            (r#"{"a":"\uD83D\uDE00"}"#, false),
            (r#"{"a":"\u00e9\\ud800"}"#, true),
            (r#"{"a":1e400}"#, false),
            (r#"{"a":1e99,"b":-2.5E+12}"#, true),
            (deep.as_str(), false),
            (fine.as_str(), true),
            (long.as_str(), false),
            (r#"{"a":[{"b":"x]}\"["}],"c":-0.0}"#, true),
        ];
        for (json, expected) in samples {
            assert_eq!(within_tree_limits(json), expected, "{json}");
            if expected {
                assert!(serde_json::from_str::<Value>(json).is_ok(), "{json}");
            }
            assert!(
                serde_json::from_str::<serde::de::IgnoredAny>(json).is_ok(),
                "{json}"
            );
        }
        assert!(serde_json::from_str::<Value>(&deep).is_err());
        assert!(serde_json::from_str::<Value>(r#"{"a":1e400}"#).is_err());
        assert!(serde_json::from_str::<Value>(r#"{"a":"\ud800","b":1}"#).is_err());
    }
}
