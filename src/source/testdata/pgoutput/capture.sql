-- Workload that produced text.txt and binary.txt (run with psql against a fresh PostgreSQL 15
-- cluster started with -c wal_level=logical -c TimeZone=UTC); see those files' headers for the
-- capture query. Commit timestamps are the capturing machine's clock.
CREATE TYPE mood AS ENUM ('happy', 'sad');
CREATE TABLE items (
  id uuid PRIMARY KEY,
  name text NOT NULL,
  code varchar(16),
  payload jsonb,
  blob bytea,
  qty integer,
  created_at timestamptz,
  note text,
  big text,
  feeling mood
);
CREATE TABLE outbox_events (
  id bigint PRIMARY KEY,
  aggregatetype varchar(255) NOT NULL,
  aggregateid text NOT NULL,
  payload jsonb
);
ALTER TABLE outbox_events REPLICA IDENTITY FULL;
CREATE PUBLICATION pub FOR TABLE items, outbox_events;
SELECT 'slot', lsn FROM pg_create_logical_replication_slot('cap', 'pgoutput');
SELECT pg_replication_origin_create('upstream');

INSERT INTO items VALUES (
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'widget', 'W-1', '{"k": [1, 2], "s": "ü"}', '\xdeadbeef00ff',
  42, '2024-05-06 07:08:09.123456+00', NULL,
  (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 200) i), 'happy');
INSERT INTO outbox_events VALUES (1, 'order', 'o-1', '{"total": 10}');
UPDATE items SET qty = 43 WHERE id = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11';
UPDATE items SET id = 'b1ffcd00-0000-4000-8000-000000000002', qty = 44 WHERE id = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11';
UPDATE outbox_events SET payload = '{"total": 11}' WHERE id = 1;
BEGIN;
INSERT INTO outbox_events VALUES (2, 'order', 'o-2', NULL);
SELECT pg_logical_emit_message(true, 'outbox', '{"a":1}');
COMMIT;
SELECT pg_logical_emit_message(false, 'audit', 'plain');
DELETE FROM items WHERE id = 'b1ffcd00-0000-4000-8000-000000000002';
DELETE FROM outbox_events WHERE id = 2;
TRUNCATE outbox_events;
TRUNCATE items, outbox_events RESTART IDENTITY CASCADE;
SELECT pg_replication_origin_session_setup('upstream');
BEGIN;
SELECT pg_replication_origin_xact_setup('0/ABCDEF12', '2024-01-02 03:04:05+00');
INSERT INTO outbox_events VALUES (3, 'user', 'u-3', '[]');
COMMIT;
SELECT pg_replication_origin_session_reset();
