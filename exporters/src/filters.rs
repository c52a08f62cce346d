//! Export filters and the train/validation split.
//!
//! Filters select rows before they are written; all are optional and combine
//! with AND. Derived-table targets apply them to **turns**; `trl-sft` (one row
//! per session) applies them to **sessions** (see [`ExportFilters`] and
//! `docs/datasets.md`, section Export targets).

use serde_json::{json, Value};

use crate::ExportError;

/// The split rule, as recorded in manifests and cards.
pub const SPLIT_RULE: &str =
    "validation when u64_le(blake3(session_id)[0..8]) mod 100 < validation_percent, else train";

/// The split of a session: `"validation"` when the first 8 bytes of
/// `blake3(session_id)`, read as a little-endian u64, mod 100 are below
/// `validation_percent`, else `"train"`. A session never straddles splits and
/// keeps its split across rebuilds and as the log grows. In Python:
/// `int.from_bytes(blake3(sid.encode()).digest()[:8], "little") % 100 < p`.
pub fn split_of(session_id: &str, validation_percent: u8) -> &'static str {
    let hash = blake3::hash(session_id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash.as_bytes()[..8]);
    if u64::from_le_bytes(first) % 100 < u64::from(validation_percent) {
        "validation"
    } else {
        "train"
    }
}

/// Row filters and split parameters of an export.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportFilters {
    /// Turns (sessions, for `trl-sft`) started at or after this time (RFC 3339).
    pub since: Option<String>,
    /// Turns (sessions) started before this time (RFC 3339).
    pub until: Option<String>,
    /// Only this agent id.
    pub agent: Option<String>,
    /// Turns whose last LLM call used this provider (sessions with a call to it).
    pub provider: Option<String>,
    /// `local`, `cloud`, `internal` or `unknown`: of the turn's last LLM call
    /// (sessions with a call of that locality).
    pub locality: Option<String>,
    /// Turns whose reward (mean of their `combined` step rewards, roughly in
    /// [−2, 2]) is at least this; for pair targets, the chosen turn's. For
    /// `trl-sft`: sessions whose mean `combined` trajectory reward is.
    pub min_reward: Option<f64>,
    /// An extra SQL predicate: over `turns` (alias `t`, plus `s.reward`,
    /// `s.advantage`) for derived-table targets, over `events` (alias `e`;
    /// a session is kept when any of its events matches) for `trl-sft`.
    pub r#where: Option<String>,
    /// Percentage of sessions in the validation split, 0–100 (default 5).
    pub validation_percent: u8,
    /// Minimum reward gap for a preference pair formed from rewards (default 1.0).
    pub min_reward_gap: f64,
}

impl Default for ExportFilters {
    fn default() -> ExportFilters {
        ExportFilters {
            since: None,
            until: None,
            agent: None,
            provider: None,
            locality: None,
            min_reward: None,
            r#where: None,
            validation_percent: 5,
            min_reward_gap: 1.0,
        }
    }
}

pub(crate) fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl ExportFilters {
    /// Checks values before any query runs.
    ///
    /// Errors: [`ExportError::Invalid`] for a time that is not RFC 3339, an
    /// unknown locality, a percentage over 100 or a negative/NaN gap.
    pub fn validate(&self) -> Result<(), ExportError> {
        for (flag, time) in [("--since", &self.since), ("--until", &self.until)] {
            if let Some(t) = time {
                chrono::DateTime::parse_from_rfc3339(t).map_err(|e| {
                    ExportError::Invalid(format!(
                        "{flag} {t:?} is not an RFC 3339 time ({e}); e.g. 2026-11-01T00:00:00Z"
                    ))
                })?;
            }
        }
        if let Some(l) = &self.locality {
            if !["local", "cloud", "internal", "unknown"].contains(&l.as_str()) {
                return Err(ExportError::Invalid(format!(
                    "--locality {l:?}: expected local, cloud, internal or unknown"
                )));
            }
        }
        if self.validation_percent > 100 {
            return Err(ExportError::Invalid(format!(
                "--validation-percent {} is over 100",
                self.validation_percent
            )));
        }
        if self.min_reward_gap.is_nan() || self.min_reward_gap < 0.0 {
            return Err(ExportError::Invalid(
                "--min-reward-gap must be a number ≥ 0".into(),
            ));
        }
        Ok(())
    }

    /// The SQL predicate over `turns t` (time, agent, provider, locality, where).
    pub(crate) fn turns_sql(&self) -> String {
        let mut clauses = vec!["TRUE".to_string()];
        if let Some(t) = &self.since {
            clauses.push(format!("t.started_at >= CAST({} AS TIMESTAMP)", quote(t)));
        }
        if let Some(t) = &self.until {
            clauses.push(format!("t.started_at < CAST({} AS TIMESTAMP)", quote(t)));
        }
        if let Some(a) = &self.agent {
            clauses.push(format!("t.agent_id = {}", quote(a)));
        }
        if let Some(p) = &self.provider {
            clauses.push(format!("t.provider = {}", quote(p)));
        }
        if let Some(l) = &self.locality {
            clauses.push(format!("t.locality = {}", quote(l)));
        }
        if let Some(w) = &self.r#where {
            clauses.push(format!("({w})"));
        }
        clauses.join(" AND ")
    }

    /// Whether any filter is set (the split parameters aside).
    pub fn any(&self) -> bool {
        self.since.is_some()
            || self.until.is_some()
            || self.agent.is_some()
            || self.provider.is_some()
            || self.locality.is_some()
            || self.min_reward.is_some()
            || self.r#where.is_some()
    }

    /// The filters as recorded in the manifest.
    pub fn to_json(&self) -> Value {
        json!({"since": self.since, "until": self.until, "agent": self.agent,
               "provider": self.provider, "locality": self.locality,
               "min_reward": self.min_reward, "where": self.r#where,
               "validation_percent": self.validation_percent,
               "min_reward_gap": self.min_reward_gap})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_stable_and_close_to_the_percentage() {
        let ids: Vec<String> = (0..10_000).map(|i| format!("session-{i}")).collect();
        let validation = ids
            .iter()
            .filter(|s| split_of(s, 5) == "validation")
            .count();
        assert!((400..600).contains(&validation), "{validation}");
        assert!(ids.iter().all(|s| split_of(s, 5) == split_of(s, 5)));
        assert!(ids.iter().all(|s| split_of(s, 0) == "train"));
        assert!(ids.iter().all(|s| split_of(s, 100) == "validation"));
        // Growing the percentage only moves sessions into validation.
        assert!(ids
            .iter()
            .all(|s| split_of(s, 5) == "train" || split_of(s, 10) == "validation"));
        // Fixed values guard the rule against accidental change.
        // blake3 → u64 LE mod 100: a 43, b 64, c 6, session-1 55.
        assert_eq!(split_of("a", 44), "validation");
        assert_eq!(split_of("a", 43), "train");
        assert_eq!(split_of("b", 64), "train");
        assert_eq!(split_of("c", 7), "validation");
        assert_eq!(split_of("session-1", 56), "validation");
    }

    #[test]
    fn filters_validate_and_quote() {
        let mut f = ExportFilters {
            agent: Some("o'brien".into()),
            ..Default::default()
        };
        assert!(f.turns_sql().contains("t.agent_id = 'o''brien'"));
        f.since = Some("yesterday".into());
        assert!(matches!(f.validate(), Err(ExportError::Invalid(_))));
        f.since = Some("2026-11-01T00:00:00Z".into());
        f.locality = Some("moon".into());
        assert!(f.validate().is_err());
        f.locality = Some("cloud".into());
        assert!(f.validate().is_ok());
    }
}
