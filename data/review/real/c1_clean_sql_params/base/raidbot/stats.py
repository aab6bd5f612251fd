"""Raid statistics for the bot's weekly post."""


def raids_per_gym(connection, since):
    cursor = connection.cursor()
    cursor.execute("SELECT gym_id, COUNT(*) FROM raids WHERE started_at >= %s GROUP BY gym_id", (since,))
    return dict(cursor.fetchall())
