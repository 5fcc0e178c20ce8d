"""The accuracy interval and the paired test behind "is the new model better?", checked
against scipy's implementations of the same statistics."""

from __future__ import annotations

import numpy as np
import pytest

from fer_tools.metrics import mcnemar, report, wilson

stats = pytest.importorskip("scipy.stats", reason="scipy comes with scikit-image (test extra)")


@pytest.mark.parametrize("k, n", [(2344, 3589), (0, 50), (50, 50), (7, 13), (1, 3589)])
def test_wilson_matches_scipy(k, n):
    ci = stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
    assert wilson(k, n) == pytest.approx((ci.low, ci.high), abs=1e-5)


@pytest.mark.parametrize("a_only, b_only", [(40, 25), (0, 0), (3, 0), (120, 121), (10, 30)])
def test_mcnemar_matches_an_exact_binomial_test(a_only, b_only):
    both, neither = 2000, 900
    a = np.array([True] * both + [True] * a_only + [False] * b_only + [False] * neither)
    b = np.array([True] * both + [False] * a_only + [True] * b_only + [False] * neither)
    r = mcnemar(a, b)
    assert (r["a_only"], r["b_only"], r["both_right"]) == (a_only, b_only, both)
    want = stats.binomtest(a_only, a_only + b_only, 0.5).pvalue if a_only + b_only else 1.0
    assert r["p_value"] == pytest.approx(want, rel=1e-9)
    assert r["difference"] == pytest.approx((a_only - b_only) / a.size)


def test_report_carries_the_interval():
    y = np.repeat(np.arange(7), 10)
    pred = y.copy()
    pred[:14] = 6  # classes 0 and 1 all called 6: 14 wrong of 70
    rep = report(y, pred, tuple("abcdefg"))
    lo, hi = rep["accuracy_ci95"]
    assert lo < rep["accuracy"] < hi and (lo, hi) == wilson(56, 70)
