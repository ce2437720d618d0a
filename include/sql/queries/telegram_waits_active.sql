-- The waits Telegram gave this session that have not ended yet.
SELECT request, until, error, given_at
FROM telegram_waits
WHERE conn_id = %(conn_id)s AND until > %(now)s
ORDER BY request;
