from shop.pricing import apply_discount, paginate, tier_price


def test_discount():
    assert apply_discount(1000, 15) == 850


def test_tier_price():
    assert tier_price([(1, 100), (10, 90)], 12) == 1080


def test_paginate():
    assert paginate(list(range(45)), 3, 20) == [40, 41, 42, 43, 44]
