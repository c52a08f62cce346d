//! Arbitrary text through `Redactor::redact_text`, with the built-in policy
//! and with the built-in policy plus two custom rules (one with a `secret`
//! group, one matching inside masks unless masks are protected). Checks, for
//! each redactor:
//! - redacting twice equals redacting once, and the second pass masks nothing;
//! - if the input is valid JSON, the output is valid JSON;
//! - the text is borrowed exactly when no rule masked anything, every count
//!   is positive, and every placed mask is still in the output.
#![no_main]

use std::borrow::Cow;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use trajectory_ingest::redaction::{RedactionPolicy, Redactor};

const KEY: [u8; 32] = [7u8; 32];

fn redactors() -> &'static [Redactor; 2] {
    static REDACTORS: OnceLock<[Redactor; 2]> = OnceLock::new();
    REDACTORS.get_or_init(|| {
        let custom = RedactionPolicy::new()
            .with_extra_rule("acme_key", r"acme_[A-Za-z0-9]{12,}")
            .and_then(|p| {
                p.with_extra_rule(
                    "pin_code",
                    r"(?i)\bpin\s*[=:]\s*(?P<secret>[A-Za-z0-9]{4,})",
                )
            })
            .and_then(|p| p.with_extra_rule("shouting", r"[A-Z]{8,}"))
            .expect("custom rules are valid");
        [
            Redactor::new(RedactionPolicy::default(), KEY),
            Redactor::new(custom, KEY),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let is_json = serde_json::from_str::<Value>(&text).is_ok();
    for redactor in redactors() {
        let (once, counts) = redactor.redact_text(&text);
        assert_eq!(
            matches!(once, Cow::Owned(_)),
            !counts.is_empty(),
            "borrowed/owned disagrees with the counts {counts:?}"
        );
        assert!(
            counts.iter().all(|(_, n)| *n > 0),
            "a zero count: {counts:?}"
        );
        if counts.is_empty() {
            assert_eq!(once, text, "text changed without a count");
        }
        let placed: usize = counts.iter().map(|(_, n)| n).sum();
        let masks_out = once.matches("[REDACTED:").count();
        assert!(
            masks_out >= placed,
            "{placed} masks placed but {masks_out} in the output: {once:?}"
        );
        let (twice, counts_twice) = redactor.redact_text(&once);
        assert_eq!(
            twice,
            once,
            "{}: redacting twice != once (second pass masked {counts_twice:?})",
            redactor.policy_id()
        );
        assert!(
            counts_twice.is_empty(),
            "second pass counted {counts_twice:?}"
        );
        if is_json {
            if let Err(e) = serde_json::from_str::<Value>(&once) {
                panic!(
                    "{}: redaction broke JSON ({e}); counts {counts:?}; output {once:?}",
                    redactor.policy_id()
                );
            }
        }
    }
});
