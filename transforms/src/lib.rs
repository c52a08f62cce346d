//! DataFusion jobs over the event log: turns, trajectories, rewards, dedupe.
//!
//! Not built yet (see the project's issues); the crate exists so the
//! workspace has the layout of `docs/architecture.md` and the dependency
//! direction `transforms -> query, store, schema` is fixed from the start.
