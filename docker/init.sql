-- The outbox table, as Debezium's outbox event router expects it. The demo, scripts/measure-rss.sh
-- and the integration tests (tests/support) create it from this file too.
CREATE TABLE IF NOT EXISTS public.outbox (
  id uuid PRIMARY KEY,
  aggregatetype varchar(255) NOT NULL,
  aggregateid varchar(255) NOT NULL,
  type varchar(255) NOT NULL,
  payload jsonb
);
