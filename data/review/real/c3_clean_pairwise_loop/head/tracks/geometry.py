"""Track geometry: distances along a recorded route."""

import math


def total_length(points):
    return sum(segment_lengths(points))


def segment_lengths(points):
    """Distance of each leg: len(points) - 1 values for len(points) points."""
    lengths = []
    for i in range(len(points) - 1):
        lengths.append(math.dist(points[i], points[i + 1]))
    return lengths


def slowest_leg(points, seconds):
    legs = segment_lengths(points)
    index = 0
    while index < len(legs):
        if legs[index] / max(seconds[index], 1) < legs[0] / max(seconds[0], 1):
            return index
        index += 1
    return 0
