-- A wait Telegram gave the session for a kind of request; the later end wins.
INSERT INTO telegram_waits AS w (conn_id, request, until, error, given_at)
VALUES (%(conn_id)s, %(request)s, %(until)s, %(error)s, %(given_at)s)
ON CONFLICT (conn_id, request) DO UPDATE
SET until = EXCLUDED.until, error = EXCLUDED.error, given_at = EXCLUDED.given_at
WHERE EXCLUDED.until > w.until;
