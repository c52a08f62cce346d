"""Compares the derived tables (turns, trajectories, rewards) of two stores row by row.

    python3 benches/compare_derived.py STORE_A STORE_B

Rows are sorted by their ids (ties broken by every column used here); the events_version column
is left out (it says which log version a session was last derived from). Exit code 1 when a
table differs. Used to check that a change to derive leaves its output identical
(docs/benchmarks.md, session 29)."""

import sys

from deltalake import DeltaTable

KEYS = {"turns": ["turn_id"], "trajectories": ["trajectory_id"],
        "rewards": ["reward_id", "turn_id", "trajectory_id"]}


def main(a, b):
    ok = True
    for table, keys in KEYS.items():
        order = [(c, "ascending") for c in keys]
        ta = DeltaTable(f"{a}/{table}").to_pyarrow_table().sort_by(order)
        tb = DeltaTable(f"{b}/{table}").to_pyarrow_table().sort_by(order).select(ta.column_names)
        columns = [c for c in ta.column_names if c != "events_version"]
        differ = [c for c in columns if ta.num_rows != tb.num_rows or not ta.column(c).equals(tb.column(c))]
        print(table, ta.num_rows, tb.num_rows, "same" if not differ else f"differ in {differ}")
        ok &= not differ
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
