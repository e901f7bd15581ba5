-- 0002: node trust (issue 9): node keys, token rotation, join tokens, the replay clock.

-- The node's enrolled Ed25519 public key ('ed25519:' + base64 of 32 bytes); NULL for seed agents and after an admin
-- reset. Written by the API at enrollment only; re-registration with a key proof keeps it.
ALTER TABLE nodes ADD COLUMN public_key text NULL
    CHECK (public_key IS NULL OR public_key ~ '^ed25519:[A-Za-z0-9+/]{43}=$');
-- The join token (id) that enrolled the node, for audit and (next issue) ownership.
ALTER TABLE nodes ADD COLUMN enrolled_with text NULL;
-- Abandoned enrollments: pending nodes that never sent a heartbeat are removed after a while.
CREATE INDEX ix_nodes_never_seen ON nodes (registered_at) WHERE last_heartbeat IS NULL;

-- Token rotation: the replaced token keeps verifying until previous_valid_until.
ALTER TABLE node_secrets ADD COLUMN previous_ciphertext bytea NULL;
ALTER TABLE node_secrets ADD COLUMN previous_key_id text NULL;
ALTER TABLE node_secrets ADD COLUMN previous_valid_until timestamptz NULL;

-- Join tokens in the shape of Kubernetes bootstrap tokens: the id is public, the secret is stored as SHA-256 only.
CREATE TABLE join_tokens (
    id             text COLLATE "C" PRIMARY KEY CHECK (id ~ '^[a-z0-9]{6}$'),
    secret_sha256  text NOT NULL CHECK (secret_sha256 ~ '^[0-9a-f]{64}$'),
    description    text NULL CHECK (description IS NULL OR length(description) <= 256),
    region         text NULL CHECK (region IS NULL OR length(region) BETWEEN 1 AND 63),
    expires_at     timestamptz NOT NULL,
    max_uses       integer NULL CHECK (max_uses IS NULL OR max_uses > 0),
    uses           integer NOT NULL DEFAULT 0 CHECK (uses >= 0),
    revoked_at     timestamptz NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- Replay guard: the X-Node-Ts of each node's last accepted heartbeat or key-signed request. No foreign key: in
-- Kubernetes mode the nodes table is the operator's mirror and may not have the row yet.
CREATE TABLE node_request_clock (
    node_id     text COLLATE "C" PRIMARY KEY,
    last_ts     bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
