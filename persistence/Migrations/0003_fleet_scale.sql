-- 0003: fleet scale (issue 11): heartbeats are accepted from memory and written behind in batches.

-- The API replica whose memory currently holds the node's replay clock (its in-memory value may be ahead of last_ts
-- by up to one flush interval). Written only by the API: a replica claims a node with one conditional statement when
-- the node's first request reaches it, and every other replica then stops accepting that node's requests from memory.
ALTER TABLE node_request_clock ADD COLUMN holder text NULL CHECK (holder IS NULL OR length(holder) <= 200);
