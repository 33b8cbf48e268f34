"""The landmark CSV of the coverage map."""

from __future__ import annotations

import pytest

from chiploc.common.errors import MeasurementError
from chiploc.maps import CoverageLandmark, read_landmarks_csv


def test_reads_rows_and_ignores_extra_columns() -> None:
    text = "landmark,lat,lon,operator\nfra,50.11,8.68,x\nber,52.52,13.40,y\n"
    assert read_landmarks_csv(text) == (
        CoverageLandmark(id="fra", lat=50.11, lon=8.68),
        CoverageLandmark(id="ber", lat=52.52, lon=13.40),
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("id,lat,lon\nfra,50,8\n", "bad_header"),
        ("landmark,lat,lon\nfra,north,8\n", "bad_coordinates"),
        ("landmark,lat,lon\nfra,50,inf\n", "bad_coordinates"),
        ("landmark,lat,lon\nfra,95,8\n", "bad_landmark"),
        ("landmark,lat,lon\n,50,8\n", "bad_landmark"),
        ("landmark,lat,lon\nfra,50,8\nfra,51,9\n", "duplicate_landmark"),
        ("landmark,lat,lon\n", "no_landmarks"),
    ],
)
def test_bad_csv_names_the_line(text: str, reason: str) -> None:
    with pytest.raises(MeasurementError) as info:
        read_landmarks_csv(text, source="lm.csv")
    assert info.value.reason == reason
    assert "lm.csv" in str(info.value)
