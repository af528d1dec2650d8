-- V3: strategy_performance, one row per implementation per measured period and
-- environment, so performance can be compared over time and across backtest, paper
-- and live trading. Rows are deleted with their implementation.

-- Give up instead of queueing application traffic behind a lock we cannot get.
SET LOCAL lock_timeout = '10s';
SET LOCAL statement_timeout = '5min';

CREATE TABLE strategy_performance (
    id                         uuid            NOT NULL DEFAULT gen_random_uuid(),
    implementation_id          uuid            NOT NULL,
    period_start               timestamptz     NOT NULL,
    period_end                 timestamptz     NOT NULL,
    sharpe_ratio               numeric(20, 8),
    sortino_ratio              numeric(20, 8),
    calmar_ratio               numeric(20, 8),
    win_rate                   numeric(5, 4),
    profit_factor              numeric(20, 8),
    max_drawdown               numeric(20, 8),
    avg_drawdown               numeric(20, 8),
    volatility                 numeric(20, 8),
    var_95                     numeric(20, 8),
    total_trades               bigint          NOT NULL DEFAULT 0,
    winning_trades             bigint          NOT NULL DEFAULT 0,
    losing_trades              bigint          NOT NULL DEFAULT 0,
    avg_trade_duration_seconds bigint,
    avg_profit_per_trade       numeric(38, 18),
    total_return               numeric(20, 8),
    annualized_return          numeric(20, 8),
    environment                text            NOT NULL,
    instrument                 text            NOT NULL,
    timeframe                  text,
    raw_metrics                jsonb,
    created_at                 timestamptz     NOT NULL DEFAULT now(),
    CONSTRAINT strategy_performance_pkey PRIMARY KEY (id),
    CONSTRAINT strategy_performance_implementation_id_fkey FOREIGN KEY (implementation_id)
        REFERENCES strategy_implementations (id) ON DELETE CASCADE,
    CONSTRAINT strategy_performance_period_check CHECK (period_end >= period_start),
    CONSTRAINT strategy_performance_win_rate_check CHECK (win_rate BETWEEN 0 AND 1),
    CONSTRAINT strategy_performance_trades_check CHECK (
        winning_trades >= 0
        AND losing_trades >= 0
        AND winning_trades + losing_trades <= total_trades
    ),
    CONSTRAINT strategy_performance_avg_trade_duration_check
        CHECK (avg_trade_duration_seconds >= 0),
    CONSTRAINT strategy_performance_environment_check
        CHECK (environment IN ('BACKTEST', 'PAPER', 'LIVE'))
);

-- The composite index also serves lookups by implementation alone.
CREATE INDEX idx_perf_impl_date ON strategy_performance (implementation_id, period_start);
CREATE INDEX idx_perf_environment ON strategy_performance (environment);
CREATE INDEX idx_perf_instrument ON strategy_performance (instrument);
CREATE INDEX idx_perf_created_at ON strategy_performance (created_at);

COMMENT ON TABLE strategy_performance IS
    'Performance of a strategy implementation over one period in one environment '
    '(BACKTEST, PAPER or LIVE): ratio, risk and trade statistics plus the raw metrics.';
