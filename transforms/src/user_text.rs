//! What a user message says about the turn before it: re-ask similarity,
//! correction, thanks, explicit feedback and continuation phrases.
//!
//! All rules are deterministic and documented in `docs/datasets.md`
//! (`## rewards`). Text is normalised first: lowercased, `’` folded to `'`,
//! every run of characters other than letters, digits and `'` replaced by one
//! space.

use std::collections::HashSet;
use std::sync::OnceLock;

use regex::Regex;

/// Normalised text: lowercase words separated by single spaces.
pub fn normalise(text: &str) -> String {
    if text.is_ascii() {
        // The same result in one pass, without the lowercased copy.
        let mut out = String::with_capacity(text.len());
        let mut pending_space = false;
        for b in text.bytes() {
            if b.is_ascii_alphanumeric() || b == b'\'' {
                if pending_space && !out.is_empty() {
                    out.push(' ');
                }
                pending_space = false;
                out.push(b.to_ascii_lowercase() as char);
            } else {
                pending_space = true;
            }
        }
        return out;
    }
    normalise_unicode(text)
}

/// [`normalise`] for any text (Unicode lowercase, `’` folded).
fn normalise_unicode(text: &str) -> String {
    let lowered = text.to_lowercase().replace('’', "'");
    let mut out = String::with_capacity(lowered.len());
    let mut pending_space = false;
    for c in lowered.chars() {
        if c.is_alphanumeric() || c == '\'' {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.push(c);
        } else {
            pending_space = true;
        }
    }
    out
}

/// Word shingles of size `k` of the normalised text; a text with fewer than
/// `k` words gives one shingle of all its words (none when it has no word).
pub fn shingles(text: &str, k: usize) -> HashSet<String> {
    let normalised = normalise(text);
    let words: Vec<&str> = normalised.split(' ').filter(|w| !w.is_empty()).collect();
    let k = k.max(1);
    if words.is_empty() {
        return HashSet::new();
    }
    if words.len() < k {
        return HashSet::from([words.join(" ")]);
    }
    words.windows(k).map(|w| w.join(" ")).collect()
}

/// Jaccard similarity |A∩B| / |A∪B| of the word `k`-shingles of `a` and `b`
/// (the sets [`shingles`] gives), in [0, 1]; 0 when either has no word.
///
/// Computed on slices of the normalised texts, sorted and merged: no
/// shingle is allocated (the reward rules call it once per LLM call).
pub fn jaccard(a: &str, b: &str, k: usize) -> f64 {
    let (a, b) = (normalise(a), normalise(b));
    let (a, b) = (shingle_slices(&a, k), shingle_slices(&b, k));
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    crate::minhash::jaccard(&a, &b)
}

/// The distinct word `k`-shingles of `normalised` (output of [`normalise`]:
/// words joined by single spaces), sorted: each is a slice of it, since `k`
/// consecutive words are contiguous there. Fewer than `k` words give the
/// whole text; none give nothing.
fn shingle_slices(normalised: &str, k: usize) -> Vec<&str> {
    if normalised.is_empty() {
        return Vec::new();
    }
    let k = k.max(1);
    let mut bounds = Vec::new();
    let mut start = 0;
    for (i, byte) in normalised.bytes().enumerate() {
        if byte == b' ' {
            bounds.push((start, i));
            start = i + 1;
        }
    }
    bounds.push((start, normalised.len()));
    if bounds.len() < k {
        return vec![normalised];
    }
    let mut out: Vec<&str> = bounds
        .windows(k)
        .map(|w| &normalised[w[0].0..w[k - 1].1])
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Shingle size used for re-ask similarity.
pub const REASK_SHINGLE_WORDS: usize = 2;

/// Whether `pattern` (compiled once into `cell`) matches the normalised `text`.
/// The patterns are constants covered by tests; one that failed to compile
/// would match nothing rather than panic.
fn matches(cell: &'static OnceLock<Option<Regex>>, pattern: &str, text: &str) -> bool {
    cell.get_or_init(|| Regex::new(pattern).ok())
        .as_ref()
        .is_some_and(|re| re.is_match(&normalise(text)))
}

/// Correction phrases (on normalised text): a message starting with
/// `no`/`nope`/`wrong`/`stop`/`undo`/`revert`, or containing one of the
/// phrases of [`CORRECTION_PATTERN`].
pub const CORRECTION_PATTERN: &str = r"^(no|nope|wrong|stop|undo|revert)\b|\b(try again|i meant|i said|that's not|that is not|not what i|doesn't work|does not work|didn't work|did not work|still (broken|failing|fails|wrong|not working)|you forgot|that's wrong|that is wrong|incorrect|not correct|you missed|please fix|it's broken|is broken)\b";

/// Thanks / approval phrases (on normalised text).
pub const THANKS_PATTERN: &str = r"\b(thanks|thank you|thank u|thx|ty|perfect|great job|awesome|works now|that worked|it works|it worked|lgtm|looks good|well done|nice work|exactly)\b";

/// Continuation phrases at the start of a message (on normalised text): the
/// user carries on with the same task.
pub const CONTINUATION_PATTERN: &str = r"^(continue|go on|go ahead|keep going|proceed|carry on|yes|yep|yeah|ok|okay|sure|do it|please do|retry|again|and|also|now|then|next)\b";

/// Whether the message corrects the previous answer.
pub fn is_correction(text: &str) -> bool {
    static CELL: OnceLock<Option<Regex>> = OnceLock::new();
    matches(&CELL, CORRECTION_PATTERN, text)
}

/// Whether the message thanks or approves.
pub fn is_thanks(text: &str) -> bool {
    static CELL: OnceLock<Option<Regex>> = OnceLock::new();
    matches(&CELL, THANKS_PATTERN, text)
}

/// Whether the message continues the previous task.
pub fn is_continuation(text: &str) -> bool {
    static CELL: OnceLock<Option<Regex>> = OnceLock::new();
    matches(&CELL, CONTINUATION_PATTERN, text)
}

/// Explicit feedback: a message that is only 👍/👎 (any skin tone), `+1`/`-1`,
/// `:+1:`/`:-1:` or `/good`/`/bad`. Returns +1.0 or −1.0.
pub fn explicit_feedback(text: &str) -> Option<f64> {
    let trimmed: String = text
        .trim()
        .chars()
        .filter(|c| !('\u{1F3FB}'..='\u{1F3FF}').contains(c) && *c != '\u{FE0F}')
        .collect();
    match trimmed.as_str() {
        "👍" | "+1" | ":+1:" | ":thumbsup:" | "/good" => Some(1.0),
        "👎" | "-1" | ":-1:" | ":thumbsdown:" | "/bad" => Some(-1.0),
        _ => None,
    }
}

/// Hash of the normalised prompt (32 hex chars): rollouts of the same prompt
/// share it (GRPO groups).
pub fn prompt_hash(text: &str) -> String {
    crate::columns::stable_id(&["prompt", &normalise(text)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_folds_case_and_punctuation() {
        assert_eq!(
            normalise("  Hello,   WORLD!! It’s ok "),
            "hello world it's ok"
        );
        assert_eq!(normalise("!!!"), "");
    }

    #[test]
    fn ascii_texts_normalise_as_the_unicode_path_does() {
        for text in [
            "Hello, World!",
            "  it's OK_2  go\t\nnow ",
            "",
            "!!!",
            "A1b2 C3'd'",
        ] {
            assert_eq!(normalise(text), normalise_unicode(text), "{text:?}");
        }
        assert_eq!(normalise("It’s ÉTÉ"), "it's été");
    }

    #[test]
    fn jaccard_of_identical_texts_is_one_and_of_disjoint_zero() {
        assert_eq!(
            jaccard("list the files here", "List the files, here!", 2),
            1.0
        );
        assert_eq!(jaccard("list the files", "weather in paris", 2), 0.0);
        assert_eq!(jaccard("", "anything", 2), 0.0);
        // {a b, b c, c d} vs {a b, b c, c e}: 2 shared of 4 distinct.
        assert!((jaccard("a b c d", "a b c e", 2) - 0.5).abs() < 1e-12);
        // One word each: the whole text is one shingle.
        assert_eq!(jaccard("hello", "hello", 2), 1.0);
    }

    #[test]
    fn jaccard_equals_the_ratio_of_the_shingle_sets() {
        let texts = [
            "the cat sat on the mat, the cat sat",
            "The cat sat on a mat",
            "cat",
            "Cat!",
            "  ",
            "héllo wörld héllo wörld again",
            "hello world",
            "a b a b a b",
        ];
        for a in texts {
            for b in texts {
                for k in 1..4 {
                    let (sa, sb) = (shingles(a, k), shingles(b, k));
                    let expected = if sa.is_empty() || sb.is_empty() {
                        0.0
                    } else {
                        sa.intersection(&sb).count() as f64 / sa.union(&sb).count() as f64
                    };
                    assert_eq!(jaccard(a, b, k), expected, "{a:?} vs {b:?}, k = {k}");
                }
            }
        }
    }

    #[test]
    fn phrases_fire_on_their_words_only() {
        assert!(is_correction("No, I meant the other file"));
        assert!(is_correction("that's wrong, try again"));
        assert!(is_correction("It still fails"));
        assert!(!is_correction("Notes on the meeting please"));
        assert!(!is_correction("know what time it is?"));
        assert!(is_thanks("Thanks, that worked!"));
        assert!(is_thanks("perfect"));
        assert!(!is_thanks("thanksgiving menu ideas"));
        assert!(is_continuation("ok go ahead"));
        assert!(is_continuation("Continue"));
        assert!(!is_continuation("okra recipes"));
    }

    #[test]
    fn explicit_feedback_is_only_a_bare_reaction() {
        assert_eq!(explicit_feedback("👍"), Some(1.0));
        assert_eq!(explicit_feedback(" 👎🏽 "), Some(-1.0));
        assert_eq!(explicit_feedback("+1"), Some(1.0));
        assert_eq!(explicit_feedback("👍 but also fix the test"), None);
        assert_eq!(explicit_feedback("1"), None);
    }

    #[test]
    fn prompt_hash_ignores_case_and_spacing() {
        assert_eq!(prompt_hash("Run the Tests"), prompt_hash("run  the tests!"));
        assert_ne!(prompt_hash("run the tests"), prompt_hash("run the linter"));
    }
}
