-- V2: strategy specifications and their tuned implementations.
-- strategy_specs holds the structure of a strategy (indicators, entry and exit rules,
-- parameter ranges) and where it came from; strategy_implementations holds concrete
-- parameter sets for a spec and their lifecycle. One trigger function keeps updated_at
-- current on both tables and on strategies (attached here rather than in V1 so that
-- databases baselined at version 1 get it too).

-- Give up instead of queueing application traffic behind a lock we cannot get.
SET LOCAL lock_timeout = '10s';
SET LOCAL statement_timeout = '5min';

CREATE TABLE strategy_specs (
    id               uuid        NOT NULL DEFAULT gen_random_uuid(),
    name             text        NOT NULL,
    version          bigint      NOT NULL DEFAULT 1,
    description      text,
    complexity       text,
    indicators       jsonb       NOT NULL,
    entry_conditions jsonb       NOT NULL,
    exit_conditions  jsonb       NOT NULL,
    parameters       jsonb       NOT NULL,
    source           text        NOT NULL,
    source_citation  text,
    parent_spec_id   uuid,
    tags             text[]      NOT NULL DEFAULT '{}',
    is_active        boolean     NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT strategy_specs_pkey PRIMARY KEY (id),
    CONSTRAINT strategy_specs_name_key UNIQUE (name),
    CONSTRAINT strategy_specs_parent_spec_id_fkey FOREIGN KEY (parent_spec_id)
        REFERENCES strategy_specs (id) ON DELETE SET NULL,
    CONSTRAINT strategy_specs_name_check CHECK (btrim(name) <> ''),
    CONSTRAINT strategy_specs_version_check CHECK (version >= 1),
    CONSTRAINT strategy_specs_complexity_check
        CHECK (complexity IN ('simple', 'moderate', 'complex')),
    CONSTRAINT strategy_specs_source_check
        CHECK (source IN ('MIGRATED', 'LLM_GENERATED', 'USER_CREATED')),
    CONSTRAINT strategy_specs_parent_spec_id_check CHECK (parent_spec_id <> id)
);

CREATE INDEX idx_strategy_specs_source ON strategy_specs (source);
CREATE INDEX idx_strategy_specs_is_active ON strategy_specs (is_active);
CREATE INDEX idx_strategy_specs_created_at ON strategy_specs (created_at);
CREATE INDEX idx_strategy_specs_parent_spec_id ON strategy_specs (parent_spec_id);
CREATE INDEX idx_strategy_specs_tags ON strategy_specs USING gin (tags);

COMMENT ON TABLE strategy_specs IS
    'Strategy specifications: indicators, entry and exit conditions and parameter '
    'definitions with ranges, plus provenance (source, citation, parent spec) and tags.';

CREATE TABLE strategy_implementations (
    id               uuid        NOT NULL DEFAULT gen_random_uuid(),
    spec_id          uuid        NOT NULL,
    parameters       jsonb       NOT NULL,
    discovered_by    text        NOT NULL,
    generation       bigint,
    backtest_metrics jsonb,
    paper_metrics    jsonb,
    live_metrics     jsonb,
    status           text        NOT NULL DEFAULT 'CANDIDATE',
    deployed_at      timestamptz,
    retired_at       timestamptz,
    notes            text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT strategy_implementations_pkey PRIMARY KEY (id),
    CONSTRAINT strategy_implementations_spec_id_fkey FOREIGN KEY (spec_id)
        REFERENCES strategy_specs (id) ON DELETE CASCADE,
    CONSTRAINT strategy_implementations_discovered_by_check
        CHECK (discovered_by IN ('GA', 'MANUAL', 'LLM', 'GRID_SEARCH')),
    CONSTRAINT strategy_implementations_generation_check CHECK (generation >= 0),
    CONSTRAINT strategy_implementations_status_check
        CHECK (status IN ('CANDIDATE', 'VALIDATED', 'DEPLOYED', 'RETIRED'))
);

CREATE INDEX idx_strategy_impl_spec_id ON strategy_implementations (spec_id);
CREATE INDEX idx_strategy_impl_discovered_by ON strategy_implementations (discovered_by);
CREATE INDEX idx_strategy_impl_status ON strategy_implementations (status);
CREATE INDEX idx_strategy_impl_created_at ON strategy_implementations (created_at);

COMMENT ON TABLE strategy_implementations IS
    'Tuned parameter sets of a strategy spec (deleted with the spec): how each was found, '
    'its backtest, paper and live metric summaries and its lifecycle status.';

CREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION set_updated_at() IS
    'BEFORE UPDATE row trigger: sets updated_at to the start time of the updating transaction.';

CREATE TRIGGER strategy_specs_set_updated_at
    BEFORE UPDATE ON strategy_specs
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TRIGGER strategy_implementations_set_updated_at
    BEFORE UPDATE ON strategy_implementations
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TRIGGER strategies_set_updated_at
    BEFORE UPDATE ON strategies
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
