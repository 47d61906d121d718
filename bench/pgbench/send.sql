-- One sendMessage as kith runs it on PostgreSQL: six round trips. The first
-- (this client's conversation, from bench_pairs) stands in for kith's session
-- check; then the conversation, BEGIN, the users' share locks, the one
-- numbering-and-insert statement of src/domain/chat/send/write.rs, COMMIT.
\set n :client_id + 1
SELECT conversation_id AS c, sender AS s, recipient AS r FROM bench_pairs WHERE n = :n \gset
SELECT * FROM conversations WHERE id = :c::uuid;
BEGIN;
SELECT id FROM users WHERE id IN (:s::uuid, :r::uuid) ORDER BY id FOR SHARE;
WITH bumped AS (
    UPDATE conversations SET last_seq = last_seq + 1, last_activity_at = now()
    WHERE id = :c::uuid RETURNING last_seq
), inserted AS (
    INSERT INTO messages (id, conversation_id, seq, sender_id, body, client_message_id,
                          reply_to_id, created_at, edited_at, deleted_at)
    SELECT gen_random_uuid(), :c::uuid, last_seq, :s::uuid, 'pgbench says hello',
           gen_random_uuid()::text, NULL, now(), NULL, NULL FROM bumped
    RETURNING seq
), reading AS (
    UPDATE conversation_participants SET last_read_seq = (SELECT seq FROM inserted)
    WHERE conversation_id = :c::uuid AND user_id = :s::uuid RETURNING 1
)
SELECT (SELECT seq FROM inserted) AS seq,
       EXISTS(SELECT 1 FROM reading) AS participating,
       EXISTS(SELECT 1 FROM blocks WHERE blocker_id = :s::uuid AND blocked_id = :r::uuid) AS sender_blocked,
       EXISTS(SELECT 1 FROM blocks WHERE blocker_id = :r::uuid AND blocked_id = :s::uuid) AS recipient_blocked,
       EXISTS(SELECT 1 FROM friendships WHERE user_id = :s::uuid AND friend_id = :r::uuid) AS friends,
       -- bench_pairs keeps each pair ordered: the sender is the low id.
       EXISTS(SELECT 1 FROM matches WHERE user_low = :s::uuid AND user_high = :r::uuid
              AND unmatched_at IS NULL) AS matched,
       EXISTS(SELECT 1 FROM matches WHERE user_low = :s::uuid AND user_high = :r::uuid
              AND unmatched_at IS NOT NULL) AS unmatched;
COMMIT;
