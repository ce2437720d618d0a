-- Every session wait that has not ended (channels list shows them).
SELECT conn_id, request, until, error, given_at
FROM telegram_waits
WHERE until > now()
ORDER BY conn_id, request;
