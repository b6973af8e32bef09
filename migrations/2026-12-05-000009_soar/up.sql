-- SOAR actions: every action a playbook proposed, with its approval and its outcome. A row is
-- written once per idempotency key (playbook, action, target, triggering alert), so a restart
-- or a replayed alert never proposes or runs it twice; state changes are conditional updates.
CREATE TABLE soar_actions (
    id               BIGSERIAL   PRIMARY KEY,
    idempotency_key  TEXT        NOT NULL UNIQUE,
    playbook         TEXT        NOT NULL,
    action_index     SMALLINT    NOT NULL,
    action_type      TEXT        NOT NULL,
    target           TEXT        NOT NULL,
    -- pending, approved, rejected, expired, executing, executed, failed
    state            TEXT        NOT NULL,
    needs_approval   BOOLEAN     NOT NULL,
    approver_scope   TEXT        NOT NULL,
    proposed         JSONB       NOT NULL,
    evidence         JSONB       NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at       TIMESTAMPTZ,
    decided_at       TIMESTAMPTZ,
    decided_by       TEXT,
    decided_by_token BIGINT,
    reason           TEXT,
    executed_at      TIMESTAMPTZ,
    outcome          JSONB
);
CREATE INDEX soar_actions_pending ON soar_actions (created_at) WHERE state = 'pending';
CREATE INDEX soar_actions_created ON soar_actions (created_at DESC, id DESC);
