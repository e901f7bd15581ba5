-- 0005: receipts the control plane checked and served (issue 13). Written only by the API.

-- The API key whose gateway request the receipt records (NULL for receipts nodes post themselves), and what the API
-- found when it checked payload.signature against the node's enrolled key before storing it.
ALTER TABLE receipts ADD COLUMN api_key_id text NULL;
ALTER TABLE receipts ADD COLUMN signature_status text NOT NULL DEFAULT 'unsigned'
    CHECK (signature_status IN ('valid', 'invalid', 'unsigned'));

-- GET /v1/receipts pages newest first by (created_at, id), filtered by node, model or key.
CREATE INDEX ix_receipts_created_id ON receipts (created_at DESC, id DESC);
CREATE INDEX ix_receipts_model_created ON receipts (model_id, created_at DESC);
CREATE INDEX ix_receipts_key_created ON receipts (api_key_id, created_at DESC) WHERE api_key_id IS NOT NULL;
