-- V1: the strategies table, one row per strategy the genetic algorithm discovered.
-- The table predates Flyway, so this file is the baseline: every statement is
-- IF NOT EXISTS and running it on a database that already has the table changes
-- nothing. The index names are the ones those databases already carry.

-- Give up instead of queueing application traffic behind a lock we cannot get.
SET LOCAL lock_timeout = '10s';
SET LOCAL statement_timeout = '5min';

CREATE TABLE IF NOT EXISTS Strategies (
    strategy_id          uuid             NOT NULL DEFAULT gen_random_uuid(),
    symbol               text             NOT NULL,
    strategy_type        text             NOT NULL,
    parameters           jsonb            NOT NULL,
    first_discovered_at  timestamptz      NOT NULL DEFAULT now(),
    last_evaluated_at    timestamptz      NOT NULL DEFAULT now(),
    current_score        double precision NOT NULL,
    is_active            boolean          NOT NULL DEFAULT true,
    strategy_hash        text             NOT NULL,
    discovery_symbol     text,
    discovery_start_time timestamptz,
    discovery_end_time   timestamptz,
    created_at           timestamptz      NOT NULL DEFAULT now(),
    updated_at           timestamptz      NOT NULL DEFAULT now(),
    CONSTRAINT strategies_pkey PRIMARY KEY (strategy_id),
    CONSTRAINT strategies_strategy_hash_key UNIQUE (strategy_hash)
);

CREATE INDEX IF NOT EXISTS idx_strategies_symbol ON Strategies (symbol);
CREATE INDEX IF NOT EXISTS idx_strategies_strategy_type ON Strategies (strategy_type);
CREATE INDEX IF NOT EXISTS idx_strategies_current_score ON Strategies (current_score);
CREATE INDEX IF NOT EXISTS idx_strategies_is_active ON Strategies (is_active);
CREATE INDEX IF NOT EXISTS idx_strategies_discovery_symbol ON Strategies (discovery_symbol);
CREATE INDEX IF NOT EXISTS idx_strategies_created_at ON Strategies (created_at);

COMMENT ON TABLE Strategies IS
    'Strategies discovered by the genetic algorithm: one row per unique strategy_hash, '
    'with its parameters, latest score and the symbol and time window it was discovered on.';
