-- V4: signals, the history of every trading signal emitted, with the market prices
-- at the time, the risk parameters, the outcome once known and where it was notified.
-- Links to a spec or implementation are optional and become NULL when those are deleted.

-- Give up instead of queueing application traffic behind a lock we cannot get.
SET LOCAL lock_timeout = '10s';
SET LOCAL statement_timeout = '5min';

CREATE TABLE signals (
    id                    uuid            NOT NULL DEFAULT gen_random_uuid(),
    spec_id               uuid,
    implementation_id     uuid,
    instrument            text            NOT NULL,
    signal_type           text            NOT NULL,
    strength              numeric(5, 4),
    price                 numeric(38, 18) NOT NULL,
    bid_price             numeric(38, 18),
    ask_price             numeric(38, 18),
    volume                numeric(38, 18),
    stop_loss             numeric(38, 18),
    take_profit           numeric(38, 18),
    position_size         numeric(38, 18),
    outcome               text            NOT NULL DEFAULT 'PENDING',
    exit_price            numeric(38, 18),
    exit_time             timestamptz,
    pnl                   numeric(38, 18),
    pnl_percent           numeric(20, 8),
    notified_at           timestamptz,
    notification_channels text[]          NOT NULL DEFAULT '{}',
    timeframe             text,
    metadata              jsonb           NOT NULL DEFAULT '{}',
    created_at            timestamptz     NOT NULL DEFAULT now(),
    CONSTRAINT signals_pkey PRIMARY KEY (id),
    CONSTRAINT signals_spec_id_fkey FOREIGN KEY (spec_id)
        REFERENCES strategy_specs (id) ON DELETE SET NULL,
    CONSTRAINT signals_implementation_id_fkey FOREIGN KEY (implementation_id)
        REFERENCES strategy_implementations (id) ON DELETE SET NULL,
    CONSTRAINT signals_signal_type_check
        CHECK (signal_type IN ('BUY', 'SELL', 'HOLD', 'CLOSE_LONG', 'CLOSE_SHORT')),
    CONSTRAINT signals_strength_check CHECK (strength BETWEEN 0 AND 1),
    CONSTRAINT signals_volume_check CHECK (volume >= 0),
    CONSTRAINT signals_outcome_check
        CHECK (outcome IN ('PROFIT', 'LOSS', 'BREAKEVEN', 'PENDING', 'CANCELLED'))
);

CREATE INDEX idx_signals_instrument_time ON signals (instrument, created_at DESC);
CREATE INDEX idx_signals_instrument_type_time
    ON signals (instrument, signal_type, created_at DESC);
CREATE INDEX idx_signals_type ON signals (signal_type);
CREATE INDEX idx_signals_spec_id ON signals (spec_id);
CREATE INDEX idx_signals_impl_id ON signals (implementation_id);
CREATE INDEX idx_signals_outcome ON signals (outcome);

COMMENT ON TABLE signals IS
    'Every trading signal emitted: instrument, type and strength, prices at signal time, '
    'risk parameters, outcome and PnL once known, and notification channels.';
