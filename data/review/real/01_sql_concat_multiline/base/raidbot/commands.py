"""Raid commands for the community bot: look up a gym by name and announce a raid there."""

import logging

log = logging.getLogger(__name__)


class RaidCommands:
    def __init__(self, connection, announcer):
        self.connection = connection
        self.announcer = announcer

    def find_gym(self, name):
        cursor = self.connection.cursor()
        query = ("SELECT id, name FROM gyms "
                 "WHERE name LIKE %s ORDER BY name")
        cursor.execute(query, (name + "%",))
        rows = cursor.fetchall()
        return rows[0] if rows else None

    def announce(self, gym_name, boss, minutes_left):
        gym = self.find_gym(gym_name)
        if gym is None:
            return f"No gym called {gym_name}"
        self.announcer.post(gym[1], boss, minutes_left)
        return f"Raid at {gym[1]} announced"
