"""Edge geometry of the TIGER engine: where house number n lies along its edge, and 10 m to its side.

Follows PostGIS interpolate_from_address: the fraction of the edge's length from FROMHN (at the
start vertex), then a perpendicular offset to the matched side.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SIDE_OFFSET_METRES = 10.0


class EdgeGeometry:
    """Every edge's vertices laid end to end, so one searchsorted finds the segment of a point."""

    def __init__(self, vertices: pd.DataFrame):
        """`vertices`: geom (edge geometry number), x, y in vertex order."""
        vertices = vertices.sort_values("geom", kind="stable")
        geom = vertices["geom"].to_numpy(np.int64)
        x, y = vertices["x"].to_numpy(np.float64), vertices["y"].to_numpy(np.float64)
        n_geom = int(geom.max()) + 1 if len(geom) else 0
        start = np.full(n_geom, -1, dtype=np.int64)
        count = np.bincount(geom, minlength=n_geom).astype(np.int64)
        first = np.r_[True, geom[1:] != geom[:-1]] if len(geom) else np.zeros(0, bool)
        start[geom[first]] = np.flatnonzero(first)
        metres_x = 111_320.0 * np.cos(np.radians(y))
        seg = np.zeros(len(x))
        if len(x) > 1:
            same = geom[1:] == geom[:-1]
            step = np.hypot(np.diff(x) * metres_x[1:], np.diff(y) * 110_540.0)
            seg[1:] = np.where(same, step, 0.0)
        cumulative = np.cumsum(seg)
        # Lay geometries end to end with a 1 m gap so positions of different edges never tie.
        geom_start_cum = np.zeros(n_geom)
        geom_start_cum[start >= 0] = cumulative[start[start >= 0]]
        local = cumulative - geom_start_cum[geom]
        length = np.zeros(n_geom)
        np.maximum.at(length, geom, local)
        base = np.r_[0.0, np.cumsum(length + 1.0)[:-1]]
        self._vx, self._vy = x, y
        self._g_start, self._g_count, self._g_length, self._g_base = start, count, length, base
        self._v_position = base[geom] + local

    def interpolate(self, geom: np.ndarray, frm: np.ndarray, to: np.ndarray, is_left: np.ndarray,
                    number: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """PostGIS interpolate_from_address: fraction of length from FROMHN, 10 m to the side."""
        width = np.maximum(np.abs(to - frm), 1)
        fraction = (number - np.minimum(frm, to)) / width
        fraction = np.where(frm > to, 1.0 - fraction, fraction)
        fraction = np.where((fraction < 0) | (fraction > 1), 0.5, fraction)
        start, count = self._g_start[geom], self._g_count[geom]
        target = self._g_base[geom] + fraction * self._g_length[geom]
        k = np.searchsorted(self._v_position, target, side="right") - 1
        k = np.clip(k, start, start + np.maximum(count - 2, 0))
        k1 = np.minimum(k + 1, start + count - 1)
        x0, y0, x1, y1 = self._vx[k], self._vy[k], self._vx[k1], self._vy[k1]
        seg_len = self._v_position[k1] - self._v_position[k]
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.where(seg_len > 0, (target - self._v_position[k]) / seg_len, 0.0)
        t = np.clip(t, 0.0, 1.0)
        lon, lat = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
        metres_x = 111_320.0 * np.cos(np.radians(lat))
        dx_m, dy_m = (x1 - x0) * metres_x, (y1 - y0) * 110_540.0
        norm = np.hypot(dx_m, dy_m)
        sign = np.where(is_left, 1.0, -1.0)  # left of travel = rotate +90 degrees
        with np.errstate(invalid="ignore", divide="ignore"):
            offset_lon = np.where(norm > 0, -dy_m / norm, 0.0) * SIDE_OFFSET_METRES * sign / metres_x
            offset_lat = np.where(norm > 0, dx_m / norm, 0.0) * SIDE_OFFSET_METRES * sign / 110_540.0
        return lon + offset_lon, lat + offset_lat
