"""Track geometry: distances along a recorded route."""

import math


def total_length(points):
    total = 0.0
    for a, b in zip(points, points[1:]):
        total += math.dist(a, b)
    return total
