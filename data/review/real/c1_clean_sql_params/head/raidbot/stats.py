"""Raid statistics for the bot's weekly post."""


def raids_per_gym(connection, since, boss=None):
    """Raids per gym since a date, optionally only those of one boss."""
    cursor = connection.cursor()
    query = ("SELECT gym_id, COUNT(*) FROM raids "
             "WHERE started_at >= %s AND (%s IS NULL OR boss = %s) "
             "GROUP BY gym_id")
    cursor.execute(query, (since, boss, boss))
    return dict(cursor.fetchall())
