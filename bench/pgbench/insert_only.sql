-- A bare single-row insert into messages (seq from a sequence-free counter:
-- the client id and a random number, unique enough for 30 s): the floor.
\set n :client_id + 1
INSERT INTO messages (id, conversation_id, seq, sender_id, body, client_message_id,
                      reply_to_id, created_at, edited_at, deleted_at)
SELECT gen_random_uuid(), conversation_id, 1000000 + (random() * 1e12)::bigint, sender,
       'pgbench says hello', gen_random_uuid()::text, NULL, now(), NULL, NULL
FROM bench_pairs WHERE n = :n;
