-- 0001: seed 000 data model (nodes, node_secrets, receipts) plus what the v1 API needs.
CREATE TABLE nodes (
    id              text COLLATE "C" PRIMARY KEY CHECK (id ~ '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' AND length(id) <= 63),
    region          text NOT NULL CHECK (length(region) BETWEEN 1 AND 63),
    runtime         text NOT NULL CHECK (runtime IN ('ollama', 'vllm', 'tensorrtllm', 'tgi')),
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'active', 'offline', 'quarantine')),
    reputation      double precision NOT NULL DEFAULT 60 CHECK (reputation BETWEEN 0 AND 100),
    green_energy    boolean NOT NULL DEFAULT false,
    asn_hint        text NULL,
    wallet_address  text NULL,
    ready           boolean NOT NULL DEFAULT false,
    gpu_util        double precision NULL,
    mem_used_gb     double precision NULL,
    p95_ms          double precision NULL,
    last_heartbeat  timestamptz NULL,
    last_seen_at    timestamptz NOT NULL,
    registered_at   timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- GET /v1/nodes?status= and ?region= page in id order; /v1/summary groups by status.
CREATE INDEX ix_nodes_status_id ON nodes (status, id);
CREATE INDEX ix_nodes_region_id ON nodes (region, id);
-- The lifecycle sweep looks for pending/active nodes by their last sign of life.
CREATE INDEX ix_nodes_live_last_seen ON nodes (last_seen_at) WHERE status IN ('pending', 'active');

CREATE TABLE node_secrets (
    node_id     text COLLATE "C" PRIMARY KEY REFERENCES nodes (id) ON DELETE CASCADE,
    ciphertext  bytea NOT NULL,
    key_id      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Receipts are an audit record: no foreign key, they outlive their node.
CREATE TABLE receipts (
    id          text COLLATE "C" PRIMARY KEY,
    node_id     text NOT NULL,
    region      text NOT NULL,
    model_id    text NOT NULL,
    payload     jsonb NOT NULL CHECK (jsonb_typeof(payload) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX ix_receipts_node_created ON receipts (node_id, created_at);
