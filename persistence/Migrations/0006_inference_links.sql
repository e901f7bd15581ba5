-- 0006: inference (issue 13). Written by the API only; no foreign key to nodes, because in Kubernetes mode nodes live
-- in DgonNode resources (the mirror lags).

-- The latest verified capability manifest of each node (the hello or manifest frame of its link; a newer issued_at
-- replaces an older one). Read by the dashboard's node detail and by other replicas' routing.
CREATE TABLE node_manifests (
    node_id     text COLLATE "C" PRIMARY KEY CHECK (length(node_id) <= 63),
    manifest    jsonb NOT NULL,
    issued_at   bigint NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- Which API replica holds each node's link, and where other replicas reach it (forwarding). refreshed_at is renewed
-- by the holder every 15 s: a row older than 45 s belongs to a replica that died without removing it.
CREATE TABLE node_links (
    node_id      text COLLATE "C" PRIMARY KEY CHECK (length(node_id) <= 63),
    replica      text NOT NULL CHECK (length(replica) <= 200),
    address      text NOT NULL CHECK (length(address) <= 2048),
    connected_at timestamptz NOT NULL DEFAULT now(),
    refreshed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_node_links_replica ON node_links (replica);
