"""History inside the synthetic voter file: tokens packed in one column (NY VoterHistory) and numbered
slots (PA FVE), from the drop's history rows and the layout's [synth.history] table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from voterpipe.formats.layouts import Layout, slot_columns
from voterpipe.synth.layouts.common import DropContext, history_rows
from voterpipe.synth.layouts.values import Frame, evaluate


def packed_history(ctx: DropContext, layout: Layout) -> tuple[pa.Array, np.ndarray]:
    """Each written voter's history packed into one string ([synth.history] token, e.g.
    "{on:%Y%m%d} {code}({method})", codes by election kind), and the number of tokens per voter."""
    synth = layout.synth.get("history", {})
    template, codes = synth.get("token", "{on:%Y%m%d} {code}({method})"), synth.get("codes", {})
    person, election, u = history_rows(ctx)
    frame = Frame(ctx, person, layout.state.upper(), layout.synth, election=election, u=u, role="history")
    method = evaluate(frame, {"source": "voting_method"}, f"{layout.source.name} [history] token")
    method = np.asarray(pa.array([method] * len(person)) if isinstance(method, str) else method, dtype=object)
    position = np.full(len(ctx.people), -1, dtype=np.int64)
    position[ctx.rows] = np.arange(len(ctx.rows))
    rows = pd.DataFrame({"row": position[person], "election": election, "method": method})
    rows = rows[rows["row"] >= 0]
    pairs = rows[["election", "method"]].drop_duplicates()
    pairs["token"] = [template.format(on=ctx.elections[k].on, label=ctx.elections[k].label, method=m,
                                      code=codes.get(ctx.elections[k].kind, ctx.elections[k].label))
                      for k, m in zip(pairs["election"], pairs["method"])]
    rows = rows.merge(pairs, on=["election", "method"], how="left", sort=False)
    joined = rows.groupby("row", sort=True)["token"].agg(layout.packed_history.wide["separator"].join)
    packed = pd.Series("", index=range(len(ctx.rows)), dtype=object)
    packed[joined.index] = joined.to_numpy()
    counts = np.bincount(rows["row"].to_numpy(), minlength=len(ctx.rows))
    return pa.array(packed.to_numpy(), pa.string()), counts


def slot_history(ctx: DropContext, layout: Layout) -> tuple[dict[str, pa.Array], np.ndarray]:
    """Slot columns of the written voters (slot n = the n-th election, oldest first): the method
    ([synth.history] voting_methods) and, in primaries, the ballot party (through party_map)."""
    synth = layout.synth.get("history", {})
    person, election, u = history_rows(ctx)
    frame = Frame(ctx, person, layout.state.upper(), layout.synth, election=election, u=u, role="history")
    method = np.asarray(evaluate(frame, {"source": "voting_method"}, f"{layout.source.name} slots"), dtype=object)
    party = np.asarray(frame.text("party_first_raw"), dtype=object)
    party = np.array([synth.get("party_map", {}).get(p, p) for p in party], dtype=object)
    position = np.full(len(ctx.people), -1, dtype=np.int64)
    position[ctx.rows] = np.arange(len(ctx.rows))
    row, keep = position[person], position[person] >= 0
    slots = slot_columns(layout.slot_history)
    if len(ctx.elections) > len(slots):
        raise ValueError(f"{layout.source.name}: {len(ctx.elections)} elections, only {len(slots)} slots")
    cells = {}
    for k, election_info in enumerate(ctx.elections):
        hit = keep & (election == k)
        n, method_column, party_column = slots[k]
        values = np.full(len(ctx.rows), "", dtype=object)
        values[row[hit]] = method[hit]
        cells[method_column] = pa.array(values, pa.string())
        if party_column:
            ballots = np.full(len(ctx.rows), "", dtype=object)
            if election_info.kind.endswith("primary"):
                ballots[row[hit]] = party[hit]
            cells[party_column] = pa.array(ballots, pa.string())
    return cells, np.bincount(row[keep], minlength=len(ctx.rows))
