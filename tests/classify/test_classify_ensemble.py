"""The ensemble (the default classifier): calibration, averaging, members that apply."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ecgscan.classify import (
    DEFAULT_MODEL,
    EnsembleClassifier,
    ImageClassifier,
    SignalClassifier,
    classify,
    get_model_spec,
    load_classifier,
)
from ecgscan.classify._ensemble import (
    apply_platt,
    apply_rate_rule,
    choose_member_weight,
    combine,
    fit_platt,
    fit_rate_rule,
)
from ecgscan.classify._signal import prepare_record
from ecgscan.classify._trees import BeatTrees
from ecgscan.data import Record
from ecgscan.data.beats import BEAT_FEATURES, beat_features, heart_rates
from ecgscan.data.labels import CHALLENGE_LABELS
from ecgscan.data.ptbxl import PTBXL
from ecgscan.errors import EcgscanError


@pytest.fixture(scope="module")
def records(ptbxl_dir: Path) -> list[Record]:
    db = PTBXL(ptbxl_dir)
    return [db.record(e) for e in db.ecg_ids(folds=[9])[:4]]


@pytest.fixture(scope="module")
def ensemble() -> EnsembleClassifier:
    clf = load_classifier("ensemble")
    assert isinstance(clf, EnsembleClassifier)
    return clf


def test_platt_scaling_recovers_a_known_miscalibration() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0.02, 0.98, (20000, 2))
    z = np.log(p / (1 - p))
    true = 1 / (1 + np.exp(-(np.array([2.0, 0.5]) * z + np.array([-0.5, 1.0]))))
    y = rng.uniform(size=p.shape) < true
    a, b = fit_platt(y, p)
    np.testing.assert_allclose(a, [2.0, 0.5], atol=0.1)
    np.testing.assert_allclose(b, [-0.5, 1.0], atol=0.1)
    cal = apply_platt(p, a, b)
    assert np.abs(cal - true).mean() < 0.02
    # a constant class keeps the identity
    a1, b1 = fit_platt(np.zeros((10, 1)), np.full((10, 1), 0.3))
    assert (a1[0], b1[0]) == (1.0, 0.0)


def test_combine_is_a_weighted_mean_and_checks_weights() -> None:
    p1, p2 = np.array([[0.2, 0.8]]), np.array([[0.6, 0.4]])
    np.testing.assert_allclose(combine([p1, p2], [3.0, 1.0]), [[0.3, 0.7]])
    with pytest.raises(EcgscanError, match="weights must be >= 0"):
        combine([p1, p2], [1.0, -1.0])
    y = np.array([[1], [0], [1], [0]])
    w, scores = choose_member_weight([y], [np.array([[0.6], [0.4], [0.4], [0.6]])],
                                     [np.array([[0.9], [0.1], [0.8], [0.2]])])  # fmt: skip
    assert w > 0 and max(scores) == 1.0


def test_ensemble_is_the_default_and_lists_its_members(ensemble: EnsembleClassifier) -> None:
    assert DEFAULT_MODEL == "ensemble"
    spec = get_model_spec("ensemble")
    assert spec.input == "ensemble"
    names = [m.name for m in ensemble.members]
    assert names and set(names) <= set(spec.members)
    assert "signal" in names
    assert len(ensemble.weights) == len(names) and all(w >= 0 for w in ensemble.weights)
    card = Path(ensemble.path).with_name("MODEL_CARD_ensemble.md").read_text()
    for name in names:
        assert f"`{name}`" in card
    assert "Platt" in card
    assert "signal" in ensemble.thresholds


def test_a_record_uses_the_signal_members_with_the_card_s_rule(
    ensemble: EnsembleClassifier, records: list[Record]
) -> None:
    rec = records[0]
    pred = classify(rec)
    assert pred.model == "ensemble"
    signal_members = [m for m in ensemble.members if isinstance(m, SignalClassifier)]
    assert pred.members == tuple(m.name for m in signal_members)
    assert all(0.0 <= v <= 1.0 for v in pred.probabilities.values())
    assert all(0.0 <= v <= 1.0 for v in pred.superclass_probabilities.values())
    # recompute: Platt-calibrate each signal member's output with the JSON's (a, b), then the
    # weighted mean over the signal members with each head's weights, as the model card states
    config = json.loads(Path(ensemble.path).read_text())
    for head, names, got in (
        ("challenge", CHALLENGE_LABELS, pred.probabilities),
        ("superclass", ensemble.heads["superclass"], pred.superclass_probabilities),
    ):
        num, den = np.zeros(len(names)), 0.0
        for entry, member in zip(config["members"], ensemble.members, strict=True):
            if not isinstance(member, SignalClassifier) or entry["weight"] <= 0:
                continue
            w = entry.get("head_weights", {}).get(head, entry["weight"])
            raw = member.predict_proba([rec])[head][0].astype(np.float64)
            cal = entry["calibration"][head]
            z = np.log(np.clip(raw, 1e-6, 1 - 1e-6) / np.clip(1 - raw, 1e-6, 1))
            num += w / (1 + np.exp(-(np.asarray(cal["a"]) * z + np.asarray(cal["b"]))))
            den += w
        expected = num / den
        if head == "challenge":  # the rate rule on the measured heart rate
            assert pred.heart_rate is not None and 30 < pred.heart_rate < 200
            for name, r in config["rate"].items():
                k = list(names).index(name)
                a, c, b = r["coef"]
                hr = pred.heart_rate
                beyond = hr < r["limit"] if r["side"] == "below" else hr > r["limit"]
                z = np.log(expected[k] / (1 - expected[k]))
                expected[k] = 1 / (1 + np.exp(-(a * z + c * beyond + b)))
        if "trees" in config:  # then the beat trees' probability, stacked per label
            trees = BeatTrees(Path(ensemble.path).parent / config["trees"]["file"])
            x = prepare_record(rec, fs=100.0).signal[None]
            g = trees.predict_proba(beat_features(x, fs=100.0))[0]
            key, prefix = (
                ("stack", "") if head == "challenge" else ("superclass_stack", "superclass:")
            )
            for name, (a, c, b) in config["trees"].get(key, {}).items():
                k = list(names).index(name)
                z = np.log(expected[k] / (1 - expected[k]))
                gk = g[trees.labels.index(prefix + name)]
                expected[k] = 1 / (1 + np.exp(-(a * z + c * np.log(gk / (1 - gk)) + b)))
        np.testing.assert_allclose([got[n] for n in names], expected, atol=2e-5)
    assert [pred.thresholds[n] for n in CHALLENGE_LABELS] == pytest.approx(
        config["thresholds"]["signal"]["challenge"], abs=1e-6
    )


def test_an_image_uses_every_member_that_applies(ensemble: EnsembleClassifier) -> None:
    import importlib

    from _shared import shared_path

    if not hasattr(importlib.import_module("ecgscan.digitize"), "digitize"):
        pytest.skip("ecgscan.digitize.digitize is not available yet")
    page = shared_path("images", "eik-dev", "A_clean", "00017_hr-0.png")
    pred = classify(page)
    used = {m.name for m, w in zip(ensemble.members, ensemble.weights, strict=True) if w > 0}
    assert set(pred.members) == used
    assert pred.record == "00017_hr-0"
    assert all(0.0 <= v <= 1.0 for v in pred.probabilities.values())
    image_members = [m for m in ensemble.members if isinstance(m, ImageClassifier)]
    if image_members:  # the image model alone reads the page without digitizing it
        alone = classify(page, model=image_members[0].name)
        assert alone.members == () and alone.model == image_members[0].name
        assert set(alone.probabilities) == set(CHALLENGE_LABELS)


def test_an_image_model_refuses_a_record(records: list[Record]) -> None:
    spec = get_model_spec("image")
    assert spec.input == "image"
    path = Path(str(load_classifier("signal").path)).with_name(spec.weights or "")
    if not path.is_file():
        pytest.skip("the image model is not shipped")
    with pytest.raises(EcgscanError, match="reads page images"):
        classify(records[0], model="image")


def test_a_model_without_weights_says_how_to_train_it() -> None:
    from ecgscan.classify import ModelSpec, register_model

    spec = get_model_spec("signal-small")
    register_model(ModelSpec("untrained-example", "signal", "test", spec.builder), replace=True)
    with pytest.raises(EcgscanError, match="ships no trained weights"):
        load_classifier("untrained-example")


def test_a_broken_ensemble_file_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "ensemble.json"
    bad.write_text(json.dumps({"members": []}))
    with pytest.raises(EcgscanError, match="not an ecgscan ensemble file"):
        load_classifier(bad)


def test_heart_rates_are_measured_from_the_beats() -> None:
    from ecgscan.data.synthetic import synthetic_ecg

    rates = (42.0, 75.0, 130.0)
    sig = np.stack([synthetic_ecg(fs=100, duration=10, heart_rate=r, seed=1).signal.T
                    for r in rates])  # fmt: skip
    np.testing.assert_allclose(heart_rates(sig, fs=100), rates, atol=3)
    # a 3x4 page's leads known in 2.5-s windows only: still the same rate
    page = sig.copy()
    for lead in range(12):
        col = min(lead // 3, 3)
        page[:, lead, : col * 250] = np.nan
        page[:, lead, (col + 1) * 250 :] = np.nan
    np.testing.assert_allclose(heart_rates(page, fs=100), rates, atol=3)
    assert np.isnan(heart_rates(np.full((1, 12, 1000), np.nan), fs=100)[0])  # no beats


def test_the_rate_rule_learns_a_rate_limit_and_keeps_unknown_rates() -> None:
    rng = np.random.default_rng(1)
    n = 4000
    hr = rng.uniform(35, 140, n)
    y = np.stack([(hr < 50) & (rng.uniform(size=n) < 0.9), hr > 103], axis=1).astype(float)
    p = np.clip(0.3 + 0.2 * y + rng.normal(0, 0.15, (n, 2)), 0.01, 0.99)  # weakly informative
    rule = fit_rate_rule(y, p, hr, ["BRADY", "TACHY"])
    assert rule["BRADY"]["side"] == "below" and rule["BRADY"]["limit"] == 50
    assert rule["TACHY"]["side"] == "above" and rule["TACHY"]["limit"] == 105
    assert rule["BRADY"]["coef"][1] > 2 and rule["TACHY"]["coef"][1] > 2
    refined = apply_rate_rule(p, hr, rule, ["BRADY", "TACHY"])
    assert refined[hr < 50, 0].mean() > 0.7 > 0.1 > refined[hr > 55, 0].mean()
    # an unknown rate gets the recalibration only, not the limit's term
    unknown = apply_rate_rule(p[:1], [np.nan], rule, ["BRADY", "TACHY"])
    a, _, b = rule["BRADY"]["coef"]
    z = np.log(p[0, 0] / (1 - p[0, 0]))
    assert unknown[0, 0] == pytest.approx(1 / (1 + np.exp(-(a * z + b))))
    with pytest.raises(EcgscanError, match="shape"):
        fit_rate_rule(y, p, hr[:-1], ["BRADY", "TACHY"])


def test_a_slowed_or_quickened_record_is_called_brady_or_tachy(
    ensemble: EnsembleClassifier, records: list[Record]
) -> None:
    for rec in records[:2]:  # sinus rhythm at 74 and 62 bpm
        pred = classify(rec)
        assert pred.heart_rate is not None and 55 < pred.heart_rate < 90
        assert not {"BRADY", "TACHY"} & set(pred.labels)
        # the same beats, drawn slower or faster: only the time axis changes
        for bpm, label in ((40.0, "BRADY"), (130.0, "TACHY")):
            moved = Record(rec.signal, fs=rec.fs * bpm / pred.heart_rate, leads=rec.leads)
            got = classify(moved)
            assert got.heart_rate == pytest.approx(bpm, rel=0.03)  # RR in 10-ms steps
            assert label in got.labels
    # the rule is what lifts BRADY at 40 bpm: the same members' outputs with no known rate
    slow = Record(records[0].signal, fs=records[0].fs * 40 / 74.1, leads=records[0].leads)
    raw = {i: m.predict_proba([slow]) for i, m in enumerate(ensemble.members)
           if isinstance(m, SignalClassifier) and ensemble.weights[i] > 0}  # fmt: skip
    k = CHALLENGE_LABELS.index("BRADY")
    feats = beat_features(prepare_record(slow, fs=100.0).signal[None], fs=100.0)
    assert feats[0, BEAT_FEATURES.index("heart_rate")] == pytest.approx(40.0, rel=0.03)
    blind = feats.copy()
    blind[0, BEAT_FEATURES.index("heart_rate")] = np.nan
    known = ensemble.combine_member_probabilities(raw, features=feats)[0]["challenge"][0, k]
    unknown = ensemble.combine_member_probabilities(raw, features=blind)[0]["challenge"][0, k]
    assert known > unknown + 0.2
    with pytest.raises(EcgscanError, match="heart rates|beat features"):
        ensemble.combine_member_probabilities(raw)
