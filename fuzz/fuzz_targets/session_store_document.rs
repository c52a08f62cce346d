//! Arbitrary bytes as a whole `sessions.json` (one JSON object of session
//! keys, not JSONL). `read_session_store` fails exactly when the bytes are
//! not whitespace and not a JSON object; otherwise: one `session_info` or
//! one `quarantined` event per key, in key order, plus at most one
//! `fallback_decision` after the `session_info`; `seq` = key index;
//! `session_key` = the key; `raw` = `{"<key>": entry}` compact, stored once,
//! with `line_sha256` = its sha256; ids 32 hex chars, unique, deterministic.
//! `session_channels` agrees with the store (every id it returns names a key
//! whose entry has that `sessionId`).
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use trajectory_ingest::jsonl::sha256_hex;
use trajectory_ingest::openclaw::session_store::{
    read_session_store, session_channels, split_model_ref, SOURCE,
};
use trajectory_schema::EventKind;

fuzz_target!(|data: &[u8]| {
    let context = common::context("sessions");
    let parsed = serde_json::from_slice::<Value>(data);
    let blank = data.iter().all(u8::is_ascii_whitespace);
    let result = read_session_store(data, &context);

    let channels = session_channels(data);
    if let Ok(Value::Object(store)) = &parsed {
        for (session_id, (key, _channel)) in &channels {
            let entry = store
                .get(key)
                .unwrap_or_else(|| panic!("session_channels: no key {key:?}"));
            assert_eq!(
                entry.get("sessionId").and_then(Value::as_str),
                Some(session_id.as_str()),
                "session_channels: key {key:?} does not hold session {session_id:?}"
            );
        }
    } else {
        assert!(
            channels.is_empty(),
            "session_channels of a non-object is not empty"
        );
    }

    let (events, stats) = match result {
        Ok(read) => read,
        Err(e) => {
            assert!(!blank, "whitespace-only store refused: {e}");
            assert!(
                !matches!(parsed, Ok(Value::Object(_))),
                "a JSON object store refused: {e}"
            );
            return;
        }
    };
    let store: Map<String, Value> = match parsed {
        Ok(Value::Object(store)) => store,
        _ if blank => Map::new(),
        Ok(other) => panic!("read a store that is not an object: {other}"),
        Err(e) => panic!("read a store that is not JSON: {e}"),
    };
    common::check_events_common(&events, &stats, &context, SOURCE, true);
    assert_eq!(
        stats.bytes as usize,
        data.len(),
        "stats.bytes != input length"
    );
    assert_eq!(
        stats.lines as usize,
        store.len(),
        "stats.lines != number of keys"
    );

    let mut rest = &events[..];
    for (index, (key, entry)) in store.iter().enumerate() {
        let n = rest
            .iter()
            .take_while(|e| e.seq == Some(index as i64))
            .count();
        let (of_entry, tail) = rest.split_at(n);
        rest = tail;
        assert!(
            (1..=2).contains(&n),
            "key {index} ({key:?}) produced {n} events"
        );
        let first = &of_entry[0];
        match first.kind {
            EventKind::SessionInfo => {}
            EventKind::Quarantined => assert_eq!(n, 1, "a quarantined entry has other events"),
            other => panic!("first event of an entry is {other:?}"),
        }
        if n == 2 {
            assert_eq!(of_entry[1].kind, EventKind::FallbackDecision);
            assert!(
                of_entry[1].raw.is_none(),
                "raw stored twice for key {key:?}"
            );
        }
        if !entry.is_object() {
            assert_eq!(
                first.kind,
                EventKind::Quarantined,
                "non-object entry not quarantined"
            );
        }
        let raw = Value::Object(Map::from_iter([(key.clone(), entry.clone())])).to_string();
        assert_eq!(
            first.raw.as_deref(),
            Some(raw.as_str()),
            "raw is not {{key: entry}}"
        );
        let sha = sha256_hex(raw.as_bytes());
        for event in of_entry {
            assert_eq!(event.session_key.as_deref(), Some(key.as_str()));
            assert_eq!(event.line_sha256.as_deref(), Some(sha.as_str()));
        }
    }
    assert!(
        rest.is_empty(),
        "events after the last key or out of key order"
    );

    let (again, again_stats) = read_session_store(data, &context).expect("second read");
    common::assert_same_events(&events, &again);
    assert_eq!(again_stats, stats);

    // The model-ref splitter used for fallback notices: it only splits.
    let text = String::from_utf8_lossy(data);
    let (provider, model) = split_model_ref(&text);
    let joined = match (&provider, &model) {
        (Some(p), Some(m)) => format!("{p}/{m}"),
        (Some(p), None) => format!("{p}/"),
        (None, Some(m)) => m.clone(),
        (None, None) => String::new(),
    };
    assert_eq!(joined, text, "split_model_ref lost characters");
});
