-- The numbering-and-insert statement alone, in autocommit: one round trip.
\set n :client_id + 1
WITH pair AS (SELECT conversation_id AS c, sender AS s FROM bench_pairs WHERE n = :n),
bumped AS (
    UPDATE conversations SET last_seq = last_seq + 1, last_activity_at = now()
    WHERE id = (SELECT c FROM pair) RETURNING id, last_seq
)
INSERT INTO messages (id, conversation_id, seq, sender_id, body, client_message_id,
                      reply_to_id, created_at, edited_at, deleted_at)
SELECT gen_random_uuid(), bumped.id, last_seq, (SELECT s FROM pair), 'pgbench says hello',
       gen_random_uuid()::text, NULL, now(), NULL, NULL FROM bumped;
