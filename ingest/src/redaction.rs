//! The redaction pass: masks secrets in an event's text-bearing columns
//! before anything is written to the store.
//!
//! OpenClaw writes transcripts unredacted (`shared/docs/openclaw-formats.md`
//! §5 item 6): exec commands carry tokens, tool results carry `.env` files and
//! `auth-profiles.json`, log lines carry key prefixes. [`Redactor::redact_event`]
//! masks them in `text`, `content`, `tool_args`, `raw`, `error` and
//! `attributes`, and records what it did in `redactions` and
//! `redaction_policy`.
//!
//! # Masks
//!
//! A secret is replaced by `[REDACTED:<rule>:<hash>]`, where `<hash>` is the
//! first 8 hex characters of `blake3::keyed_hash(store_key, secret)`. The key
//! is a per-store 32-byte secret the caller passes in: the same secret gives
//! the same mask within a store (so a leaked key can be followed across
//! sessions), a mask cannot be reversed, and another store (another key) gives
//! other masks. A mask contains no `"`, `\` or control character, and the
//! rules never cut a JSON escape sequence in two, so a JSON text (the `raw`
//! line, `content`, `tool_args`) stays valid JSON after redaction.
//! Redacting redacted text changes nothing (masks are never re-masked).
//!
//! # Rules of `trajectory-redact-v1`
//!
//! Applied in this order; a later rule never masks inside an earlier mask.
//!
//! | rule | matches | example mask |
//! |---|---|---|
//! | `private_key` | a PEM private key block, `-----BEGIN … PRIVATE KEY-----` to `-----END … PRIVATE KEY-----`, with real newlines or `\n` escapes inside a JSON string; a block without its END line is masked to the end of its base64 | `[REDACTED:private_key:5be0e9a1]` |
//! | `jwt` | a JSON Web Token: `eyJ…` `.` segment `.` signature (base64url) | `[REDACTED:jwt:0c4d1f2e]` |
//! | `anthropic_key` | `sk-ant-…` (API, admin and OAuth keys) | `[REDACTED:anthropic_key:9a31c07b]` |
//! | `openrouter_key` | `sk-or-v1-…` | `[REDACTED:openrouter_key:77e2a4c0]` |
//! | `openai_key` | `sk-proj-…`, `sk-svcacct-…`, `sk-admin-…`, `sk-None-…`, legacy `sk-` + 20 or more letters and digits | `[REDACTED:openai_key:3f9a1c2b]` |
//! | `google_api_key` | `AIza` + 35 characters | `[REDACTED:google_api_key:1e0b6d55]` |
//! | `google_oauth_token` | `ya29.` + 20 or more characters | `[REDACTED:google_oauth_token:c2f81a90]` |
//! | `aws_access_key_id` | `AKIA` / `ASIA` + 16 upper-case letters or digits | `[REDACTED:aws_access_key_id:4d2e8b17]` |
//! | `github_token` | `ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_` + 30 or more characters, `github_pat_…` | `[REDACTED:github_token:aa90c3d4]` |
//! | `slack_token` | `xoxb-`, `xoxp-`, `xoxa-`, `xoxr-`, `xoxs-`, `xapp-` tokens | `[REDACTED:slack_token:61b0fe2c]` |
//! | `slack_webhook` | the path of `https://hooks.slack.com/services/…` (host kept) | `https://hooks.slack.com/[REDACTED:slack_webhook:0f4e2a9d]` |
//! | `stripe_key` | `sk_live_`, `sk_test_`, `rk_live_`, `rk_test_`, `pk_live_`, `whsec_` keys | `[REDACTED:stripe_key:e3d2c1b0]` |
//! | `url_password` | the password of `scheme://user:password@host` (user and host kept) | `postgres://app:[REDACTED:url_password:8c1d2e3f]@db:5432` |
//! | `aws_secret_key` | the 40-character value of `aws_secret_access_key = …` style assignments | `aws_secret_access_key = [REDACTED:aws_secret_key:b7a6c5d4]` |
//! | `bearer_token` | the token after `Bearer ` (8+ characters with a digit, or 20+) | `Authorization: Bearer [REDACTED:bearer_token:12ab34cd]` |
//! | `sensitive_assignment` | the value of `KEY=value`, `KEY: value`, `"key": "value"`, `KEY := value`, `'key' => 'value'` where the key name contains TOKEN, SECRET, PASSWORD, PASSWD, PASSPHRASE, API_KEY, APIKEY, PRIVATE_KEY, ACCESS_KEY, CREDENTIAL or AUTH (any case; after `Authorization:` a `Bearer`/`Basic`/`Token`/`Digest`/`Bot` scheme word is kept) | `OPENAI_API_KEY=[REDACTED:sensitive_assignment:0a1b2c3d]` |
//! | `sensitive_flag` | the argument of a command-line flag with such a name: `--password hunter2`, `--api-key abc` | `--password [REDACTED:sensitive_flag:9e8d7c6b]` |
//!
//! A key name is matched by its words (split at `_`, `-`, `.` and camelCase):
//! `TOKEN` must be a whole word or end one (`accessToken`, `GH_TOKEN`), so
//! `max_tokens`, `totalTokens` and `tokenizer` are not secrets; `AUTH` must be
//! `auth`, `authorization`, `authkey` or `authtoken`, so `author` is not. Keys
//! whose last word describes the secret rather than holding it (`token_type`,
//! `auth_mode`, `password_file`, `token_count`, `auth_profile_id`, …) are not
//! masked. Values that cannot be secrets are left alone: numbers, `true`,
//! `false`, `null`, `none`, placeholders (`***`, `<token>`, `${VAR}`,
//! `$VAR`, `%VAR%`, `{{var}}`, `process.env.X`), scheme words, a few English
//! filler words, and values shorter than 3 characters.
//!
//! Extra rules come from the configuration ([`RedactionPolicy::with_extra_rule`])
//! and run after the built-in ones. A custom regex with capture groups masks
//! its group named `secret`, else group 1; without groups, the whole match. A
//! custom match whose masked part contains `"`, `\` or a control character is
//! not masked (masking it could break the JSON it sits in): write patterns that
//! cannot cross a quote or a backslash, e.g. `[^"\\\s]+` rather than `.+`.
//!
//! # Versioning
//!
//! [`POLICY_VERSION`] names the built-in rule set. **Any change to the
//! built-in rules (a pattern, a validator, the order, the mask format or the
//! hash) bumps it** (`trajectory-redact-v2`, …), so the `redaction_policy`
//! column says exactly which rules were applied to a row. With custom rules the
//! id is `trajectory-redact-v1+N custom rules (<fingerprint>)`, the fingerprint
//! being 8 hex characters of sha256 over the custom names and patterns, so two
//! stores with different custom rules do not share an id.
//!
//! # Cost
//!
//! One `RegexSet` of the rules' trigger literals (`sk-`, `AIza`, `eyJ`,
//! `PRIVATE KEY`, `token`, `auth`, …) is run first; only the rules whose
//! trigger occurs run, and text in which nothing matches is returned
//! borrowed, without allocation. Run [`strip_inline_images`] before redaction
//! so the redactor does not scan megabytes of base64.
//!
//! # Known gaps
//!
//! - Secrets without a recognisable prefix or a sensitive key name (a bare
//!   password in prose, a random hex API key, `curl -u user:pass`,
//!   `mysql -pPASS`) are not found; there is no entropy-based detection.
//! - A value is masked up to the first `\`, quote, whitespace (unquoted) or
//!   line end: the part of a password after an escaped character (`pa\"ss`)
//!   survives. Purely numeric values (PINs) are not masked.
//! - The hash of a secret depends on its spelling in the text: the same PEM
//!   key hashes the same with real or escaped newlines (the base64 body is
//!   hashed), but a token inside a double-escaped JSON string and the same
//!   token in plain text hash the same only when no escapes sit inside it.
//! - Only the six text-bearing columns are redacted (`tool_name`,
//!   `session_key`, `source_uri` and the ids are not).
//! - Google refresh tokens (`1//0…`), Azure, Hugging Face, Twilio and other
//!   provider key formats are not in v1; add them with custom rules.
//! - The key-name heuristics can mask ordinary words after `token:` in prose,
//!   and miss secrets stored under unusual key names.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::sync::{LazyLock, OnceLock};

use aho_corasick::{AhoCorasick, MatchKind};
use memchr::memmem;
use regex::{Captures, Regex, RegexSet};
use serde_json::Value;
use sha2::{Digest, Sha256};
use thiserror::Error;
use trajectory_schema::Event;

/// Id of the built-in rule set. Bumped on any change to the built-in rules.
pub const POLICY_VERSION: &str = "trajectory-redact-v1";

/// Start of every mask.
const MASK_OPEN: &str = "[REDACTED:";

/// Errors building a [`RedactionPolicy`].
#[derive(Debug, Error)]
pub enum RedactionError {
    /// The pattern of a custom rule is not a valid Rust regex.
    #[error("redaction rule {name:?}: invalid regex {pattern:?}: {source}")]
    InvalidRegex {
        name: String,
        pattern: String,
        #[source]
        source: regex::Error,
    },
    /// The pattern of a custom rule matches the empty string (it would insert
    /// masks everywhere).
    #[error("redaction rule {name:?}: pattern {pattern:?} matches the empty string")]
    MatchesEmpty { name: String, pattern: String },
    /// The name is empty, too long, or has characters other than ASCII
    /// letters, digits, `_` and `-`.
    #[error("redaction rule name {0:?} is invalid: use 1 to 64 ASCII letters, digits, '_' or '-'")]
    InvalidName(String),
    /// The name is already used by a built-in or an earlier custom rule.
    #[error("redaction rule name {0:?} is already used")]
    DuplicateName(String),
}

/// What a rule checks around a regex match before masking it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// A token with a fixed prefix: no letter, digit or `_` right before it
    /// (an escaped `\n`, `\r`, `\t` before it is fine).
    Token,
    /// A token of fixed length: also no letter or digit right after it.
    TokenExact,
    /// A PEM block.
    Pem,
    /// A URL password.
    Url,
    /// A bearer token.
    Bearer,
    /// An AWS secret key value (40 chars, nothing base64-ish after it).
    AwsSecret,
    /// `KEY=value` with a sensitive key name.
    Assignment,
    /// `--flag value` with a sensitive flag name.
    Flag,
    /// A rule from the configuration.
    Custom,
}

/// One built-in rule, as written in the source.
struct Spec {
    name: &'static str,
    pattern: &'static str,
    /// Literals of which at least one must occur for the rule to match.
    trigger: &'static str,
    /// Lower-case literals of which one occurs, ASCII-lower-cased, in every
    /// match of `trigger` (`anchors_cover_every_trigger` checks it): the
    /// screens search for them in one case-sensitive pass over lower-cased
    /// text, which a SIMD literal searcher does at memory speed.
    anchors: &'static [&'static str],
    /// Capture groups holding the secret, first participating one wins
    /// (0 = the whole match).
    groups: &'static [usize],
    check: Check,
}

/// Value of a `KEY=value` assignment: double-quoted (possibly as `\"` inside a
/// JSON string), single-quoted, or bare. It never contains a quote or a
/// backslash, so it never swallows a closing quote or an escape sequence.
macro_rules! value_alternatives {
    () => {
        r#"(?:\\*"(?:(?i-u:bearer|basic|token|digest|bot)[ \t]+)?([^"\\\r\n]+)|'(?:(?i-u:bearer|basic|token|digest|bot)[ \t]+)?([^'"\\\r\n]+)|(?:(?i-u:bearer|basic|token|digest|bot)[ \t]+)?([^\s"'\\,;&|<>\[\]{}()`]+))"#
    };
}

/// Words a sensitive key name contains (the regex half; [`key_is_sensitive`]
/// decides).
macro_rules! key_words {
    () => {
        r"(?i-u:token|secret|passw(?:or)?d|passphrase|api[_.-]?key|private[_.-]?key|access[_.-]?key|credential|auth)"
    };
}

/// The literals [`key_words!`] matches, lower-case, in its order: no one is
/// a prefix of another, so a leftmost-first search for them in lower-cased
/// text finds the matches `key_words!` finds, case-insensitively, in the text
/// (`key_word_anchors_find_what_the_key_word_regex_finds` checks it).
const KEY_WORD_ANCHORS: &[&str] = &[
    "token",
    "secret",
    "password",
    "passwd",
    "passphrase",
    "api_key",
    "api.key",
    "api-key",
    "apikey",
    "private_key",
    "private.key",
    "private-key",
    "privatekey",
    "access_key",
    "access.key",
    "access-key",
    "accesskey",
    "credential",
    "auth",
];

/// PEM body: base64, headers (`Proc-Type: 4,ENCRYPTED`), whitespace, and
/// escaped newlines at any escaping depth (`\n`, `\\n`), never a lone
/// backslash, so a match never ends inside an escape sequence.
macro_rules! pem_body {
    () => {
        r"(?:[A-Za-z0-9+/=:,.\- \t\r\n]|\\+[nrt])"
    };
}

const BUILTIN: &[Spec] = &[
    Spec {
        name: "private_key",
        pattern: concat!(
            r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----(?:",
            pem_body!(),
            r"*?-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----|",
            pem_body!(),
            r"*)"
        ),
        trigger: "PRIVATE KEY",
        anchors: &["private key"],
        groups: &[0],
        check: Check::Pem,
    },
    Spec {
        name: "jwt",
        pattern: r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",
        trigger: "eyJ",
        anchors: &["eyj"],
        groups: &[0],
        check: Check::Token,
    },
    Spec {
        name: "anthropic_key",
        pattern: r"sk-ant-[A-Za-z0-9_-]{20,}",
        trigger: "sk-ant-",
        anchors: &["sk-ant-"],
        groups: &[0],
        check: Check::Token,
    },
    Spec {
        name: "openrouter_key",
        pattern: r"sk-or-v1-[A-Za-z0-9]{32,}",
        trigger: "sk-or-",
        anchors: &["sk-or-"],
        groups: &[0],
        check: Check::Token,
    },
    Spec {
        name: "openai_key",
        pattern: r"sk-(?:proj|svcacct|admin|None)-[A-Za-z0-9_-]{20,}|sk-[A-Za-z0-9]{20,}",
        trigger: "sk-",
        anchors: &["sk-"],
        groups: &[0],
        check: Check::Token,
    },
    Spec {
        name: "google_api_key",
        pattern: r"AIza[0-9A-Za-z_-]{35}",
        trigger: "AIza",
        anchors: &["aiza"],
        groups: &[0],
        check: Check::Token,
    },
    Spec {
        name: "google_oauth_token",
        pattern: r"ya29\.[0-9A-Za-z_-]{20,}",
        trigger: r"ya29\.",
        anchors: &["ya29."],
        groups: &[0],
        check: Check::Token,
    },
    Spec {
        name: "aws_access_key_id",
        pattern: r"(?:AKIA|ASIA)[0-9A-Z]{16}",
        trigger: "AKIA|ASIA",
        anchors: &["akia", "asia"],
        groups: &[0],
        check: Check::TokenExact,
    },
    Spec {
        name: "github_token",
        pattern: r"gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}",
        trigger: "ghp_|gho_|ghu_|ghs_|ghr_|github_pat_",
        anchors: &["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"],
        groups: &[0],
        check: Check::Token,
    },
    Spec {
        name: "slack_token",
        pattern: r"xox[abprs]-[A-Za-z0-9-]{10,}|xapp-[0-9]-[A-Za-z0-9-]{10,}",
        trigger: "xox|xapp-",
        anchors: &["xox", "xapp-"],
        groups: &[0],
        check: Check::Token,
    },
    Spec {
        name: "slack_webhook",
        pattern: r"https?://hooks\.slack\.com/((?:services|workflows|triggers)/[A-Za-z0-9_/-]{8,})",
        trigger: r"hooks\.slack\.com",
        anchors: &["hooks.slack.com"],
        groups: &[1],
        check: Check::Custom,
    },
    Spec {
        name: "stripe_key",
        pattern: r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}|pk_live_[A-Za-z0-9]{10,}|whsec_[A-Za-z0-9]{20,}",
        trigger: "_live_|_test_|whsec_",
        anchors: &["_live_", "_test_", "whsec_"],
        groups: &[0],
        check: Check::Token,
    },
    Spec {
        name: "url_password",
        pattern: r#"[A-Za-z][A-Za-z0-9+.-]{0,30}://[^\s:/?#@"'\\\[\]<>]{0,256}:([^\s/?#@"'\\\[\]<>]{1,256})@"#,
        trigger: "://",
        anchors: &["://"],
        groups: &[1],
        check: Check::Url,
    },
    Spec {
        name: "aws_secret_key",
        pattern: concat!(
            r#"(?i-u:aws_?secret_?(?:access_?)?key)(?:\\*["'])?[ \t]*(?::=|=>|[:=])[ \t]*(?:\\*["'])?"#,
            r"([A-Za-z0-9/+=]{40})"
        ),
        trigger: "(?i-u)aws_?secret",
        anchors: &["aws_secret", "awssecret"],
        groups: &[1],
        check: Check::AwsSecret,
    },
    Spec {
        name: "bearer_token",
        pattern: r"(?i-u:bearer)[ \t]+([A-Za-z0-9._~+/-]+=*)",
        trigger: "(?i-u)bearer",
        anchors: &["bearer"],
        groups: &[1],
        check: Check::Bearer,
    },
    Spec {
        name: "sensitive_assignment",
        pattern: concat!(
            r"([A-Za-z0-9_.-]*",
            key_words!(),
            r#"[A-Za-z0-9_.-]*)(?:\\*["'])?[ \t]*(?::=|=>|[:=])[ \t]*"#,
            value_alternatives!()
        ),
        trigger: key_words!(),
        anchors: KEY_WORD_ANCHORS,
        groups: &[2, 3, 4],
        check: Check::Assignment,
    },
    Spec {
        name: "sensitive_flag",
        pattern: concat!(
            r#"(?:^|[\s"'=(]|\\[nt])(--?[A-Za-z0-9_-]*"#,
            key_words!(),
            r"[A-Za-z0-9_-]*)(?:[ \t]+|=)",
            value_alternatives!()
        ),
        trigger: key_words!(),
        anchors: KEY_WORD_ANCHORS,
        groups: &[2, 3, 4],
        check: Check::Flag,
    },
];

/// A compiled rule.
#[derive(Clone)]
struct Rule {
    name: String,
    pattern: String,
    regex: Regex,
    groups: Vec<usize>,
    check: Check,
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rule")
            .field("name", &self.name)
            .field("pattern", &self.pattern)
            .finish()
    }
}

/// The built-in rules, compiled once, and the trigger set over them.
struct Builtin {
    rules: Vec<Rule>,
    triggers: RegexSet,
    /// Every rule's anchors, leftmost-first, over lower-cased text: no
    /// match, no trigger.
    trigger_screen: AhoCorasick,
    /// Per pattern of `trigger_screen`: whether it is a key word
    /// (an anchor of `sensitive_assignment` or `sensitive_flag`).
    key_word_pattern: Vec<bool>,
    /// The anchors of every other rule.
    other_anchors: AhoCorasick,
    /// The length of the longest of `other_anchors`, in bytes.
    longest_other_anchor: usize,
}

/// An Aho-Corasick automaton over built-in literals.
/// Leftmost-first: the search can stop at the first match, which makes it
/// about twice as fast as the standard semantics in an `is_match`.
fn literal_searcher<'a>(literals: impl IntoIterator<Item = &'a str>) -> AhoCorasick {
    AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostFirst)
        .build(literals)
        .expect("built-in redaction literals compile")
}

fn builtin() -> &'static Builtin {
    static BUILTIN_RULES: OnceLock<Builtin> = OnceLock::new();
    BUILTIN_RULES.get_or_init(|| {
        let rules = BUILTIN
            .iter()
            .map(|spec| Rule {
                name: spec.name.to_string(),
                pattern: spec.pattern.to_string(),
                // The patterns are constants; `builtin_rules_compile` tests them.
                regex: Regex::new(spec.pattern).expect("built-in redaction regex compiles"),
                groups: spec.groups.to_vec(),
                check: spec.check,
            })
            .collect();
        let triggers = RegexSet::new(BUILTIN.iter().map(|spec| spec.trigger))
            .expect("built-in redaction triggers compile");
        let is_key_word = |spec: &Spec| matches!(spec.check, Check::Assignment | Check::Flag);
        // Both key-word rules have the same anchors: each is searched once.
        let mut anchors: Vec<(&str, bool)> = Vec::new();
        for spec in BUILTIN {
            for anchor in spec.anchors {
                if !anchors.iter().any(|(a, _)| a == anchor) {
                    anchors.push((*anchor, is_key_word(spec)));
                }
            }
        }
        let other: Vec<&str> = anchors
            .iter()
            .filter(|(_, k)| !k)
            .map(|(a, _)| *a)
            .collect();
        Builtin {
            rules,
            triggers,
            trigger_screen: literal_searcher(anchors.iter().map(|(a, _)| *a)),
            key_word_pattern: anchors.iter().map(|(_, k)| *k).collect(),
            longest_other_anchor: other.iter().map(|a| a.len()).max().unwrap_or(0),
            other_anchors: literal_searcher(other),
        }
    })
}

/// Runs `f` on `text` with its ASCII letters lower-cased (byte offsets are
/// kept: only bytes `A-Z` change), in a buffer each thread reuses.
fn with_ascii_lowercase<R>(text: &str, f: impl FnOnce(&[u8]) -> R) -> R {
    thread_local! {
        static LOWER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    LOWER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buffer) => {
            buffer.clear();
            buffer.extend_from_slice(text.as_bytes());
            buffer.make_ascii_lowercase();
            f(&buffer)
        }
        // Only a re-entrant call finds the buffer taken.
        Err(_) => f(&text.as_bytes().to_ascii_lowercase()),
    })
}

/// Regex of a mask, to keep rules from masking inside masks.
fn mask_regex() -> &'static Regex {
    static MASK: OnceLock<Regex> = OnceLock::new();
    MASK.get_or_init(|| {
        Regex::new(r"\[REDACTED:[A-Za-z0-9_-]{1,64}:[0-9a-f]{8}\]").expect("mask regex compiles")
    })
}

/// A versioned set of redaction rules: the built-in `trajectory-redact-v1`
/// rules ([`Default`]) plus custom rules from the configuration.
#[derive(Debug, Clone, Default)]
pub struct RedactionPolicy {
    extra: Vec<Rule>,
}

impl RedactionPolicy {
    /// The built-in rules only (same as [`Default`]).
    pub fn new() -> RedactionPolicy {
        RedactionPolicy::default()
    }

    /// Adds a custom rule named `name` (1 to 64 ASCII letters, digits, `_`,
    /// `-`; not a name already in use) masking what `pattern` (Rust `regex`
    /// syntax) matches: its group named `secret`, else its group 1, else the
    /// whole match. Custom rules run after the built-in ones, in the order
    /// added.
    ///
    /// Errors: an invalid name, a duplicate name, an invalid regex, or a regex
    /// that matches the empty string.
    pub fn with_extra_rule(
        mut self,
        name: &str,
        pattern: &str,
    ) -> Result<RedactionPolicy, RedactionError> {
        let name_ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !name_ok {
            return Err(RedactionError::InvalidName(name.to_string()));
        }
        if self.rule_names().any(|n| n == name) {
            return Err(RedactionError::DuplicateName(name.to_string()));
        }
        let regex = Regex::new(pattern).map_err(|source| RedactionError::InvalidRegex {
            name: name.to_string(),
            pattern: pattern.to_string(),
            source,
        })?;
        if regex.is_match("") {
            return Err(RedactionError::MatchesEmpty {
                name: name.to_string(),
                pattern: pattern.to_string(),
            });
        }
        let group = regex
            .capture_names()
            .position(|n| n == Some("secret"))
            .unwrap_or(if regex.captures_len() > 1 { 1 } else { 0 });
        self.extra.push(Rule {
            name: name.to_string(),
            pattern: pattern.to_string(),
            regex,
            groups: vec![group],
            check: Check::Custom,
        });
        Ok(self)
    }

    /// The id stored in `redaction_policy`: [`POLICY_VERSION`], followed by
    /// `+N custom rules (<8 hex of sha256 over names and patterns>)` when
    /// custom rules exist.
    pub fn id(&self) -> String {
        if self.extra.is_empty() {
            return POLICY_VERSION.to_string();
        }
        let mut hasher = Sha256::new();
        for rule in &self.extra {
            hasher.update(rule.name.as_bytes());
            hasher.update([0u8]);
            hasher.update(rule.pattern.as_bytes());
            hasher.update([0u8]);
        }
        let digest = hex::encode(hasher.finalize());
        format!(
            "{POLICY_VERSION}+{} custom rules ({})",
            self.extra.len(),
            &digest[..8]
        )
    }

    /// Names of every rule, built-in first, in the order they are applied.
    pub fn rule_names(&self) -> impl Iterator<Item = &str> {
        builtin()
            .rules
            .iter()
            .chain(self.extra.iter())
            .map(|r| r.name.as_str())
    }
}

/// Applies a [`RedactionPolicy`] with a per-store key. Cheap to share across
/// threads (`Sync`); build it once per ingest run.
#[derive(Clone)]
pub struct Redactor {
    policy: RedactionPolicy,
    policy_id: String,
    key: [u8; 32],
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the key.
        f.debug_struct("Redactor")
            .field("policy", &self.policy_id)
            .finish_non_exhaustive()
    }
}

/// Per-rule mask counts of one text, in rule order.
pub type RuleCounts = Vec<(String, usize)>;

impl Redactor {
    /// A redactor for `policy` whose mask hashes are keyed with `key` (the
    /// store's 32-byte redaction key: keep it secret, keep it stable, or equal
    /// secrets stop giving equal masks).
    pub fn new(policy: RedactionPolicy, key: [u8; 32]) -> Redactor {
        let policy_id = policy.id();
        Redactor {
            policy,
            policy_id,
            key,
        }
    }

    /// The id written to `redaction_policy`.
    pub fn policy_id(&self) -> &str {
        &self.policy_id
    }

    /// Masks every secret in `text`. Returns the text (borrowed when nothing
    /// was masked) and how many masks each rule placed (rules that placed none
    /// are left out). Redacting the result again changes nothing.
    pub fn redact_text<'t>(&self, text: &'t str) -> (Cow<'t, str>, RuleCounts) {
        let mut counts = Vec::new();
        if text.is_empty() {
            return (Cow::Borrowed(text), counts);
        }
        let builtin = builtin();
        // `is_match` runs the literal prefilter and stops at the first
        // trigger; `matches` walks the whole text in overlapping mode. Most
        // fields hold no trigger, so ask the cheap question first.
        if self.policy.extra.is_empty()
            && !with_ascii_lowercase(text, |lower| builtin.trigger_screen.is_match(lower))
        {
            return (Cow::Borrowed(text), counts);
        }
        let triggered = builtin.triggers.matches(text);
        let mut current: Cow<'t, str> = Cow::Borrowed(text);
        let rules = triggered
            .iter()
            .filter_map(|i| builtin.rules.get(i))
            .chain(self.policy.extra.iter());
        for rule in rules {
            if let Some((masked, n)) = self.apply_rule(rule, &current) {
                current = Cow::Owned(masked);
                counts.push((rule.name.clone(), n));
            }
        }
        // A mask can uncover a match that overlapped it (overlapping custom
        // rules: `pin=ABCDEFGHIJ` under an upper-case rule and a pin rule).
        // Passes until nothing changes keep redaction idempotent; each pass
        // only shortens unmasked text, and the bound is a guard.
        if matches!(current, Cow::Owned(_)) {
            for _ in 0..4 {
                let (again, more) = self.redact_pass(&current);
                if more.is_empty() {
                    break;
                }
                let again = again.into_owned();
                for (rule, n) in more {
                    match counts.iter_mut().find(|(name, _)| *name == rule) {
                        Some((_, total)) => *total += n,
                        None => counts.push((rule, n)),
                    }
                }
                current = Cow::Owned(again);
            }
        }
        (current, counts)
    }

    /// One pass of every triggered rule over `text`.
    fn redact_pass<'t>(&self, text: &'t str) -> (Cow<'t, str>, RuleCounts) {
        let builtin = builtin();
        let triggered = builtin.triggers.matches(text);
        let mut counts = Vec::new();
        let mut current: Cow<'t, str> = Cow::Borrowed(text);
        let rules = triggered
            .iter()
            .filter_map(|i| builtin.rules.get(i))
            .chain(self.policy.extra.iter());
        for rule in rules {
            if let Some((masked, n)) = self.apply_rule(rule, &current) {
                current = Cow::Owned(masked);
                counts.push((rule.name.clone(), n));
            }
        }
        (current, counts)
    }

    /// Redacts `text`, `content`, `tool_args`, `raw`, `error` and `attributes`
    /// of `event` in place. Sets `redaction_policy` to the policy id always,
    /// and `redactions` to a JSON array of `{"rule","field","count"}` when
    /// something was masked (otherwise `redactions` is left as it was: `None`
    /// for a fresh event).
    pub fn redact_event(&self, event: &mut Event) {
        let mut records = Vec::new();
        let fields: [(&str, &mut Option<String>); 6] = [
            ("text", &mut event.text),
            ("content", &mut event.content),
            ("tool_args", &mut event.tool_args),
            ("raw", &mut event.raw),
            ("error", &mut event.error),
            ("attributes", &mut event.attributes),
        ];
        for (field, slot) in fields {
            let Some(value) = slot.as_deref() else {
                continue;
            };
            let (redacted, counts) = self.redact_text(value);
            if let Cow::Owned(redacted) = redacted {
                for (rule, count) in counts {
                    records.push(serde_json::json!({
                        "rule": rule,
                        "field": field,
                        "count": count,
                    }));
                }
                *slot = Some(redacted);
            }
        }
        if !records.is_empty() {
            event.redactions = Some(Value::Array(records).to_string());
        }
        event.redaction_policy = Some(self.policy_id.clone());
    }

    /// Whether no rule can mask anything in the JSON line `line` nor in any
    /// text decoded from it once (its strings, joined or re-serialised as
    /// compact JSON): there are no custom rules, the line holds no `\u` or
    /// `\/` escape, which could spell a trigger only once decoded, and no
    /// built-in trigger occurs in the line except key words inside object
    /// keys that name no secret (`"totalTokens":`).
    ///
    /// The test runs on the line ASCII-lower-cased, once: a rule's
    /// [`Spec::anchors`] occur there wherever its trigger occurs in the line,
    /// so a line without anchors holds no trigger. An anchor of another rule
    /// than the key-word ones (`asia` in `Asia`) makes the line not clean
    /// though its trigger may not match: the event then goes through
    /// [`Redactor::redact_event`], which finds nothing to mask, so only time
    /// is lost. Key words are found exactly (see [`KEY_WORD_ANCHORS`]).
    ///
    /// Why that suffices: every built-in rule matches only where its trigger
    /// occurs, and every trigger is made of letters, digits, space and
    /// `-_.:/`; serde_json escapes only `"`, `\` and control characters, and
    /// a decoded `\"`, `\\`, `\n`, `\t`, `\r`, `\b` or `\f` is none of
    /// those. So a trigger in such a text is a run of characters the line
    /// holds verbatim. Text decoded twice (JSON inside a JSON string) is not
    /// covered: callers use this only for formats whose fields are decoded
    /// once. Pass the line as read: not one that [`strip_inline_images`]
    /// changed, whose references replace base64 the decoded fields may
    /// still hold.
    ///
    /// Why key words in such keys do not count: only `sensitive_assignment`
    /// and `sensitive_flag` trigger on key words. An assignment's key is a
    /// run of `[A-Za-z0-9_.-]` holding the key word; inside a key `"K":` the
    /// run is all of `K` (bounded by quotes on both sides), and compact JSON
    /// spells that key the same way, so the rule sees `K` and refuses it
    /// as not naming a secret, as it does in the line. A flag needs
    /// a `-` after a space, quote, `=` or `(`, and a space or `=` after its
    /// name: a key's quotes give neither. Strings decoded from the line hold
    /// no key word at all, since every occurrence is inside a key.
    pub fn line_is_clean(&self, line: &str) -> bool {
        if !self.policy.extra.is_empty() {
            return false;
        }
        let builtin = builtin();
        with_ascii_lowercase(line, |lower| {
            for m in builtin.trigger_screen.find_iter(lower) {
                if !builtin.key_word_pattern[m.pattern().as_usize()] {
                    return false;
                }
                // The search does not overlap matches: an anchor of another
                // rule that starts inside this key word (`eyJ` in
                // `passphraseyJ`) is looked for here.
                let window_end = (m.end() + builtin.longest_other_anchor).min(lower.len());
                if builtin
                    .other_anchors
                    .is_match(&lower[m.start()..window_end])
                    || !benign_key_word(line, m.start(), m.end())
                {
                    return false;
                }
            }
            !has_hiding_escape(line)
        })
    }

    /// Records that `event` went through this policy without a mask: what
    /// [`Redactor::redact_event`] does to an event whose fields all come
    /// from a line for which [`Redactor::line_is_clean`] holds.
    pub fn mark_clean(&self, event: &mut Event) {
        event.redaction_policy = Some(self.policy_id.clone());
    }

    /// `[REDACTED:<rule>:<8 hex of keyed blake3>]`.
    fn mask(&self, rule: &str, secret: &str) -> String {
        let hash = blake3::keyed_hash(&self.key, secret.as_bytes());
        let hex = hash.to_hex();
        format!("{MASK_OPEN}{rule}:{}]", &hex.as_str()[..8])
    }

    /// Applies one rule; `None` when it masked nothing.
    fn apply_rule(&self, rule: &Rule, text: &str) -> Option<(String, usize)> {
        let masks: Vec<(usize, usize)> = if text.contains(MASK_OPEN) {
            mask_regex()
                .find_iter(text)
                .map(|m| (m.start(), m.end()))
                .collect()
        } else {
            Vec::new()
        };
        let mut out: Option<String> = None;
        let mut last = 0;
        let mut count = 0;
        for caps in rule.regex.captures_iter(text) {
            let Some(whole) = caps.get(0) else {
                continue;
            };
            if overlaps_mask(&masks, whole.start(), whole.end()) {
                continue;
            }
            let Some((mut start, end)) = secret_span(rule, &caps) else {
                continue;
            };
            // Never split an escape sequence: if the secret starts on the
            // escaped character of `\n`, keep that character.
            if odd_backslashes_before(text, start) {
                start += text[start..].chars().next().map_or(0, char::len_utf8);
            }
            if start >= end || start < last {
                continue;
            }
            let secret = &text[start..end];
            if !accepts(rule, text, &caps, start, end, secret) {
                continue;
            }
            let hashed: Cow<'_, str> = if rule.check == Check::Pem {
                Cow::Owned(pem_canonical(secret))
            } else {
                Cow::Borrowed(secret)
            };
            let buffer = out.get_or_insert_with(|| String::with_capacity(text.len()));
            buffer.push_str(&text[last..start]);
            buffer.push_str(&self.mask(&rule.name, &hashed));
            last = end;
            count += 1;
        }
        out.map(|mut buffer| {
            buffer.push_str(&text[last..]);
            (buffer, count)
        })
    }
}

/// Whether the key word at `line[start..end]` lies inside a JSON object key
/// `"K":` that names no secret: `K` is all `[A-Za-z0-9_.-]`, its opening
/// quote is not escaped (an odd run of backslashes before it), a colon
/// follows its closing quote right away, and [`key_is_sensitive`] refuses
/// `K` as the assignment rule would see it.
///
/// In a line that parses as JSON, an unescaped quote followed by such a run,
/// a quote and a colon opens an object key: a closing quote there would
/// leave a bare word between two strings. Anything else (a key word in a
/// string value, in an escaped key `\"K\":`, in a key with other
/// characters) is not benign.
fn benign_key_word(line: &str, start: usize, end: usize) -> bool {
    fn in_key(b: u8) -> bool {
        b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
    }
    let bytes = line.as_bytes();
    let key_start = bytes[..start]
        .iter()
        .rposition(|&b| !in_key(b))
        .map_or(0, |i| i + 1);
    let key_end = bytes[end..]
        .iter()
        .position(|&b| !in_key(b))
        .map_or(bytes.len(), |i| end + i);
    let opened = key_start
        .checked_sub(1)
        .is_some_and(|quote| bytes[quote] == b'"' && !odd_backslashes_before(line, quote));
    let closed = bytes.get(key_end..key_end + 2) == Some(b"\":".as_slice());
    opened
        && closed
        && line
            .get(key_start..key_end)
            .is_some_and(|key| !key_is_sensitive(key.trim_start_matches('-')))
}

/// Whether `text` holds a `\u` or `\/` JSON escape (conservatively: also
/// when the backslash is itself escaped).
fn has_hiding_escape(text: &str) -> bool {
    text.contains("\\u") || text.contains("\\/")
}

/// Whether `[start, end)` overlaps one of the (sorted) mask spans.
fn overlaps_mask(masks: &[(usize, usize)], start: usize, end: usize) -> bool {
    let i = masks.partition_point(|&(_, mask_end)| mask_end <= start);
    masks
        .get(i)
        .is_some_and(|&(mask_start, _)| mask_start < end)
}

/// The span of the first participating secret group.
fn secret_span(rule: &Rule, caps: &Captures<'_>) -> Option<(usize, usize)> {
    rule.groups
        .iter()
        .find_map(|&g| caps.get(g))
        .map(|m| (m.start(), m.end()))
}

fn odd_backslashes_before(text: &str, pos: usize) -> bool {
    let run = text.as_bytes()[..pos]
        .iter()
        .rev()
        .take_while(|&&b| b == b'\\')
        .count();
    run % 2 == 1
}

/// No letter, digit or `_` right before `start`, except the escaped letter of
/// a `\n`, `\r`, `\t` escape.
fn left_boundary(text: &str, start: usize) -> bool {
    let bytes = text.as_bytes();
    let Some(&prev) = start.checked_sub(1).and_then(|i| bytes.get(i)) else {
        return true;
    };
    if !(prev.is_ascii_alphanumeric() || prev == b'_') {
        return true;
    }
    matches!(prev, b'n' | b'r' | b't') && odd_backslashes_before(text, start - 1)
}

fn accepts(
    rule: &Rule,
    text: &str,
    caps: &Captures<'_>,
    start: usize,
    end: usize,
    secret: &str,
) -> bool {
    let next = text.as_bytes().get(end).copied();
    match rule.check {
        Check::Token => left_boundary(text, start),
        Check::TokenExact => {
            left_boundary(text, start) && !next.is_some_and(|b| b.is_ascii_alphanumeric())
        }
        Check::Pem => true,
        Check::Url => url_password_plausible(secret),
        Check::Bearer => {
            caps.get(0).is_some_and(|m| left_boundary(text, m.start())) && bearer_plausible(secret)
        }
        Check::AwsSecret => {
            !next.is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'+' | b'='))
        }
        Check::Assignment | Check::Flag => {
            let Some(key) = caps.get(1) else {
                return false;
            };
            let mut key_text = key.as_str();
            // `\nTOKEN=…` inside a JSON string: the `n` belongs to the escape.
            if odd_backslashes_before(text, key.start()) {
                key_text = key_text.get(1..).unwrap_or("");
            }
            let unquoted = caps.get(4).is_some_and(|m| m.end() == end);
            key_is_sensitive(key_text.trim_start_matches('-'))
                && value_plausible(secret)
                && !(unquoted && looks_like_code(secret, next))
                && !(rule.check == Check::Flag && secret.starts_with('-'))
        }
        Check::Custom => {
            !secret
                .chars()
                .any(|c| c == '"' || c == '\\' || c.is_control())
                && !inside_unicode_escape(text, start)
        }
    }
}

/// Whether `start` falls inside a JSON `\uXXXX` escape (a match there would
/// cut the escape and break the JSON; found by fuzzing a custom rule).
fn inside_unicode_escape(text: &str, start: usize) -> bool {
    let bytes = text.as_bytes();
    (2..=5).any(|back| {
        let Some(u) = start.checked_sub(back - 1) else {
            return false;
        };
        let Some(slash) = u.checked_sub(1) else {
            return false;
        };
        bytes.get(u) == Some(&b'u')
            && bytes.get(slash) == Some(&b'\\')
            && odd_backslashes_before(text, u)
            && bytes[u + 1..start].iter().all(u8::is_ascii_hexdigit)
    })
}

/// Last words of a key name that describe a secret rather than hold it.
const DESCRIPTIVE_LAST_WORDS: &[&str] = &[
    "type",
    "types",
    "mode",
    "method",
    "methods",
    "kind",
    "url",
    "uri",
    "endpoint",
    "provider",
    "providers",
    "name",
    "names",
    "count",
    "counts",
    "limit",
    "limits",
    "max",
    "min",
    "len",
    "length",
    "size",
    "bytes",
    "usage",
    "header",
    "headers",
    "scheme",
    "ttl",
    "expiry",
    "expires",
    "expiration",
    "at",
    "in",
    "file",
    "files",
    "path",
    "paths",
    "dir",
    "env",
    "id",
    "ids",
    "field",
    "fields",
    "policy",
    "required",
    "enabled",
    "disabled",
    "status",
    "present",
    "configured",
    "ref",
    "refs",
    "source",
    "hint",
    "label",
    "format",
    "version",
    "location",
    "store",
    "profile",
    "profiles",
    "order",
    "error",
    "errors",
    "state",
    "strategy",
    "set",
    "exists",
    "valid",
    "missing",
    "reason",
    "prefix",
    "suffix",
    "mask",
    "masked",
    "redacted",
    "rotation",
    "override",
    "overrides",
];

/// Splits a key name into lower-case words at `_`, `-`, `.`, other
/// punctuation and camelCase boundaries (`APIKey` → `api`, `key`).
fn key_words(key: &str) -> Vec<String> {
    let chars: Vec<char> = key.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            continue;
        }
        if c.is_ascii_uppercase() && !word.is_empty() {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_lower)
            {
                words.push(std::mem::take(&mut word));
            }
        }
        word.push(c.to_ascii_lowercase());
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// Whether a key name names a secret (see the module docs).
fn key_is_sensitive(key: &str) -> bool {
    let words = key_words(key);
    let Some(last) = words.last() else {
        return false;
    };
    if words.len() > 1 && DESCRIPTIVE_LAST_WORDS.contains(&last.as_str()) {
        return false;
    }
    if words.first().is_some_and(|w| w == "no") {
        return false;
    }
    let joined: String = words.concat();
    if [
        "password",
        "passwd",
        "passphrase",
        "secret",
        "credential",
        "apikey",
        "privatekey",
        "accesskey",
    ]
    .iter()
    .any(|k| joined.contains(k))
    {
        return true;
    }
    words
        .iter()
        .any(|w| w.ends_with("token") || matches!(w.as_str(), "auth" | "authorization" | "authkey"))
}

/// Values that are never secrets.
const NOT_SECRETS: &[&str] = &[
    "true",
    "false",
    "null",
    "nil",
    "none",
    "undefined",
    "yes",
    "no",
    "on",
    "off",
    "bearer",
    "basic",
    "token",
    "digest",
    "bot",
    "required",
    "optional",
    "missing",
    "invalid",
    "expired",
    "empty",
    "redacted",
    "hidden",
    "masked",
    "secret",
    "password",
    "string",
    "boolean",
    "number",
    "object",
    "array",
    "the",
    "your",
    "you",
    "my",
    "our",
    "a",
    "an",
    "is",
    "are",
    "was",
    "not",
    "set",
    "unset",
    "here",
    "this",
    "that",
    "from",
    "with",
    "for",
    "to",
    "of",
    "and",
    "or",
    "in",
    "it",
    "its",
    "be",
    "if",
    "as",
    "see",
    "use",
    "env",
    "default",
];

/// Whether an assignment's value can be a secret.
fn value_plausible(value: &str) -> bool {
    let value = value.trim();
    if value.chars().count() < 3 || value.starts_with(MASK_OPEN) {
        return false;
    }
    if value
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | ',' | '-' | '+' | '_' | ':'))
    {
        return false;
    }
    let lower = value.to_ascii_lowercase();
    let word = lower.trim_end_matches(['.', ',', ':', ';', '!', '?']);
    if NOT_SECRETS.contains(&word) {
        return false;
    }
    if value.starts_with('$')
        || value.starts_with("{{")
        || (value.starts_with('%') && value.ends_with('%'))
        || (value.starts_with('<') && value.ends_with('>'))
        || lower.starts_with("process.env")
        || lower.starts_with("os.environ")
        || lower.starts_with("env.")
        || lower.starts_with("...")
        || lower.starts_with('…')
    {
        return false;
    }
    let mut chars = value.chars();
    let first = chars.next();
    !chars.all(|c| Some(c) == first)
}

/// An unquoted value that is an expression in source code rather than a
/// literal secret: `const apiKey = await getKey()`, `result.apiKey = args[i]`,
/// `token: options.token`. Such values are identifiers (letters and `_`, no
/// digits) shorter than 16 characters, property paths (`options.token`), or
/// are followed by `(`, `[` or `.`.
/// Literal secrets in code are quoted and still masked.
fn looks_like_code(value: &str, next: Option<u8>) -> bool {
    if matches!(next, Some(b'(' | b'[' | b'.')) {
        return true;
    }
    let identifier = |part: &str| {
        !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
    };
    // `options.token`, `this.config.apiKey`: a property path.
    let path = value.contains('.') && value.split('.').all(identifier);
    path || (identifier(value) && value.chars().count() < 16)
}

fn url_password_plausible(password: &str) -> bool {
    !(password.starts_with('$')
        || password.starts_with("{{")
        || password.starts_with('<')
        || password.starts_with(MASK_OPEN)
        || password.chars().all(|c| c == '*' || c == 'x' || c == 'X'))
}

fn bearer_plausible(token: &str) -> bool {
    let len = token.len();
    len >= 8 && (token.bytes().any(|b| b.is_ascii_digit()) || len >= 20)
}

/// The characters of a PEM block that carry the key: escapes (`\n`, `\\n`)
/// and whitespace dropped, so the same key hashes the same however escaped.
fn pem_canonical(block: &str) -> String {
    let mut out = String::with_capacity(block.len());
    let mut chars = block.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            // Skip the rest of the backslash run and the escaped letter.
            for next in chars.by_ref() {
                if next != '\\' {
                    break;
                }
            }
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Inline images
// ---------------------------------------------------------------------------

fn data_url_regex() -> &'static Regex {
    static DATA_URL: OnceLock<Regex> = OnceLock::new();
    DATA_URL.get_or_init(|| {
        Regex::new(r"data:image/[A-Za-z0-9.+-]{1,64};base64,[A-Za-z0-9+/=]+")
            .expect("data URL regex compiles")
    })
}

/// `sha256:<hex>:<len>` of base64 text: sha256 of the base64 text itself and
/// its length in bytes, as the transcript reader's `content` column does.
fn image_reference(base64: &str) -> String {
    let digest = Sha256::digest(base64.as_bytes());
    format!("sha256:{}:{}", hex::encode(digest), base64.len())
}

fn is_reference(s: &str) -> bool {
    s.starts_with("sha256:")
}

/// Replaces in `value` every image's base64 and every `data:image/…;base64,…`
/// URL; records (old string, new string) pairs and counts images.
fn strip_value(value: &mut Value, replaced: &mut Vec<(String, String)>, count: &mut usize) {
    match value {
        Value::Object(map) => {
            let is_image = map
                .get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t == "image");
            if is_image {
                if let Some(Value::String(data)) = map.get_mut("data") {
                    replace_base64(data, replaced, count);
                }
                if let Some(Value::Object(source)) = map.get_mut("source") {
                    if let Some(Value::String(data)) = source.get_mut("data") {
                        replace_base64(data, replaced, count);
                    }
                }
            }
            for (_, item) in map.iter_mut() {
                strip_value(item, replaced, count);
            }
        }
        Value::Array(items) => {
            for item in items {
                strip_value(item, replaced, count);
            }
        }
        Value::String(s) if s.contains("data:image/") => {
            let mut n = 0;
            let new = data_url_regex().replace_all(s, |caps: &Captures<'_>| {
                n += 1;
                let url = caps.get(0).map_or("", |m| m.as_str());
                let base64 = url.split_once(',').map_or("", |(_, b)| b);
                image_reference(base64)
            });
            if let Cow::Owned(new) = new {
                *count += n;
                replaced.push((std::mem::replace(s, new.clone()), new));
            }
        }
        _ => {}
    }
}

fn replace_base64(data: &mut String, replaced: &mut Vec<(String, String)>, count: &mut usize) {
    if data.is_empty() || is_reference(data) {
        return;
    }
    let reference = image_reference(data);
    replaced.push((std::mem::replace(data, reference.clone()), reference));
    *count += 1;
}

/// Replaces the base64 of inline images in a JSON text (a raw transcript
/// line) by `sha256:<hex>:<len>` (sha256 and length of the base64 text, as in
/// the `content` column), and returns the new text and the number of images
/// replaced.
///
/// Replaced: the `data` string of every `{"type":"image",…}` object (pi's
/// `{"type":"image","data":…,"mimeType":…}` and Anthropic's
/// `{"type":"image","source":{"data":…}}`), and every
/// `data:image/<type>;base64,<…>` URL inside any string (the whole URL becomes
/// the reference). The rest of the text is kept byte for byte where possible
/// (the JSON is re-serialised, keys in order, only when a replaced string was
/// written with escapes). Text that is not JSON, or holds no image, is
/// returned borrowed, unchanged, with a count of 0. Stripping twice equals stripping
/// once. Used unless the user passes `--keep-images`; run it before
/// [`Redactor::redact_text`].
pub fn strip_inline_images(json_text: &str) -> (Cow<'_, str>, usize) {
    // Both shapes need the word `image` (the `"type":"image"` value or the
    // `data:image/` scheme) and the word `data` (the key or the scheme):
    // text without either is returned borrowed, unparsed.
    static IMAGE: LazyLock<memmem::Finder<'static>> =
        LazyLock::new(|| memmem::Finder::new("image"));
    static DATA: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new("data"));
    // memchr's searchers: `str::contains` was 1 % of an ingest's samples here.
    let bytes = json_text.as_bytes();
    if IMAGE.find(bytes).is_none() || DATA.find(bytes).is_none() {
        return (Cow::Borrowed(json_text), 0);
    }
    let Ok(mut value) = serde_json::from_str::<Value>(json_text) else {
        return (Cow::Borrowed(json_text), 0);
    };
    let mut replaced = Vec::new();
    let mut count = 0;
    strip_value(&mut value, &mut replaced, &mut count);
    if count == 0 || replaced.is_empty() {
        return (Cow::Borrowed(json_text), 0);
    }
    // Re-serialise the walked value: replacing the image text in the line
    // would also hit equal strings elsewhere (keys, other values; found by
    // fuzzing). Key order is kept (`preserve_order`), floats round-trip
    // (`float_roundtrip`); only insignificant whitespace and escapes change.
    (Cow::Owned(value.to_string()), count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use proptest::prelude::*;
    use trajectory_schema::EventKind;

    const KEY: [u8; 32] = [7u8; 32];
    const OTHER_KEY: [u8; 32] = [9u8; 32];

    fn redactor() -> Redactor {
        Redactor::new(RedactionPolicy::default(), KEY)
    }

    fn redact(text: &str) -> (String, RuleCounts) {
        let (out, counts) = redactor().redact_text(text);
        (out.into_owned(), counts)
    }

    fn rules_of(counts: &RuleCounts) -> Vec<&str> {
        counts.iter().map(|(r, _)| r.as_str()).collect()
    }

    // Obviously fake, format-valid secrets.
    const OPENAI: &str = "sk-proj-FAKEfake0123456789abcdefghijABCDEFGHIJ";
    const OPENAI_LEGACY: &str = "sk-FAKE0123456789abcdefghijKLMNOPQRSTUVWXYZabcd";
    const ANTHROPIC: &str = "sk-ant-api03-FAKEfake0123456789abcdefghij_ABCDEFGHIJ-xyz";
    const OPENROUTER: &str = "sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef";
    const GOOGLE: &str = "AIzaSyFAKE0123456789abcdefghijklmnopqrs";
    const GOOGLE_OAUTH: &str = "ya29.a0FAKEfake0123456789abcdefghij-ABCDEFG";
    const AWS_ID: &str = "AKIAFAKE0123456789AB";
    const AWS_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYFAKEKEY012";
    const GITHUB: &str = "ghp_FAKEfake0123456789abcdefghijABCDEFGH";
    const GITHUB_PAT: &str = "github_pat_11FAKEFAKE0123456789_abcdefghijABCDEFGHIJ0123456789";
    const SLACK: &str = "xoxb-123456789012-1234567890123-FAKEfakeFAKEfake1234";
    const SLACK_HOOK_PATH: &str = "services/T00000000/B00000000/FAKEfakeFAKEfake12345678";
    const STRIPE: &str = "sk_live_FAKEfake0123456789abcdef";
    const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJmYWtlIiwibmFtZSI6IkZha2UifQ.ZmFrZS1zaWduYXR1cmUtMDEyMzQ1Njc4OQ";
    const PEM_BODY: &str = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCFAKEFAKEFAKE";

    fn pem(newline: &str) -> String {
        format!(
            "-----BEGIN RSA PRIVATE KEY-----{newline}{PEM_BODY}{newline}{PEM_BODY}{newline}-----END RSA PRIVATE KEY-----"
        )
    }

    fn assert_gone(out: &str, secret: &str) {
        assert!(
            !out.contains(secret),
            "secret {secret:?} survived in {out:?}"
        );
    }

    /// Every string inside a JSON value, recursively.
    fn strings(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::String(s) => out.push(s.clone()),
            Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
            Value::Object(map) => map.iter().for_each(|(k, v)| {
                out.push(k.clone());
                strings(v, out)
            }),
            _ => {}
        }
    }

    #[test]
    fn builtin_rules_compile() {
        let b = builtin();
        assert_eq!(b.rules.len(), BUILTIN.len());
        assert_eq!(b.triggers.len(), BUILTIN.len());
        assert!(mask_regex().is_match("[REDACTED:jwt:0123abcd]"));
        let _ = data_url_regex();
    }

    /// Every literal a trigger matches (all of them: the extraction must be
    /// exact), ASCII-lower-cased, holds one of its rule's anchors; so do the
    /// key words. Anchors are lower case, or lower-cased text never holds them.
    #[test]
    fn anchors_cover_every_trigger() {
        use regex_syntax::hir::literal::Extractor;
        let literals = |pattern: &str| {
            let hir = regex_syntax::parse(pattern).expect("trigger parses");
            let seq = Extractor::new()
                .limit_class(4)
                .limit_literal_len(64)
                .limit_total(100_000)
                .extract(&hir);
            assert!(seq.is_exact(), "{pattern}: literal set not exact");
            let literals: Vec<Vec<u8>> = seq
                .literals()
                .expect("finite")
                .iter()
                .map(|l| l.as_bytes().to_ascii_lowercase())
                .collect();
            assert!(!literals.is_empty(), "{pattern}");
            literals
        };
        let covered = |literal: &[u8], anchors: &[&str]| {
            anchors
                .iter()
                .any(|a| literal.windows(a.len()).any(|w| w == a.as_bytes()))
        };
        for spec in BUILTIN {
            for anchor in spec.anchors {
                assert_eq!(*anchor, anchor.to_ascii_lowercase(), "{}", spec.name);
            }
            for literal in literals(spec.trigger) {
                assert!(
                    covered(&literal, spec.anchors),
                    "{}: {:?} holds no anchor",
                    spec.name,
                    String::from_utf8_lossy(&literal)
                );
            }
        }
        let mut key_words = literals(key_words!());
        key_words.sort();
        key_words.dedup();
        let mut anchors: Vec<Vec<u8>> = KEY_WORD_ANCHORS
            .iter()
            .map(|a| a.as_bytes().to_vec())
            .collect();
        anchors.sort();
        assert_eq!(
            key_words, anchors,
            "KEY_WORD_ANCHORS is what key_words! matches"
        );
        for a in KEY_WORD_ANCHORS {
            for b in KEY_WORD_ANCHORS {
                assert!(a == b || !b.starts_with(a), "{a} is a prefix of {b}");
            }
        }
    }

    #[test]
    fn every_kind_is_masked_in_plain_text() {
        let cases: Vec<(&str, String, String)> = vec![
            ("openai_key", OPENAI.into(), format!("key is {OPENAI} ok")),
            (
                "openai_key",
                OPENAI_LEGACY.into(),
                format!("use {OPENAI_LEGACY}"),
            ),
            ("anthropic_key", ANTHROPIC.into(), format!("({ANTHROPIC})")),
            (
                "openrouter_key",
                OPENROUTER.into(),
                format!("key:{OPENROUTER}"),
            ),
            (
                "google_api_key",
                GOOGLE.into(),
                format!("status: key {GOOGLE} active"),
            ),
            (
                "google_oauth_token",
                GOOGLE_OAUTH.into(),
                format!("tok={GOOGLE_OAUTH}"),
            ),
            ("aws_access_key_id", AWS_ID.into(), format!("id {AWS_ID}.")),
            (
                "aws_secret_key",
                AWS_SECRET.into(),
                format!("aws_secret_access_key = {AWS_SECRET}\n"),
            ),
            ("github_token", GITHUB.into(), format!("git push {GITHUB}")),
            (
                "github_token",
                GITHUB_PAT.into(),
                format!("pat {GITHUB_PAT}"),
            ),
            ("slack_token", SLACK.into(), format!("slack {SLACK}")),
            (
                "slack_webhook",
                SLACK_HOOK_PATH.into(),
                format!("post to https://hooks.slack.com/{SLACK_HOOK_PATH} now"),
            ),
            ("stripe_key", STRIPE.into(), format!("stripe {STRIPE}")),
            ("jwt", JWT.into(), format!("id_token {JWT}")),
            (
                "private_key",
                PEM_BODY.into(),
                format!("key:\n{}\nend", pem("\n")),
            ),
            (
                "bearer_token",
                "FAKEopaque0123456789token".into(),
                "curl -H 'Authorization: Bearer FAKEopaque0123456789token' x".into(),
            ),
            (
                "url_password",
                "hunter2FAKE".into(),
                "postgres://app:hunter2FAKE@db.example:5432/x".into(),
            ),
            (
                "sensitive_assignment",
                "s3cr3tFAKEvalue".into(),
                "DB_PASSWORD=s3cr3tFAKEvalue".into(),
            ),
            (
                "sensitive_flag",
                "hunter2FAKE".into(),
                "mysql --password hunter2FAKE -h db".into(),
            ),
        ];
        for (rule, secret, text) in cases {
            let (out, counts) = redact(&text);
            assert_gone(&out, &secret);
            assert!(
                out.contains(&format!("[REDACTED:{rule}:")),
                "{rule}: {out:?} ({counts:?})"
            );
            assert!(rules_of(&counts).contains(&rule), "{rule}: {counts:?}");
            assert_eq!(redact(&out).0, out, "not idempotent for {rule}");
        }
    }

    #[test]
    fn mask_has_rule_and_eight_hex_hash() {
        let (out, counts) = redact(&format!("a {OPENAI} b"));
        let mask = mask_regex().find(&out).map(|m| m.as_str().to_string());
        let mask = mask.unwrap_or_default();
        assert!(mask.starts_with("[REDACTED:openai_key:"), "{out}");
        assert_eq!(mask.len(), "[REDACTED:openai_key:".len() + 8 + 1);
        assert_eq!(counts, vec![("openai_key".to_string(), 1)]);
        assert!(!mask.contains('"') && !mask.contains('\\'));
    }

    #[test]
    fn json_tool_arguments_stay_valid_and_lose_the_secret() {
        let args = serde_json::json!({
            "command": format!("export OPENAI_API_KEY={OPENAI}\ncurl -H \"Authorization: Bearer {GITHUB}\" https://api.github.com"),
            "env": {"AWS_ACCESS_KEY_ID": AWS_ID, "AWS_SECRET_ACCESS_KEY": AWS_SECRET, "apiKey": "FAKEplainApiKeyValue99"},
            "url": "https://bob:FAKEpassw0rd@example.com/x",
            "jwt": JWT,
            "hook": format!("https://hooks.slack.com/{SLACK_HOOK_PATH}"),
        })
        .to_string();
        let (out, counts) = redact(&args);
        let parsed: Value = serde_json::from_str(&out).expect("redacted JSON parses");
        let mut all = Vec::new();
        strings(&parsed, &mut all);
        for secret in [
            OPENAI,
            GITHUB,
            AWS_ID,
            AWS_SECRET,
            "FAKEplainApiKeyValue99",
            "FAKEpassw0rd",
            JWT,
            SLACK_HOOK_PATH,
        ] {
            assert_gone(&out, secret);
            assert!(
                all.iter().all(|s| !s.contains(secret)),
                "{secret} in parsed"
            );
        }
        // Keys and user names survive.
        assert_eq!(
            parsed["url"]
                .as_str()
                .map(|u| u.starts_with("https://bob:")),
            Some(true)
        );
        assert!(parsed["env"]["AWS_ACCESS_KEY_ID"].is_string());
        assert!(!counts.is_empty());
        assert_eq!(redact(&out).0, out);
    }

    #[test]
    fn pem_with_escaped_newlines_in_a_json_line() {
        let line = serde_json::json!({
            "type": "message",
            "message": {"role": "toolResult", "content": [{"type": "text", "text": format!("$ cat id_rsa\n{}\n$ ls", pem("\n"))}]}
        })
        .to_string();
        assert!(line.contains("-----\\n"), "escaped newlines in the line");
        let (out, counts) = redact(&line);
        assert_gone(&out, PEM_BODY);
        assert_eq!(rules_of(&counts), vec!["private_key"]);
        let parsed: Value = serde_json::from_str(&out).expect("parses");
        let text = parsed["message"]["content"][0]["text"]
            .as_str()
            .unwrap_or("");
        assert!(
            text.starts_with("$ cat id_rsa\n[REDACTED:private_key:"),
            "{text:?}"
        );
        assert!(text.ends_with("]\n$ ls"), "{text:?}");
        // The same key hashes the same with real and escaped newlines.
        let (plain, _) = redact(&pem("\n"));
        assert!(text.contains(plain.as_str()), "{plain} vs {text}");
    }

    #[test]
    fn pem_in_a_double_escaped_json_string_and_truncated_pem() {
        // Tool arguments as a JSON string inside the raw line.
        let inner = serde_json::json!({"content": pem("\n")}).to_string();
        let line = serde_json::json!({"arguments": inner}).to_string();
        let (out, _) = redact(&line);
        assert_gone(&out, PEM_BODY);
        let parsed: Value = serde_json::from_str(&out).expect("outer parses");
        let inner_out = parsed["arguments"].as_str().unwrap_or("");
        let inner_parsed: Value = serde_json::from_str(inner_out).expect("inner parses");
        assert!(inner_parsed["content"]
            .as_str()
            .is_some_and(|s| s.starts_with("[REDACTED:private_key:")));

        let truncated = serde_json::json!({"text": format!("-----BEGIN OPENSSH PRIVATE KEY-----\n{PEM_BODY}\n{PEM_BODY}")}).to_string();
        let (out, _) = redact(&truncated);
        assert_gone(&out, PEM_BODY);
        serde_json::from_str::<Value>(&out).expect("parses");
    }

    #[test]
    fn secrets_in_log_lines() {
        let line = format!(
            "2026-05-01T10:00:00.000Z WARN [agent/embedded] provider google key={GOOGLE} failed; retry with token: FAKEtok3nValue123 and Authorization: Basic dXNlcjpGQUtFcGFzcw=="
        );
        let (out, counts) = redact(&line);
        assert_gone(&out, GOOGLE);
        assert_gone(&out, "FAKEtok3nValue123");
        assert_gone(&out, "dXNlcjpGQUtFcGFzcw==");
        assert!(
            out.contains("Authorization: Basic [REDACTED:sensitive_assignment:"),
            "{out}"
        );
        assert!(out.contains("2026-05-01T10:00:00.000Z WARN [agent/embedded]"));
        assert!(rules_of(&counts).contains(&"google_api_key"));
        // A JSON log record.
        let record = serde_json::json!({"0": "{\"subsystem\":\"gateway\"}", "1": format!("auth failed for {ANTHROPIC}"), "logLevelName": "WARN"}).to_string();
        let (out, _) = redact(&record);
        assert_gone(&out, ANTHROPIC);
        serde_json::from_str::<Value>(&out).expect("parses");
    }

    #[test]
    fn url_password_keeps_user_and_host() {
        let (out, counts) = redact("connect redis://:FAKEredisPw@cache:6379 and https://alice:FAKEpw%40x@git.example.com/repo.git");
        assert_gone(&out, "FAKEredisPw");
        assert_gone(&out, "FAKEpw%40x");
        assert!(out.contains("redis://:[REDACTED:url_password:"), "{out}");
        assert!(out.contains("]@cache:6379"));
        assert!(out.contains("https://alice:[REDACTED:url_password:"));
        assert!(out.contains("]@git.example.com/repo.git"));
        assert_eq!(counts, vec![("url_password".to_string(), 2)]);
        // Not a password: a port, no user info.
        let clean = "see http://localhost:8080/a?x=b@c and ssh://git@github.com/x";
        assert!(matches!(redactor().redact_text(clean).0, Cow::Borrowed(_)));
        // A known token as password gets its own rule, once.
        let (out, counts) = redact(&format!("https://x-access-token:{GITHUB}@github.com/o/r"));
        assert_gone(&out, GITHUB);
        assert_eq!(rules_of(&counts), vec!["github_token"]);
    }

    #[test]
    fn custom_rules_never_cut_a_unicode_escape() {
        // Found by fuzzing: `\u000a` followed by `cme_…` matched `acme_…`.
        let policy = RedactionPolicy::new()
            .with_extra_rule("acme_key", r"acme_[A-Za-z0-9]{12,}")
            .unwrap();
        let redactor = Redactor::new(policy, [7u8; 32]);
        let text = r#"["\u000acme_ABCDEFGHIJKLMN"]"#;
        let (out, _) = redactor.redact_text(text);
        assert!(serde_json::from_str::<Value>(&out).is_ok(), "{out}");
        let (plain, counts) = redactor.redact_text(r#"["key acme_ABCDEFGHIJKLMN"]"#);
        assert_eq!(counts.len(), 1, "{plain}");
    }

    #[test]
    fn image_strings_elsewhere_in_the_line_are_left_alone() {
        // Found by fuzzing: the image text also appeared as another value.
        let line = r#"{"note":"aGVsbG8=","c":{"type":"image","data":"aGVsbG8="}}"#;
        let (out, count) = strip_inline_images(line);
        assert_eq!(count, 1);
        let value: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(value["note"], "aGVsbG8=");
        assert!(value["c"]["data"].as_str().unwrap().starts_with("sha256:"));
        let (odd, _) = strip_inline_images(r#"{"type":"image","data":"type"}"#);
        let odd: Value = serde_json::from_str(&odd).unwrap();
        assert_eq!(odd["type"], "image");
    }

    #[test]
    fn overlapping_custom_rules_stay_idempotent() {
        // Found by the redaction_text fuzz target.
        let policy = RedactionPolicy::new()
            .with_extra_rule(
                "pin_code",
                r"(?i)\bpin\s*[=:]\s*(?P<secret>[A-Za-z0-9]{4,})",
            )
            .and_then(|p| p.with_extra_rule("shouting", r"[A-Z]{8,}"))
            .unwrap();
        let redactor = Redactor::new(policy, [7u8; 32]);
        let found = String::from_utf8_lossy(include_bytes!(
            "../../tests/data/fuzz/redaction-overlapping-custom-rules.bin"
        ))
        .into_owned();
        for text in [
            found.as_str(),
            "#xpXYZABCDEFGHpin=IJort rest",
            "x ABCDEFGHpin=ABCDEFGHIJ y",
        ] {
            let (once, _) = redactor.redact_text(text);
            let (twice, more) = redactor.redact_text(&once);
            assert_eq!(twice, once, "{text}");
            assert!(more.is_empty(), "{text}: {more:?}");
        }
    }

    #[test]
    fn code_expressions_after_sensitive_names_are_not_masked() {
        let redactor = redactor();
        for code in [
            "const apiKey = await getApiKey(provider);",
            "result.apiKey = args[++i];",
            "getApiKey: async () => key,",
            "token: options.token,",
            "const hasApiKey = Boolean(x);",
        ] {
            let (out, counts) = redactor.redact_text(code);
            assert!(counts.is_empty(), "{code} -> {out}");
        }
        for secret in [
            "API_KEY=Zq3xT8vLm2Nc7Rk4",
            "const apiKey = \"Zq3xT8vLm2\";",
            "password: correcthorsebattery",
        ] {
            let (out, _) = redactor.redact_text(secret);
            assert!(
                out.contains("[REDACTED:sensitive_assignment:"),
                "{secret} -> {out}"
            );
        }
    }

    #[test]
    fn assignments_mask_the_value_only() {
        let cases = [
            (
                "GITHUB_TOKEN=FAKEvalue0001",
                "GITHUB_TOKEN=[REDACTED:sensitive_assignment:",
            ),
            (
                "export API_KEY=\"FAKE value 2\"",
                "export API_KEY=\"[REDACTED:sensitive_assignment:",
            ),
            (
                "client_secret: FAKEvalue0003",
                "client_secret: [REDACTED:sensitive_assignment:",
            ),
            (
                "{\"password\": \"FAKEvalue0004\"}",
                "{\"password\": \"[REDACTED:sensitive_assignment:",
            ),
            (
                "x-api-key: FAKEvalue0005",
                "x-api-key: [REDACTED:sensitive_assignment:",
            ),
            (
                "'passwd' => 'FAKEvalue0006'",
                "'passwd' => '[REDACTED:sensitive_assignment:",
            ),
            (
                "accessToken := FAKEvalue0007",
                "accessToken := [REDACTED:sensitive_assignment:",
            ),
            (
                "PRIVATE_KEY=FAKEvalue0008",
                "PRIVATE_KEY=[REDACTED:sensitive_assignment:",
            ),
            (
                "myCredentials=FAKEvalue0009",
                "myCredentials=[REDACTED:sensitive_assignment:",
            ),
            ("AUTH=FAKEvalue0010", "AUTH=[REDACTED:sensitive_assignment:"),
        ];
        for (text, prefix) in cases {
            let (out, _) = redact(text);
            assert!(out.starts_with(prefix), "{text:?} -> {out:?}");
            assert!(
                !out.contains("FAKEvalue") && !out.contains("FAKE value"),
                "{out}"
            );
        }
        // Inside a JSON string with escaped quotes and newlines.
        let json = serde_json::json!({"command": "echo hi\nexport SECRET_KEY=\"FAKEvalue0011\"\nAUTH_TOKEN=FAKEvalue0012 run"}).to_string();
        let (out, counts) = redact(&json);
        assert_gone(&out, "FAKEvalue0011");
        assert_gone(&out, "FAKEvalue0012");
        let parsed: Value = serde_json::from_str(&out).expect("parses");
        let command = parsed["command"].as_str().unwrap_or("");
        assert!(
            command.starts_with("echo hi\nexport SECRET_KEY=\"[REDACTED:"),
            "{command}"
        );
        assert!(
            command.contains("\nAUTH_TOKEN=[REDACTED:sensitive_assignment:"),
            "{command}"
        );
        assert_eq!(counts, vec![("sensitive_assignment".to_string(), 2)]);
    }

    #[test]
    fn specific_rule_wins_over_assignment() {
        let (out, counts) = redact(&format!("OPENAI_API_KEY={OPENAI}"));
        assert!(
            out.starts_with("OPENAI_API_KEY=[REDACTED:openai_key:"),
            "{out}"
        );
        assert_eq!(rules_of(&counts), vec!["openai_key"]);
        let (out, counts) = redact(&format!("Authorization: Bearer {JWT}"));
        assert!(
            out.starts_with("Authorization: Bearer [REDACTED:jwt:"),
            "{out}"
        );
        assert_eq!(rules_of(&counts), vec!["jwt"]);
    }

    #[test]
    fn equal_secrets_give_equal_masks_and_keys_change_them() {
        let text = format!("first {OPENAI} then {OPENAI} and {GITHUB}");
        let (out, counts) = redact(&text);
        let masks: Vec<&str> = mask_regex().find_iter(&out).map(|m| m.as_str()).collect();
        assert_eq!(masks.len(), 3);
        assert_eq!(masks[0], masks[1]);
        assert_ne!(masks[0], masks[2]);
        assert_eq!(
            counts.iter().find(|(r, _)| r == "openai_key").map(|c| c.1),
            Some(2)
        );
        let other = Redactor::new(RedactionPolicy::default(), OTHER_KEY);
        let (out_other, _) = other.redact_text(&text);
        assert_ne!(out, out_other);
        assert_gone(&out_other, OPENAI);
        // Same key, another redactor: same masks.
        assert_eq!(redactor().redact_text(&text).0, out);
    }

    #[test]
    fn clean_text_is_borrowed() {
        let r = redactor();
        for text in [
            "",
            "Hello, world. The build passed in 3.2s.",
            "{\"type\":\"message\",\"message\":{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"list files\"}]}}",
            "{\"usage\":{\"input\":120,\"output\":40,\"totalTokens\":160},\"max_tokens\":4096}",
        ] {
            let (out, counts) = r.redact_text(text);
            assert!(matches!(out, Cow::Borrowed(_)), "{text:?} -> {out:?}");
            assert!(counts.is_empty());
        }
    }

    #[test]
    fn lookalikes_are_not_masked() {
        let r = redactor();
        for text in [
            "skip-navigation task-1234 disk-usage-report-2024-01-01-final-version",
            "commit 3f9a1c2b4d5e6f708192a3b4c5d6e7f8091a2b3c fixed it",
            "session 0191d1b6-2c7e-7a31-9f0e-4b2d8c1a5e77 started",
            "Use a token to log in; the token count is high. Tokens: 1234 used.",
            "The password is stored in the vault. Authentication via OAuth.",
            "author: Jane Doe, authored 3 commits",
            "{\"max_tokens\": 4096, \"input_tokens\": 12, \"cacheReadTokens\": 0, \"tokenizer\": \"cl100k_base\"}",
            "{\"token_type\": \"bearer\", \"authMode\": \"oauth\", \"authProfileId\": \"anthropic:default\"}, \"authProfileOverride\": \"anthropic:work\"}",
            "{\"apiKey\": null, \"password\": \"\", \"secret\": true, \"token\": \"${GH_TOKEN}\"}",
            "export OPENAI_API_KEY=$OPENAI_API_KEY; TOKEN=<your-token>",
            "bearer tokens expire; Bearer authentication is required",
            "AKIA is a prefix; AKIAFAKE0123456789ABXYZ is too long",
            "eyJ is base64 for {\" and sk- is a prefix",
            "https://example.com/a:b@c is not userinfo? no, path only",
        ] {
            let (out, counts) = r.redact_text(text);
            assert!(matches!(out, Cow::Borrowed(_)), "{text:?} -> {out:?} {counts:?}");
        }
    }

    #[test]
    fn escaped_newline_before_a_token_is_a_boundary() {
        let json =
            serde_json::json!({"output": format!("line\n{OPENAI}\n{AWS_ID}\tdone")}).to_string();
        let (out, counts) = redact(&json);
        assert_gone(&out, OPENAI);
        assert_gone(&out, AWS_ID);
        assert_eq!(rules_of(&counts), vec!["openai_key", "aws_access_key_id"]);
        let parsed: Value = serde_json::from_str(&out).expect("parses");
        assert!(parsed["output"]
            .as_str()
            .is_some_and(|s| s.starts_with("line\n[REDACTED:openai_key:")));
    }

    #[test]
    fn double_escaped_json_stays_valid_at_both_levels() {
        let inner = serde_json::json!({"command": format!("curl -u x -H \"x-api-key: FAKEinnerKey99\" -d '{{\"password\":\"FAKEpw\\\\x\"}}' {STRIPE}")}).to_string();
        let line = serde_json::json!({"type": "toolCall", "arguments": inner}).to_string();
        let (out, _) = redact(&line);
        assert_gone(&out, "FAKEinnerKey99");
        assert_gone(&out, STRIPE);
        assert_gone(&out, "FAKEpw");
        let parsed: Value = serde_json::from_str(&out).expect("outer parses");
        let inner_out = parsed["arguments"].as_str().unwrap_or("");
        serde_json::from_str::<Value>(inner_out).expect("inner parses");
    }

    #[test]
    fn extra_rules() {
        let policy = RedactionPolicy::default()
            .with_extra_rule("employee_id", "EMP-[0-9]{6}")
            .expect("valid rule")
            .with_extra_rule("ticket_secret", r"ticket=(?P<secret>[A-Z0-9]{8})")
            .expect("valid rule");
        assert!(
            policy
                .id()
                .starts_with("trajectory-redact-v1+2 custom rules ("),
            "{}",
            policy.id()
        );
        assert_eq!(policy.rule_names().last(), Some("ticket_secret"));
        let r = Redactor::new(policy, KEY);
        let (out, counts) = r.redact_text("EMP-123456 opened ticket=ABCD1234 x");
        assert!(out.starts_with("[REDACTED:employee_id:"), "{out}");
        assert!(out.contains("ticket=[REDACTED:ticket_secret:"), "{out}");
        assert_eq!(rules_of(&counts), vec!["employee_id", "ticket_secret"]);
        assert_eq!(r.redact_text(&out).0, out);

        let err = RedactionPolicy::default().with_extra_rule("bad", "EMP-[0-9");
        assert!(matches!(err, Err(RedactionError::InvalidRegex { .. })));
        let message = err
            .map(|_| ())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            message.contains("\"bad\"") && message.contains("invalid regex"),
            "{message}"
        );
        assert!(matches!(
            RedactionPolicy::default().with_extra_rule("empty", "x*"),
            Err(RedactionError::MatchesEmpty { .. })
        ));
        assert!(matches!(
            RedactionPolicy::default().with_extra_rule("has space", "x"),
            Err(RedactionError::InvalidName(_))
        ));
        assert!(matches!(
            RedactionPolicy::default().with_extra_rule("jwt", "x"),
            Err(RedactionError::DuplicateName(_))
        ));
    }

    #[test]
    fn custom_match_crossing_a_quote_is_not_masked() {
        let policy = RedactionPolicy::default()
            .with_extra_rule("greedy", r"SECRETX.+")
            .expect("valid");
        let r = Redactor::new(policy, KEY);
        let json = r#"{"a":"SECRETX1","b":"c"}"#;
        let (out, _) = r.redact_text(json);
        serde_json::from_str::<Value>(&out).expect("still JSON");
    }

    #[test]
    fn policy_ids() {
        assert_eq!(RedactionPolicy::default().id(), POLICY_VERSION);
        assert_eq!(redactor().policy_id(), "trajectory-redact-v1");
        let a = RedactionPolicy::default()
            .with_extra_rule("a", "AAA[0-9]+")
            .map(|p| p.id());
        let b = RedactionPolicy::default()
            .with_extra_rule("a", "BBB[0-9]+")
            .map(|p| p.id());
        assert_ne!(a.ok(), b.ok());
        assert!(
            !format!("{:?}", redactor()).contains("7, 7"),
            "key not in Debug"
        );
    }

    fn event() -> Event {
        Event::new(
            "id".into(),
            Utc::now(),
            EventKind::ToolCall,
            "openclaw_transcript",
            "ingest",
            Utc::now(),
        )
    }

    /// Each anchor is searched for once: the two key-word rules share
    /// theirs, and a pattern the screen held twice only made its packed
    /// searcher verify more candidates.
    #[test]
    fn trigger_screen_holds_each_anchor_once() {
        let builtin = builtin();
        let mut distinct: Vec<&str> = BUILTIN
            .iter()
            .flat_map(|s| s.anchors.iter().copied())
            .collect();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(builtin.trigger_screen.patterns_len(), distinct.len());
        assert_eq!(builtin.key_word_pattern.len(), distinct.len());
        for anchor in distinct {
            let m = builtin.trigger_screen.find(anchor).expect(anchor);
            assert_eq!((m.start(), m.end()), (0, anchor.len()), "{anchor}");
            let is_key_word = KEY_WORD_ANCHORS.contains(&anchor);
            assert_eq!(
                builtin.key_word_pattern[m.pattern().as_usize()],
                is_key_word,
                "{anchor}"
            );
        }
    }

    #[test]
    fn line_is_clean_only_without_triggers_and_hiding_escapes() {
        let r = redactor();
        assert!(r.line_is_clean(r#"{"message":{"content":"ls -la\n\"done\""}}"#));
        assert!(!r.line_is_clean(&format!(r#"{{"text":"{OPENAI}"}}"#)));
        // Key words inside keys that name no secret do not count...
        assert!(!key_is_sensitive("totalTokens"));
        assert!(r.line_is_clean(r#"{"usage":{"input":3,"totalTokens":12}}"#));
        assert!(r.line_is_clean(r#"{"maxTokens":1,"x":{"no_token":"abc123456789"}}"#));
        // ...anywhere else they do.
        assert!(!r.line_is_clean(r#"{"usage":{"totalTokens":12},"text":"a token"}"#));
        assert!(!r.line_is_clean(r#"{"api_key":"abc123456789"}"#));
        assert!(!r.line_is_clean(r#"{"authToken":"abc123456789"}"#));
        assert!(!r.line_is_clean(r#"{"args":"{\"totalTokens\":1}"}"#));
        assert!(!r.line_is_clean(r#"{"text":"\"totalTokens\":1"}"#));
        assert!(!r.line_is_clean(r#"{"totalTokens" :12}"#));
        assert!(!r.line_is_clean(r#"{"total tokens":12}"#));
        assert!(!r.line_is_clean(r#"{"totalTokens":12,"url":"https://x"}"#));
        // `s\u006b-` decodes to `sk-`, `:\/\/` to `://`.
        assert!(!r.line_is_clean(r#"{"text":"s\u006b-proj-FAKEfake0123456789abcdefghij"}"#));
        assert!(!r.line_is_clean(r#"{"text":"https:\/\/user:hunter2@example.com"}"#));
        // Another rule's trigger inside a benign key word's match still counts
        // (`eyJ` starts at the last letter of `passphrase`), and a trigger
        // spelled in another case than the rule's (`Asia`) makes the line
        // take the full scan, to no effect.
        assert!(!key_is_sensitive("passphraseyJCount"));
        assert!(r.line_is_clean(r#"{"passphraseCount":1}"#));
        assert!(!r.line_is_clean(r#"{"passphraseyJCount":1}"#));
        assert!(!r.line_is_clean(r#"{"text":"Asia"}"#));
        let mut asia = event();
        asia.text = Some("Asia".into());
        redactor().redact_event(&mut asia);
        assert_eq!(asia.text.as_deref(), Some("Asia"));
        let custom = RedactionPolicy::default()
            .with_extra_rule("pin", r"pin-[0-9]{4}")
            .unwrap();
        assert!(!Redactor::new(custom, KEY).line_is_clean(r#"{"text":"plain"}"#));
    }

    #[test]
    fn redact_event_fills_the_columns() {
        let mut e = event();
        e.text = Some("nothing here".into());
        e.tool_args = Some(
            serde_json::json!({"command": format!("GH_TOKEN={GITHUB} gh pr list; echo {OPENAI}")})
                .to_string(),
        );
        e.raw = Some(
            serde_json::json!({"arguments": {"command": format!("GH_TOKEN={GITHUB}")}}).to_string(),
        );
        e.error = Some(format!("401 for key {GOOGLE}"));
        e.attributes = Some(serde_json::json!({"password": "FAKEattrPw1"}).to_string());
        e.tool_name = Some("exec".into());
        redactor().redact_event(&mut e);
        assert_eq!(e.text.as_deref(), Some("nothing here"));
        for field in [&e.tool_args, &e.raw, &e.error, &e.attributes] {
            let value = field.as_deref().unwrap_or("");
            for secret in [GITHUB, OPENAI, GOOGLE, "FAKEattrPw1"] {
                assert_gone(value, secret);
            }
        }
        serde_json::from_str::<Value>(e.tool_args.as_deref().unwrap_or(""))
            .expect("tool_args JSON");
        serde_json::from_str::<Value>(e.raw.as_deref().unwrap_or("")).expect("raw JSON");
        assert_eq!(e.redaction_policy.as_deref(), Some(POLICY_VERSION));
        let redactions: Value = serde_json::from_str(e.redactions.as_deref().unwrap_or("null"))
            .expect("redactions JSON");
        assert_eq!(
            redactions,
            serde_json::json!([
                {"rule": "openai_key", "field": "tool_args", "count": 1},
                {"rule": "github_token", "field": "tool_args", "count": 1},
                {"rule": "github_token", "field": "raw", "count": 1},
                {"rule": "google_api_key", "field": "error", "count": 1},
                {"rule": "sensitive_assignment", "field": "attributes", "count": 1},
            ])
        );
    }

    #[test]
    fn redact_event_without_secrets_sets_policy_only() {
        let mut e = event();
        e.text = Some("ls -la".into());
        e.content = Some("[{\"type\":\"text\",\"text\":\"ls -la\"}]".into());
        let before = e.clone();
        redactor().redact_event(&mut e);
        assert_eq!(e.redactions, None);
        assert_eq!(e.redaction_policy.as_deref(), Some(POLICY_VERSION));
        assert_eq!(e.text, before.text);
        assert_eq!(e.content, before.content);
    }

    #[test]
    fn inline_images_are_replaced_by_references() {
        let b64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
        let line = serde_json::json!({
            "type": "message",
            "message": {"role": "user", "content": [
                {"type": "text", "text": format!("see ![x](data:image/png;base64,{b64}) please")},
                {"type": "image", "data": b64, "mimeType": "image/png"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": b64}},
            ]}
        })
        .to_string();
        let (out, n) = strip_inline_images(&line);
        assert_eq!(n, 3);
        assert!(!out.contains(b64));
        let parsed: Value = serde_json::from_str(&out).expect("parses");
        let reference = image_reference(b64);
        assert!(
            reference.starts_with("sha256:") && reference.ends_with(&format!(":{}", b64.len()))
        );
        assert_eq!(
            parsed["message"]["content"][1]["data"],
            Value::String(reference.clone())
        );
        assert_eq!(parsed["message"]["content"][1]["mimeType"], "image/png");
        assert_eq!(
            parsed["message"]["content"][2]["source"]["data"],
            Value::String(reference.clone())
        );
        assert_eq!(
            parsed["message"]["content"][0]["text"],
            Value::String(format!("see ![x]({reference}) please"))
        );
        // Key order and the rest of the text are kept.
        assert!(out.starts_with("{\"type\":\"message\",\"message\":{\"role\":\"user\""));
        // Idempotent.
        let (again, n) = strip_inline_images(&out);
        assert!(matches!(again, Cow::Borrowed(_)) && again == out && n == 0);
    }

    #[test]
    fn inline_images_leave_other_text_alone() {
        for text in [
            "not json {\"type\":\"image\",\"data\":\"aGVsbG8=\"",
            "{\"type\":\"text\",\"text\":\"an image of a cat\"}",
            "{\"type\":\"image\",\"url\":\"https://example.com/cat.png\"}",
        ] {
            let (out, n) = strip_inline_images(text);
            assert!(
                matches!(out, Cow::Borrowed(_)) && out == text && n == 0,
                "{text}"
            );
        }
        // Escaped slashes force a re-serialisation, still valid.
        let escaped = r#"{"type":"image","data":"ab\/cd+ef=="}"#;
        let (out, n) = strip_inline_images(escaped);
        assert_eq!(n, 1);
        let parsed: Value = serde_json::from_str(&out).expect("parses");
        assert_eq!(parsed["data"], Value::String(image_reference("ab/cd+ef==")));
    }

    /// A format-valid fake secret of each kind, as (text to plant, secret
    /// substring that must not survive).
    fn planted() -> impl Strategy<Value = (String, String)> {
        prop_oneof![
            "[A-Za-z0-9]{40}".prop_map(|s| {
                let k = format!("sk-proj-{s}");
                (k.clone(), k)
            }),
            "[A-Za-z0-9]{48}".prop_map(|s| {
                let k = format!("sk-{s}");
                (k.clone(), k)
            }),
            "[A-Za-z0-9_-]{40}".prop_map(|s| {
                let k = format!("sk-ant-api03-{s}");
                (k.clone(), k)
            }),
            "[0-9A-Za-z_-]{35}".prop_map(|s| {
                let k = format!("AIza{s}");
                (k.clone(), k)
            }),
            "[0-9A-Za-z_-]{40}".prop_map(|s| {
                let k = format!("ya29.{s}");
                (k.clone(), k)
            }),
            "[0-9A-Z]{16}".prop_map(|s| {
                let k = format!("AKIA{s}");
                (k.clone(), k)
            }),
            ("gh[pousr]", "[A-Za-z0-9]{36}").prop_map(|(p, s)| {
                let k = format!("{p}_{s}");
                (k.clone(), k)
            }),
            ("xox[bpars]", "[0-9]{12}", "[A-Za-z0-9]{24}").prop_map(|(p, a, s)| {
                let k = format!("{p}-{a}-{s}");
                (k.clone(), k)
            }),
            ("(sk|rk)_(live|test)", "[A-Za-z0-9]{24}").prop_map(|(p, s)| {
                let k = format!("{p}_{s}");
                (k.clone(), k)
            }),
            (
                "[A-Za-z0-9_-]{20}",
                "[A-Za-z0-9_-]{30}",
                "[A-Za-z0-9_-]{30}"
            )
                .prop_map(|(a, b, c)| {
                    let k = format!("eyJ{a}.{b}.{c}");
                    (k.clone(), k)
                }),
            "[A-Za-z0-9+/]{64}".prop_map(|s| {
                let body = format!("MII{s}");
                (
                    format!(
                        "-----BEGIN PRIVATE KEY-----\n{body}\n{body}\n-----END PRIVATE KEY-----"
                    ),
                    body,
                )
            }),
            "[A-Za-z0-9]{16}".prop_map(|s| {
                let pw = format!("Pw{s}");
                (format!("postgres://user:{pw}@db:5432/app"), pw)
            }),
            (
                "(DB_PASSWORD|api_key|GITHUB_TOKEN|clientSecret)",
                "[A-Za-z0-9]{16}"
            )
                .prop_map(|(k, s)| {
                    let v = format!("Vx{s}");
                    (format!("{k}={v}"), v)
                }),
            "[A-Za-z0-9]{24}".prop_map(|s| {
                let t = format!("T0{s}");
                (format!("Authorization: Bearer {t}"), t)
            }),
        ]
    }

    /// Pieces of text that sit near rule boundaries.
    fn fragment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("token".to_string()),
            Just("TOKEN".to_string()),
            Just("password".to_string()),
            Just("api_key".to_string()),
            Just("Authorization".to_string()),
            Just("Bearer ".to_string()),
            Just("Basic ".to_string()),
            Just("--token ".to_string()),
            Just("=".to_string()),
            Just(": ".to_string()),
            Just(":".to_string()),
            Just("\"".to_string()),
            Just("'".to_string()),
            Just("\\".to_string()),
            Just("\n".to_string()),
            Just("\t".to_string()),
            Just(" ".to_string()),
            Just("@".to_string()),
            Just("://".to_string()),
            Just("https://u:".to_string()),
            Just("[REDACTED:".to_string()),
            Just("]".to_string()),
            Just("[REDACTED:jwt:0123abcd]".to_string()),
            Just("sk-".to_string()),
            Just("sk-proj-".to_string()),
            Just("AKIA".to_string()),
            Just("eyJ".to_string()),
            Just(".".to_string()),
            Just("-----BEGIN PRIVATE KEY-----".to_string()),
            Just("-----END PRIVATE KEY-----".to_string()),
            Just("aws_secret_access_key=".to_string()),
            Just("totalTokens".to_string()),
            Just("no_token".to_string()),
            Just("authMode".to_string()),
            Just("-".to_string()),
            Just("\":".to_string()),
            Just("{\"".to_string()),
            "[A-Za-z0-9]{1,24}",
            "[A-Za-z0-9_-]{20,44}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn planted_secret_never_survives_and_redaction_is_idempotent(
            before in "[ -~\n\t]{0,60}",
            after in "[ -~\n\t]{0,60}",
            (plant, secret) in planted(),
        ) {
            let text = format!("{before} {plant} {after}");
            let r = redactor();
            let (once, _) = r.redact_text(&text);
            prop_assert!(!once.contains(&secret), "{} survived in {:?}", secret, once);
            let (twice, counts) = r.redact_text(&once);
            prop_assert_eq!(twice.as_ref(), once.as_ref());
            prop_assert!(counts.is_empty());
        }

        #[test]
        fn planted_secret_in_json_is_gone_and_json_stays_valid(
            before in "[ -~\n\t]{0,40}",
            after in "[ -~\n\t]{0,40}",
            (plant, secret) in planted(),
        ) {
            let line = serde_json::json!({
                "type": "toolCall",
                "arguments": {"command": format!("{before} {plant} {after}")},
                "nested": serde_json::json!({"stdout": format!("{before} {plant}")}).to_string(),
            })
            .to_string();
            let r = redactor();
            let (once, _) = r.redact_text(&line);
            prop_assert!(!once.contains(&secret));
            let parsed: Value = serde_json::from_str(&once).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let nested = parsed["nested"].as_str().unwrap_or("");
            let nested_parsed: Result<Value, _> = serde_json::from_str(nested);
            prop_assert!(nested_parsed.is_ok(), "nested JSON broken: {:?}", nested);
            let mut all = Vec::new();
            strings(&parsed, &mut all);
            prop_assert!(all.iter().all(|s| !s.contains(&secret)));
            let (twice, _) = r.redact_text(&once);
            prop_assert_eq!(twice.as_ref(), once.as_ref());
        }

        #[test]
        fn tricky_fragments_stay_idempotent_and_valid_json(
            parts in proptest::collection::vec(fragment(), 0..24),
        ) {
            let text: String = parts.concat();
            let r = redactor();
            let (once, _) = r.redact_text(&text);
            let (twice, _) = r.redact_text(&once);
            prop_assert_eq!(twice.as_ref(), once.as_ref());
            let line = serde_json::json!({"t": text, "n": serde_json::json!({"u": text}).to_string()}).to_string();
            let (out, _) = r.redact_text(&line);
            let parsed: Result<Value, _> = serde_json::from_str(&out);
            prop_assert!(parsed.is_ok(), "broken JSON: {:?}", out);
            if let Ok(parsed) = parsed {
                let nested = parsed["n"].as_str().unwrap_or("");
                prop_assert!(serde_json::from_str::<Value>(nested).is_ok(), "nested broken: {:?}", nested);
            }
            let (out_twice, _) = r.redact_text(&out);
            prop_assert_eq!(out_twice.as_ref(), out.as_ref());
        }

        #[test]
        fn nothing_decoded_from_a_clean_line_can_be_masked(
            key in proptest::collection::vec(fragment(), 1..4),
            first in proptest::collection::vec(fragment(), 0..12),
            second in proptest::collection::vec(fragment(), 0..12),
            escape_every in 0usize..6,
        ) {
            let (key, first, second) = (key.concat(), first.concat(), second.concat());
            let content = serde_json::json!([
                {"type": "text", "text": first},
                {"type": "text", "text": second},
            ]);
            let value = serde_json::json!({
                "type": "message",
                "message": {"role": "toolResult", "content": content, "details": {key.clone(): second}},
            });
            // As another writer may spell it: some letters as `\u` escapes.
            // Never inside an escape sequence (`\n`, `\u001b`).
            let mut line = String::new();
            let mut in_escape = 0;
            for (i, c) in value.to_string().chars().enumerate() {
                if in_escape > 0 {
                    in_escape = if in_escape == 1 && c == 'u' { 4 } else { in_escape - 1 };
                    line.push(c);
                } else if c == '\\' {
                    in_escape = 1;
                    line.push(c);
                } else if escape_every > 0 && i % (escape_every * 7) == 3 && c.is_ascii_alphabetic() {
                    line.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    line.push(c);
                }
            }
            prop_assert_eq!(serde_json::from_str::<Value>(&line).ok(), Some(value.clone()));
            let r = redactor();
            if r.line_is_clean(&line) {
                let derived = [
                    first.clone(),
                    second.clone(),
                    key.clone(),
                    format!("{first}\n{second}"),
                    content.to_string(),
                    value["message"].to_string(),
                    value.to_string(),
                ];
                for text in &derived {
                    let (out, counts) = r.redact_text(text);
                    prop_assert!(matches!(out, Cow::Borrowed(_)), "{:?} masked in {:?}", text, out);
                    prop_assert!(counts.is_empty());
                }
            }
        }

        #[test]
        fn key_word_anchors_find_what_the_key_word_regex_finds(
            parts in proptest::collection::vec(
                prop_oneof![
                    fragment(),
                    "(?i:pass(wor)?(d|phrase)|api[_.-]?key|private[_.-]?key|access[_.-]?key|credentials?|auth(or)?|tok|secre)",
                    "[A-Za-z_.-]{0,3}",
                    Just("\u{e9}\u{212a}".to_string()),
                ],
                0..12,
            ),
        ) {
            let line = parts.concat();
            let regex = Regex::new(key_words!()).expect("the key-word regex compiles");
            let expected: Vec<(usize, usize)> =
                regex.find_iter(&line).map(|m| (m.start(), m.end())).collect();
            let anchors = literal_searcher(KEY_WORD_ANCHORS.iter().copied());
            let found: Vec<(usize, usize)> = with_ascii_lowercase(&line, |lower| {
                anchors.find_iter(lower).map(|m| (m.start(), m.end())).collect()
            });
            prop_assert_eq!(found, expected, "in {:?}", line);
        }

        #[test]
        fn a_clean_line_with_key_words_in_its_keys_masks_nothing(
            entries in proptest::collection::vec(
                (
                    "-{0,2}[a-z]{0,5}(token|Tokens|TOKEN|auth|Auth|secret|password|api_key)?[A-Za-z0-9_.-]{0,6}",
                    prop_oneof![
                        "[a-z0-9 ]{0,12}".prop_map(Value::from),
                        (0i64..100_000).prop_map(Value::from),
                        proptest::collection::vec(fragment(), 0..3)
                            .prop_map(|parts| Value::from(parts.concat())),
                    ],
                ),
                1..6,
            ),
            key_as_text in any::<bool>(),
        ) {
            let usage: serde_json::Map<String, Value> = entries.iter().cloned().collect();
            let text = if key_as_text { entries[0].0.clone() } else { "ok".to_string() };
            let value = serde_json::json!({
                "type": "message",
                "message": {
                    "role": "assistant",
                    "content": [{"type": "text", "text": text}],
                    "usage": usage.clone(),
                },
            });
            let line = value.to_string();
            let r = redactor();
            if r.line_is_clean(&line) {
                let mut derived = vec![
                    line.clone(),
                    value["message"].to_string(),
                    value["message"]["content"].to_string(),
                    Value::Object(usage).to_string(),
                ];
                strings(&value, &mut derived);
                for text in &derived {
                    let (out, counts) = r.redact_text(text);
                    prop_assert!(matches!(out, Cow::Borrowed(_)), "{:?} masked in {:?}", text, out);
                    prop_assert!(counts.is_empty());
                }
            }
        }

        #[test]
        fn random_text_redaction_is_idempotent_and_keeps_json(text in "[ -~\n]{0,120}") {
            let r = redactor();
            let (once, _) = r.redact_text(&text);
            let (twice, _) = r.redact_text(&once);
            prop_assert_eq!(twice.as_ref(), once.as_ref());
            let line = serde_json::json!({"t": text}).to_string();
            let (out, _) = r.redact_text(&line);
            prop_assert!(serde_json::from_str::<Value>(&out).is_ok());
        }
    }
}
