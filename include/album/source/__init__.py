"""Telegram: the Telethon client every task uses (live or archive transport), reading messages, recording."""
