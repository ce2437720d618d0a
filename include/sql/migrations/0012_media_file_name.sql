-- A document's file name as Telegram gives it (DocumentAttributeFilename): the albums view shows
-- it and offers the download under it. Posts stored before this migration have none until
-- Telegram's copy changes (an edit) and the post is written again.
ALTER TABLE posts ADD COLUMN media_file_name text;
