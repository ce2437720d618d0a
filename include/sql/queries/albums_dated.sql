-- Albums (live or tombstoned) with the album or any of its posts dated in [since, until).
SELECT DISTINCT g.id FROM media_groups g
LEFT JOIN media_group_items i ON i.group_id = g.id
LEFT JOIN posts p ON p.channel_id = g.channel_id AND p.message_id = i.message_id
WHERE (g.posted_at >= %(since)s AND g.posted_at < %(until)s) OR (p.posted_at >= %(since)s AND p.posted_at < %(until)s)
ORDER BY g.id;
