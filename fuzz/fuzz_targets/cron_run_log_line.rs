//! Arbitrary bytes as a cron run log (`cron/runs/<jobId>.jsonl`): exactly one
//! event per non-blank line, every good line a `cron_run` with subsystem
//! `cron` and `seq` = line index, a non-negative `latency_ms` if any, plus the
//! shared checks of `common::check_jsonl`. Ids are not unique on purpose
//! (source, jobId, ts, line sha256: a copied run line dedupes). `summary_is_failure`
//! never panics.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use trajectory_ingest::openclaw::cron_run_log::{
    looks_like_cron_run_log, read_cron_run_log, summary_is_failure, SOURCE,
};
use trajectory_schema::EventKind;

fuzz_target!(|data: &[u8]| {
    let _ = looks_like_cron_run_log(common::first_line(data));
    let _ = summary_is_failure(&String::from_utf8_lossy(data));
    let events = common::fuzz_jsonl(
        data,
        "fuzz-job",
        &common::Expect {
            source: SOURCE,
            one_event_per_line: true,
            unique_ids: false,
            unknown_counted: true,
        },
        |data, context| read_cron_run_log(data, context),
    );
    for event in &events {
        if event.kind == EventKind::Quarantined {
            continue;
        }
        assert_eq!(event.kind, EventKind::CronRun);
        assert_eq!(event.subsystem.as_deref(), Some("cron"));
        assert_eq!(event.seq, event.source_line.map(|n| n - 1));
        assert!(
            event.latency_ms.is_none_or(|ms| ms >= 0),
            "negative latency_ms"
        );
    }
});
