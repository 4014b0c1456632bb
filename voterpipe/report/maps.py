"""Choropleth maps of turnout and registration change by county and by tract, drawn with matplotlib
from the only geometry the report's inputs hold: the geocoded household points (TIGER street-range
interpolation). Area shapes are approximated by nearest point, since the project imports no area
polygons (TIGER faces are read without geometry); the captions say so."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from matplotlib import colormaps
from matplotlib.colors import Normalize, TwoSlopeNorm
from matplotlib.path import Path
from matplotlib.ticker import PercentFormatter

from voterpipe.report.charts import Chart, new_figure
from voterpipe.cohorts.arrays import row_positions
from voterpipe.report.sources import ReportSources, released

TURNOUT_COLOURS = "cividis"  # perceptually uniform and readable with colour-vision deficiencies
CHANGE_COLOURS = "PuOr"  # diverging, colour-blind safe (purple gain, orange loss)
GEOMETRY_NOTE = ("Area shapes are approximated from the geocoded households (each point of the map takes the "
                 "area of its nearest geocoded household, inside their outline): the project imports TIGER "
                 "street ranges for geocoding, not area polygons. Grey: no value.")
NO_GEOMETRY = ("No geometry is imported for this snapshot: no geocoded address has coordinates, "
               "so no map can be drawn. The numbers are in the CSV.")


def household_points(sources: ReportSources) -> pd.DataFrame:
    """One row per matched household: lon, lat, its voters' county_code and tract."""
    voters, points = sources.voter_geography, sources.points
    columns = ["household_id", "lon", "lat", "county_code", "tract"]
    if voters is None or points is None or points.empty:
        return pd.DataFrame(columns=columns)
    # each point's household as the row of its first voter: the roll's ids hashed a value range at a time
    first_voter = row_positions(_text(points["address_key"], combine=False),
                                _text(voters["household_id"], combine=False)).astype(np.int64)
    rows = np.flatnonzero(first_voter >= 0)
    rows = rows[np.argsort(first_voter[rows], kind="stable")]  # households in order of their first voter
    voter_rows = first_voter[rows]
    if len(voter_rows) > 1 and (voter_rows[1:] == voter_rows[:-1]).any():  # a household with several points
        homes = voters[["household_id", "county_code", "tract"]]
        joined = homes.dropna(subset=["household_id"]).drop_duplicates("household_id") \
            .merge(points, left_on="household_id", right_on="address_key", how="inner")
        return joined[columns].reset_index(drop=True)
    # column by column: selecting the three columns first would copy them for every voter
    joined = pd.DataFrame({c: voters[c].iloc[voter_rows].reset_index(drop=True)
                           for c in ("household_id", "county_code", "tract")})
    joined["lon"], joined["lat"] = points["lon"].to_numpy()[rows], points["lat"].to_numpy()[rows]
    return joined[columns]


def _turn(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    """> 0 when a -> b -> c turns counter-clockwise."""
    return float((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))


def convex_hull(xy: np.ndarray) -> np.ndarray:
    """Vertices of the convex hull of points (Andrew's monotone chain), counter-clockwise."""
    pts = np.unique(_hull_candidates(xy), axis=0)
    if len(pts) < 3:
        return pts

    def half(points):
        # Python floats: the same double arithmetic as _turn on numpy scalars, several times faster
        chain: list = []
        for p in points:
            while len(chain) >= 2:
                (ax, ay), (bx, by) = chain[-2], chain[-1]
                if (bx - ax) * (p[1] - ay) - (by - ay) * (p[0] - ax) > 0:
                    break
                chain.pop()
            chain.append(p)
        return chain

    listed = [tuple(p) for p in pts.tolist()]
    lower, upper = half(listed), half(listed[::-1])
    return np.array(lower[:-1] + upper[:-1], dtype=pts.dtype)


def _hull_candidates(xy: np.ndarray) -> np.ndarray:
    """The points not clearly inside the octagon of the extreme points in eight directions: none
    of those inside can be a hull vertex, and dropping them first keeps the Python chain short
    (a state has ~10^5 household points)."""
    if len(xy) < 16:
        return xy
    x, y = xy[:, 0], xy[:, 1]
    # support points by direction, counter-clockwise from the left: a convex polygon inside the hull
    picks = [np.argmin(x), np.argmin(x + y), np.argmin(y), np.argmax(x - y),
             np.argmax(x), np.argmax(x + y), np.argmax(y), np.argmin(x - y)]
    corners = xy[picks]
    span = max(float(np.ptp(x)), float(np.ptp(y)), 1e-12)
    margin = 1e-9 * span * span  # points within rounding of an edge are kept
    inside = np.ones(len(xy), dtype=bool)
    for a, b in zip(corners, np.roll(corners, -1, axis=0)):
        if np.array_equal(a, b):  # two directions share a support point: no edge
            continue
        inside &= (b[0] - a[0]) * (y - a[1]) - (b[1] - a[1]) * (x - a[0]) > margin
    return xy[~inside]


def nearest_area_raster(x: np.ndarray, y: np.ndarray, area: np.ndarray, size: int = 260,
                        sample: int = 3000, seed: int = 0, hull: np.ndarray | None = None):
    """Each cell of a size x size grid over the points takes the area code of its nearest point
    (-1 outside the points' convex hull; pass `hull` when it is known): area shapes approximated
    from points alone. Returns (codes grid, extent). At most `sample` points are used, every area
    keeping some."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    areas = np.unique(area)
    per_area = max(3, sample // max(len(areas), 1))
    ranked = pd.Series(area[order]).groupby(area[order]).cumcount().to_numpy()
    keep = order[ranked < per_area]
    px, py, pa = x[keep], y[keep], area[keep]
    x0, x1, y0, y1 = x.min(), x.max(), y.min(), y.max()
    pad = 0.02 * max(x1 - x0, y1 - y0, 1e-3)
    x0, x1, y0, y1 = x0 - pad, x1 + pad, y0 - pad, y1 + pad
    grid_x, grid_y = np.linspace(x0, x1, size), np.linspace(y0, y1, size)
    # squared distance = dx^2 + dy^2; a row of cells shares dy, a column dx, so each is squared once
    dx2 = (grid_x[:, None] - px[None, :]) ** 2
    dy2 = (grid_y[:, None] - py[None, :]) ** 2
    codes = np.empty((size, size), dtype=np.int64)
    distance = np.empty_like(dx2)
    for row in range(size):
        np.add(dx2, dy2[row], out=distance)
        codes[row] = pa[np.argmin(distance, axis=1)]
    codes = codes.ravel()
    hull = convex_hull(np.column_stack([x, y])) if hull is None else hull
    if len(hull) >= 3:
        gx, gy = np.meshgrid(grid_x, grid_y)
        inside = Path(np.vstack([hull, hull[:1]])).contains_points(np.column_stack([gx.ravel(), gy.ravel()]),
                                                                   radius=pad)
        codes[~inside] = -1
    return codes.reshape(size, size), (x0, x1, y0, y1)


def _sorted_names(names: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(names, return_inverse=True), sorting only the distinct names."""
    codes, distinct = pd.factorize(names)
    distinct = np.asarray(distinct, dtype=object)
    order = np.argsort(distinct, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return distinct[order], rank[codes]


class AreaRasters:
    """The nearest-area grid of each area key over one set of household points, drawn once: the
    turnout and change maps of a level share it, and every map the points' convex hull."""

    def __init__(self, points: pd.DataFrame):
        self.points = points
        self._hull: np.ndarray | None = None
        self._grids: dict[str, tuple] = {}

    def grid(self, key: str) -> tuple[np.ndarray, np.ndarray, tuple]:
        """(the areas' names, their codes grid, extent) for area key `key`."""
        if key not in self._grids:
            areas, area_codes = _sorted_names(self.points[key].astype(str).to_numpy())
            x, y = self.points["lon"].to_numpy(float), self.points["lat"].to_numpy(float)
            if self._hull is None:
                self._hull = convex_hull(np.column_stack([x, y]))
            self._grids[key] = (areas, *nearest_area_raster(x, y, area_codes, hull=self._hull))
        return self._grids[key]


def _draw(points: pd.DataFrame, key: str, values: pd.Series, title: str, label: str, diverging: bool,
          names: pd.Series | None = None, rasters: AreaRasters | None = None):
    """Areas coloured by value (nearest-point raster); colour bar outside the map, right."""
    areas, grid, extent = (rasters or AreaRasters(points)).grid(key)
    area_values = values.reindex(areas).to_numpy(dtype=float)
    stretch = 1 / max(np.cos(np.radians(float(points["lat"].mean()))), 0.1)  # degrees of longitude shrink northwards
    ratio = (extent[1] - extent[0]) / max((extent[3] - extent[2]) * stretch, 1e-9)
    fig, ax = new_figure((float(np.clip(6.5 * ratio, 3.5, 8.5)) + 2.2, 7))
    image = np.where(grid >= 0, area_values[np.clip(grid, 0, None)], np.nan)
    finite = area_values[np.isfinite(area_values)]
    top = float(np.abs(finite).max()) if len(finite) else 1.0
    if diverging:
        norm = TwoSlopeNorm(vcenter=0.0, vmin=-(top or 0.01), vmax=top or 0.01)
    else:
        low, high = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
        norm = Normalize(vmin=low, vmax=high if high > low else low + 0.01)
    cmap = colormaps[CHANGE_COLOURS if diverging else TURNOUT_COLOURS].with_extremes(bad="#f0f0f0")
    shown = ax.imshow(image, origin="lower", extent=extent, cmap=cmap, norm=norm, interpolation="nearest")
    if len(areas) > 1:  # area borders: where the nearest area changes
        ax.contour(np.linspace(*extent[:2], grid.shape[1]), np.linspace(*extent[2:], grid.shape[0]), grid,
                   levels=np.arange(-0.5, len(areas)), colors="white", linewidths=0.4)
    if len(areas) <= (30 if names is not None else 8):  # codes of many tracts would cover each other
        xs = np.linspace(*extent[:2], grid.shape[1])[None, :].repeat(grid.shape[0], 0)
        ys = np.linspace(*extent[2:], grid.shape[0])[:, None].repeat(grid.shape[1], 1)
        inside = grid >= 0
        centres = pd.DataFrame({"code": grid[inside], "lon": xs[inside], "lat": ys[inside]}).groupby("code").mean()
        for code, (lon, lat) in centres.iterrows():  # label at the middle of the area's cells
            name = areas[code] if names is None else (names.get(areas[code]) or areas[code])
            ax.annotate(str(name), (lon, lat), ha="center", va="center", fontsize=7,
                        bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8))
    bar = fig.colorbar(shown, ax=ax, shrink=0.8, pad=0.02)
    bar.set_label(label)
    bar.ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
    ax.set_aspect(stretch)
    ax.set_xlabel("Longitude (degrees)")
    ax.set_ylabel("Latitude (degrees)")
    fig.suptitle(title, fontsize=11)
    return fig


def _area_map(points: pd.DataFrame, key: str, table: pd.DataFrame, column: str, slug: str, title: str,
              caption: str, label: str, diverging: bool = False, rasters: AreaRasters | None = None) -> Chart:
    data = table.copy()
    counts = points.groupby(key).size().rename("geocoded_households")
    data["geocoded_households"] = data[key].map(counts).fillna(0).astype(np.int64)
    if points.empty:
        return Chart(slug, title, caption + " " + NO_GEOMETRY, data)
    by_area = table.assign(**{key: table[key].astype(str)}).set_index(key)
    names = by_area["county_name"] if "county_name" in by_area else None
    fig = _draw(points, key, by_area[column], title, label, diverging, names, rasters)
    return Chart(slug, title, caption, data, fig,
                 alt=f"Map: {title}. Each area is coloured by its {label.lower()}; values range from {data[column].min():.1%} to {data[column].max():.1%}.")


def county_change(sources: ReportSources, county: pd.DataFrame) -> pd.DataFrame | None:
    """New registrants, removals and net change by county since the previous snapshot."""
    transitions = sources.transitions
    if transitions is None:
        return None
    rows = transitions[transitions["dimension"] == "county_code"]
    pivot = rows.pivot_table(index="cohort", columns="change", values="voters", aggfunc="sum", fill_value=0)
    data = county[[c for c in ("county_code", "county_name", "registered") if c in county]].copy()
    for change in ("new_registrant", "removed"):
        data[change] = data["county_code"].map(pivot[change] if change in pivot else {}).fillna(0).astype(np.int64)
    data["net_change"] = data["new_registrant"] - data["removed"]
    previous = data["registered"] - data["net_change"]
    data["change_share"] = data["net_change"] / previous.where(previous > 0)
    return data


def tract_change(sources: ReportSources, tract: pd.DataFrame, changes: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """New registrants and removals by tract, as county_change does by county, and how many of each
    could not be placed. New registrants take this snapshot's tract; removed voters the tract this
    snapshot's geocodes give their previous address key (known only where the address is still
    on the roll)."""
    voters, previous, homes = sources.voter_geography, sources.previous_roll, sources.tracts_by_address
    data = tract[[c for c in ("tract", "registered") if c in tract]].copy()
    data["tract"] = data["tract"].astype(str)
    unplaced = {}
    for change in ("new_registrant", "removed"):
        ids = changes.loc[changes["change"] == change, "voter_id"]
        if change == "new_registrant":  # this snapshot's tract of the voter
            where = _first_match(ids, voters["voter_id"], voters["tract"])
        else:  # the tract this snapshot's geocodes give the voter's previous address key
            where = _first_match(pd.Series(_first_match(ids, previous["voter_id"], previous["household_id"])),
                                 homes["address_key"], homes["tract"])
        placed = pd.Series(where, index=ids.to_numpy()).dropna().astype(str)
        placed = placed[placed.isin(data["tract"])]
        data[change] = data["tract"].map(placed.value_counts()).fillna(0).astype(np.int64)
        unplaced[change] = (len(ids) - len(placed), len(ids))
    data["net_change"] = data["new_registrant"] - data["removed"]
    previous = data["registered"] - data["net_change"]
    data["change_share"] = data["net_change"] / previous.where(previous > 0)
    return data, unplaced


def _first_match(probe: pd.Series, keys: pd.Series, values: pd.Series) -> np.ndarray:
    """values at the first row of each probe value in keys (None where absent), as objects: what
    reindexing values by keys, after drop_duplicates, gives for only the probed keys."""
    # the probe is short and the keys a roll: hash the distinct probe values, not the keys
    probed = pc.dictionary_encode(_text(probe))
    hits = pc.index_in(_text(keys, combine=False), value_set=probed.dictionary, skip_nulls=True)
    key_rows = np.flatnonzero(pc.is_valid(hits).to_numpy(zero_copy_only=False))
    found, first = np.unique(pc.drop_null(hits).to_numpy(), return_index=True)  # each value's first key row
    row_of_value = np.full(len(probed.dictionary), -1, dtype=np.int64)
    row_of_value[found] = key_rows[first]
    row = row_of_value[pc.fill_null(probed.indices, 0).to_numpy()]
    row[~pc.is_valid(probed.indices).to_numpy(zero_copy_only=False)] = -1  # a null probe matches nothing
    rows = pa.array(row, mask=row < 0)
    taken = pa.array(values, from_pandas=True).take(rows)
    if pa.types.is_dictionary(taken.type):
        taken = taken.dictionary_decode()
    return taken.to_numpy(zero_copy_only=False)


def _text(values: pd.Series, combine: bool = True) -> pa.Array | pa.ChunkedArray:
    """Large strings (as Arrow-backed str columns hold them: no copy); `combine`: one array."""
    array = pa.array(values, from_pandas=True)
    if isinstance(array, pa.ChunkedArray) and (combine or pa.types.is_dictionary(array.type)):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    return array.cast(pa.large_string())


def _tract_change_caption(unplaced: dict) -> str:
    (new_left, new_all), (removed_left, removed_all) = unplaced["new_registrant"], unplaced["removed"]

    def share(part: int, whole: int) -> str:
        return f"{part:,} of {whole:,}" + (f" ({part / whole:.1%})" if whole else "")

    return ("Approximation. Net change = new registrants - removed voters (moves are not counted, as on the county "
            "map), as a share of the tract's voters before them. New registrants are placed by this snapshot's "
            "geocode of their address; removed voters by this snapshot's geocode of their previous address key, "
            "which exists only while a voter on this roll still lives there. Not placed, so left out: "
            f"{share(removed_left, removed_all)} removed voters (tracts where they lived read high) and "
            f"{share(new_left, new_all)} new registrants (no geocode). ")


def map_charts(sources: ReportSources, tables: dict[str, pd.DataFrame], last_general,
               changes: pd.DataFrame | None = None, points: pd.DataFrame | None = None) -> list[Chart]:
    """Turnout in the last general by county and by tract; registration change by county and by
    tract (`changes`: report/changes.voter_changes against the previous snapshot, or None;
    `points`: household_points(sources), when already made)."""
    points = released(household_points)(sources) if points is None else points
    rasters = AreaRasters(points)
    state = sources.state.upper()
    charts = []
    turnout = f"turnout_{last_general}" if last_general else None
    for level, key, slug in (("county", "county_code", "30_map_turnout_by_county"),
                             ("tract", "tract", "31_map_turnout_by_tract")):
        title = f"Turnout in the general election of {last_general or '(none)'} by {level}, {state}"
        caption = (f"Share of registered voters who voted, by {level}. " + GEOMETRY_NOTE)
        table = tables.get(level)
        if turnout is None or table is None or turnout not in table:
            charts.append(Chart(slug, title, caption + " No general election in the vote history.",
                                pd.DataFrame(columns=[key, "turnout"])))
            continue
        charts.append(_area_map(points, key, table, turnout, slug, title, caption, "Turnout (%)", rasters=rasters))
    title = f"Registration change since the previous snapshot by county, {state}"
    caption = ("Net change = new registrants - removed voters, as a share of the county's voters at the previous "
               "snapshot. " + GEOMETRY_NOTE)
    change = county_change(sources, tables["county"]) if "county" in tables else None
    if change is None:
        charts.append(Chart("32_map_registration_change_by_county", title,
                            caption + " No earlier snapshot of this state has been processed.",
                            pd.DataFrame(columns=["county_code", "change_share"])))
    else:
        charts.append(_area_map(points, "county_code", change, "change_share", "32_map_registration_change_by_county",
                                title, caption, "Net registration change (%)", diverging=True, rasters=rasters))
    charts.append(_tract_change_map(sources, points, tables.get("tract"), changes, rasters))
    return charts


def _tract_change_map(sources: ReportSources, points: pd.DataFrame, tract: pd.DataFrame | None,
                      changes: pd.DataFrame | None, rasters: AreaRasters | None = None) -> Chart:
    slug, title = "33_map_registration_change_by_tract", \
        f"Registration change since the previous snapshot by tract, {sources.state.upper()}"
    empty = pd.DataFrame(columns=["tract", "change_share"])
    if changes is None or sources.previous_roll is None:
        return Chart(slug, title, "No earlier snapshot of this state has been processed.", empty)
    if tract is None or sources.tracts_by_address is None:
        return Chart(slug, title, "No voter of this snapshot has a census tract (no address geocoded).", empty)
    data, unplaced = tract_change(sources, tract, changes)
    return _area_map(points, "tract", data, "change_share", slug, title,
                     _tract_change_caption(unplaced) + GEOMETRY_NOTE, "Net registration change (%)", diverging=True,
                     rasters=rasters)
