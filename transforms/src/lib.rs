//! DataFusion jobs over the event log: turns, trajectories, rewards, judge.
//!
//! ```text
//! events (one version) ──QueryEngine──▶ transcript events per session (sorted by seq)
//!     ├─ turns::segment            ──▶ `turns`         (one row per turn, every branch)
//!     ├─ trajectories::segment_episodes ──▶ `trajectories` (task episodes, siblings linked)
//!     └─ rewards::compute_rewards  ──▶ `rewards`       (process / outcome / combined)
//! judge::judge: turns ──OpenAI-compatible endpoint, k votes──▶ `annotation` events
//! ```
//!
//! Derived tables are Delta tables beside `events`, each built by
//! [`derive`] (a DataFusion plan, [`session_plan`]; in full or for the
//! sessions touched since the last build, [`derive_job`]) and recording the `events` version and parameters it was built
//! from ([`trajectory_store::DerivedLineage`]). Every derived table carries a
//! `session_id` [utf8] column and an `event_ids` [list<utf8>] column (the
//! events each row was derived from), so that `trajectory erase` can remove
//! everything derived from erased events. Columns and rules:
//! `docs/datasets.md`.

mod columns;
pub mod dedupe;
pub mod dedupe_signatures;
pub mod derive_job;
pub mod judge;
pub mod minhash;
pub mod rewards;
pub mod session_plan;
pub mod trajectories;
pub mod transcript;
pub mod turns;
pub mod user_text;

use serde::Serialize;
use serde_json::{json, Map, Value};
use thiserror::Error;
use trajectory_query::{AsOf, QueryError};
use trajectory_store::StoreError;

pub use derive_job::{derive, DeriveScope, DEFAULT_DERIVE_MEMORY_BYTES};
pub use rewards::{Credit, RewardParams, REWARDS_METHOD_VERSION};
pub use trajectories::{EpisodeRule, TRAJECTORIES_JOB_VERSION};
pub use turns::TURNS_JOB_VERSION;

/// Errors of the derive jobs and the judge.
#[derive(Debug, Error)]
pub enum DeriveError {
    /// Reading the event log failed.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// Writing a derived table or appending annotations failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A batch could not be built.
    #[error("cannot build a derived batch: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// A query result had an unexpected column.
    #[error("unexpected query result: {0}")]
    Column(String),
    /// An option is out of range or unknown.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// The judge endpoint could not be used.
    #[error("judge: {0}")]
    Judge(String),
}

/// What [`derive`] runs with.
#[derive(Debug, Clone, Default)]
pub struct DeriveOptions {
    /// Read the log at this version or time (latest when `None`).
    pub as_of: Option<AsOf>,
    pub rewards: RewardParams,
    pub episodes: EpisodeRule,
    /// Rebuild every session even when an incremental build is possible.
    pub full: bool,
    /// Bytes of memory the plan's sort and repartition may hold before they
    /// spill to disk; [`DEFAULT_DERIVE_MEMORY_BYTES`] when `None`.
    pub memory_limit: Option<usize>,
}

impl DeriveOptions {
    /// The parameters recorded in every derived table's lineage.
    pub fn params(&self) -> Map<String, Value> {
        let r = &self.rewards;
        let mut params = Map::new();
        params.insert("credit".into(), json!(r.credit.name()));
        params.insert("gamma".into(), json!(r.gamma));
        params.insert("prm_coef".into(), json!(r.prm_coef));
        params.insert("reask_threshold".into(), json!(r.reask_threshold));
        params.insert("idle_gap_us".into(), json!(self.episodes.idle_gap_us));
        params.insert(
            "episode_reask_threshold".into(),
            json!(self.episodes.reask_threshold),
        );
        params
    }

    /// Checks ranges: `gamma` in [0, 1], thresholds in [0, 1], a
    /// non-negative idle gap, a finite `prm_coef`.
    pub fn validate(&self) -> Result<(), DeriveError> {
        let r = &self.rewards;
        let unit = |name: &str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(DeriveError::InvalidOption(format!(
                    "{name} must be in [0, 1], got {v}"
                )))
            }
        };
        unit("gamma", r.gamma)?;
        unit("reask threshold", r.reask_threshold)?;
        unit("episode re-ask threshold", self.episodes.reask_threshold)?;
        if !r.prm_coef.is_finite() {
            return Err(DeriveError::InvalidOption("prm_coef must be finite".into()));
        }
        if self.episodes.idle_gap_us < 0 {
            return Err(DeriveError::InvalidOption(
                "the idle gap must not be negative".into(),
            ));
        }
        Ok(())
    }
}

/// One derived table written (or found up to date).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DerivedTableSummary {
    pub name: String,
    pub rows: usize,
    /// The derived table's Delta version; `None` when it was up to date.
    pub version: Option<u64>,
    pub job_version: String,
    /// Segments the build added.
    pub segments_written: usize,
    /// Old rows the build replaced (every row of a full build; the rebuilt
    /// sessions' rows of an incremental one).
    pub rows_replaced: usize,
}

/// What [`derive`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeriveSummary {
    /// The `events` version the tables were built from.
    pub events_version: u64,
    /// True when every table already recorded this events version and these
    /// parameters: nothing was written.
    pub up_to_date: bool,
    /// Full or incremental; `None` when up to date.
    pub scope: Option<DeriveScope>,
    pub tables: Vec<DerivedTableSummary>,
    /// Sessions derived (all of them, or those an incremental build touched).
    pub sessions: usize,
}

pub(crate) const JOBS: [(&str, &str); 3] = [
    ("turns", TURNS_JOB_VERSION),
    ("trajectories", TRAJECTORIES_JOB_VERSION),
    ("rewards", REWARDS_METHOD_VERSION),
];
