from __future__ import annotations

import pytest

from chiploc.common.errors import InputError
from chiploc.common.units import NS_PER_MS, SPEED_OF_LIGHT_KM_PER_MS
from chiploc.protocol import Registry
from chiploc.sim import CASES, FleetScenario, geodesic_km


def test_same_seed_same_world_other_seed_other_keys() -> None:
    a = FleetScenario.generate(seed=3, chips=8, landmarks=6)
    b = FleetScenario.generate(seed=3, chips=8, landmarks=6)
    c = FleetScenario.generate(seed=4, chips=8, landmarks=6)
    assert a == b
    assert a.signed_registry() == b.signed_registry()
    assert a.chips[0].key.public_key != c.chips[0].key.public_key


def test_all_planted_cases_from_five_chips() -> None:
    s = FleetScenario.generate(seed=0, chips=5, landmarks=4)
    assert {c.case for c in s.chips} == set(CASES)
    by_case = {c.case: c for c in s.chips}
    assert by_case["relayed"].expected_spec == "INCONCLUSIVE|VIOLATION"
    assert by_case["clone"].expected_spec == "INCONSISTENT"
    assert by_case["abroad"].expected == {"VIOLATION", "INCONCLUSIVE"}
    assert by_case["inside"].expected == {"COMPLIANT", "INCONCLUSIVE"}
    assert by_case["unenrolled"].expected_spec == "UNREACHABLE"
    assert by_case["unenrolled"].to_json_dict()["enrolled"] is False


def test_registry_is_signed_and_leaves_out_the_unenrolled_chip() -> None:
    s = FleetScenario.generate(seed=1, chips=12, landmarks=16)
    reg = Registry.from_signed_json(
        s.signed_registry(), authority_public_key=s.authority.public_key.key_bytes
    )
    assert set(reg.landmarks) == {lm.id for lm in s.landmarks}
    assert set(reg.chips) == {c.id for c in s.chips if c.enrolled}
    assert any(not c.enrolled for c in s.chips)
    for c in s.chips:
        if c.enrolled:
            assert reg.chip(c.id).region == c.region


def test_default_landmarks_are_mostly_european_with_a_few_elsewhere() -> None:
    s = FleetScenario.generate(seed=0, chips=1, landmarks=16)
    regions = [lm.city.region for lm in s.landmarks]
    assert regions.count("europe") >= 12
    assert "asia" in regions


def test_every_route_is_physically_possible_and_relays_add_delay() -> None:
    s = FleetScenario.generate(seed=2, chips=20, landmarks=10)
    for lm in s.landmarks:
        for chip in s.chips:
            index, route = s.route(lm.id, chip.id)
            answering = chip.locations[index]
            km = geodesic_km(lm.city.lat, lm.city.lon, answering.lat, answering.lon)
            assert route.floor_ns >= km / SPEED_OF_LIGHT_KM_PER_MS * NS_PER_MS
            if chip.proxy is not None:
                assert len(route.hops) == 2
                assert route.hops[0].b == chip.proxy


def test_clone_answers_each_landmark_from_its_nearer_place() -> None:
    s = FleetScenario.generate(seed=0, chips=5, landmarks=4)
    clone = next(c for c in s.chips if c.case == "clone")
    assert s.route("lm-fra", clone.id)[0] == 0  # Frankfurt place
    assert s.route("lm-tyo", clone.id)[0] == 1  # Tokyo place
    near_fra = s.route("lm-fra", clone.id)[1].floor_ns
    near_tyo = s.route("lm-tyo", clone.id)[1].floor_ns
    # Both landmarks see a short RTT: no single point can be that close to both.
    fra, tyo = s.landmarks[0].city, s.landmarks[2].city
    apart_km = geodesic_km(fra.lat, fra.lon, tyo.lat, tyo.lon)
    reach_km = (near_fra + near_tyo) / NS_PER_MS * SPEED_OF_LIGHT_KM_PER_MS
    assert reach_km < apart_km / 4


def test_adding_chips_does_not_change_other_paths() -> None:
    small = FleetScenario.generate(seed=9, chips=3, landmarks=5)
    large = FleetScenario.generate(seed=9, chips=9, landmarks=5)
    for key, value in small.routes.items():
        assert large.routes[key] == value


@pytest.mark.parametrize("kwargs", [{"chips": 0}, {"landmarks": 0}, {"landmarks": 99}])
def test_rejects_bad_sizes(kwargs: dict[str, int]) -> None:
    with pytest.raises(InputError):
        FleetScenario.generate(**kwargs)


def test_lookups_reject_unknown_names() -> None:
    s = FleetScenario.generate(seed=0, chips=2, landmarks=2)
    with pytest.raises(InputError):
        s.chip("nope")
    with pytest.raises(InputError):
        s.route("lm-fra", "nope")


def test_a_misregistered_landmark_moves_in_the_registry_only() -> None:
    """The registry puts lm-par 1,500 km from Paris; the simulation still runs it (and draws
    every path from it) at Paris, and every other landmark is untouched."""
    from pyproj import Geod

    base = FleetScenario.generate(seed=3, chips=4, landmarks=6)
    moved = base.with_landmark_registered_at("lm-par", azimuth_deg=215.0, distance_km=1500.0)
    geod = Geod(ellps="WGS84")
    entry = moved.registry.landmarks["lm-par"]
    paris = next(lm.city for lm in moved.landmarks if lm.id == "lm-par")
    az, _, metres = geod.inv(paris.lon, paris.lat, entry.lon, entry.lat)
    assert metres / 1000 == pytest.approx(1500, abs=0.1)
    assert az % 360 == pytest.approx(215.0, abs=0.01)
    assert moved.misregistered == {"lm-par": (entry.lat, entry.lon)}
    assert moved.routes == base.routes  # no path moves: the registry alone lies
    assert moved.landmarks == base.landmarks
    for lid, e in base.registry.landmarks.items():
        if lid != "lm-par":
            assert moved.registry.landmarks[lid] == e
    assert moved.registry.serial == base.registry.serial + 1
    signed = Registry.from_signed_json(  # the authority signs the lie
        moved.signed_registry(), authority_public_key=moved.authority.public_key.key_bytes
    )
    assert signed.landmarks["lm-par"] == entry
    with pytest.raises(InputError):
        base.with_landmark_registered_at("lm-nowhere", azimuth_deg=0.0, distance_km=10.0)
    with pytest.raises(InputError):
        base.with_landmark_registered_at("lm-par", azimuth_deg=0.0, distance_km=0.0)
